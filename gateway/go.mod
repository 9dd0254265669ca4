module github.com/bugtracker/bugtracker/gateway

go 1.26.0
