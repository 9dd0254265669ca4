package eventbus

import "context"

// Consumer binds a Subscriber to the Handler it feeds, giving a component with the
// Run/Shutdown pair that process runners expect: Run(ctx) blocks and aborts on ctx,
// Shutdown finishes the batch in hand.
type Consumer struct {
	Subscriber Subscriber
	Handler    Handler
}

// Run consumes until ctx is cancelled (abort) or Shutdown completes (graceful).
func (c Consumer) Run(ctx context.Context) error { return c.Subscriber.Run(ctx, c.Handler) }

// Shutdown stops fetching, finishes and acknowledges the batch in hand.
func (c Consumer) Shutdown(ctx context.Context) error { return c.Subscriber.Shutdown(ctx) }
