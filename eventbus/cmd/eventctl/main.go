// Command eventctl is the operator's tool for what the event bus sets
// aside: dead letters of a consumer group (list, show, re-drive into the
// group, drop) and quarantined outbox rows of a service (list, re-queue).
// Run it with --help.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command and returns the exit status: 0 on success, 1
// when the command failed, 2 on a usage error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if err := dispatch(ctx, args, stdout); err != nil {
		_, _ = fmt.Fprintln(stderr, "eventctl:", err)
		if isUsage(err) {
			_, _ = fmt.Fprintln(stderr, "Run 'eventctl --help' for usage.")
			return 2
		}
		return 1
	}
	return 0
}
