package ferret

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
	"go.mongodb.org/mongo-driver/mongo/readpref"
)

// Ping reports whether a MongoDB-compatible server answers on addr (host:port). It runs
// the driver's real handshake and ping, so a port held by another program (HTTP, Redis)
// is told apart from FerretDB or MongoDB; ctx bounds the whole check.
func Ping(ctx context.Context, addr string) error {
	opts := options.Client().ApplyURI("mongodb://" + addr + "/").SetDirect(true)
	if deadline, ok := ctx.Deadline(); ok {
		opts.SetServerSelectionTimeout(max(time.Until(deadline), time.Millisecond))
	}
	client, err := mongo.Connect(ctx, opts)
	if err != nil {
		return fmt.Errorf("ferret: ping %s: %w", addr, err)
	}
	defer func() { _ = client.Disconnect(context.WithoutCancel(ctx)) }()
	if err := client.Ping(ctx, readpref.Primary()); err != nil {
		return fmt.Errorf("ferret: no MongoDB-compatible server answers on %s: %w", addr, err)
	}
	return nil
}
