package launcher

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// healthPollInterval is the pause between two health probes of a service.
const healthPollInterval = 200 * time.Millisecond

// WaitHealthy polls url with GET until it answers 200 OK or ctx ends. The
// returned error describes the last failed probe.
func WaitHealthy(ctx context.Context, client *http.Client, url string) error {
	var last error

	for {
		last = probe(ctx, client, url)
		if last == nil {
			return nil
		}

		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not healthy: %w (last probe: %w)", url, context.Cause(ctx), last)
		case <-time.After(healthPollInterval):
		}
	}
}

// probe makes one health request.
func probe(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}

	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()

	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))

	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}

	return nil
}
