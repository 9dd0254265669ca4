module github.com/bugtracker/bugtracker/devstack

go 1.26.0
