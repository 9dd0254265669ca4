module github.com/bugtracker/bugtracker/eventbus

go 1.26.0
