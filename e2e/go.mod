module github.com/bugtracker/bugtracker/e2e

go 1.26.0
