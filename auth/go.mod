module github.com/bugtracker/bugtracker/auth

go 1.26.0
