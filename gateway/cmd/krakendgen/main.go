// Command krakendgen writes krakend.json from the gateway's route table
// (internal/gateway.Routes); `go generate ./...` in the gateway module runs it.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/bugtracker/bugtracker/gateway/internal/gateway"
)

func main() {
	out := flag.String("o", "krakend.json", "file to write")
	flag.Parse()
	data, err := gateway.RenderConfig()
	if err == nil {
		err = os.WriteFile(*out, data, 0o644) //nolint:gosec // A configuration file meant to be read by anyone.
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "krakendgen:", err)
		os.Exit(1)
	}
}
