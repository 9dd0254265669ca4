package outbox

import "context"

// DisableLossDetection switches loss detection off, for the mutation test
// that proves the loss tests fail without it.
func DisableLossDetection(r *Relay) { r.detect = false }

// Lease exposes the lease step for the concurrency test.
func Lease(ctx context.Context, r *Relay, owner string) ([]int64, error) {
	rows, err := r.lease(ctx, owner)
	seqs := make([]int64, len(rows))
	for i, o := range rows {
		seqs[i] = o.Seq
	}
	return seqs, err
}

// Maintain runs one round of loss check, trimming and pruning.
func Maintain(ctx context.Context, r *Relay) { r.maintain(ctx) }
