module github.com/bugtracker/bugtracker/notif

go 1.26.0
