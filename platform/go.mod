module github.com/bugtracker/bugtracker/platform

go 1.26.0
