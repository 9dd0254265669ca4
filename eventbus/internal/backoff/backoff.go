// Package backoff computes retry delays shared by the outbox relay and the
// subscriber loop.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Full returns the wait before retry number attempt (1 for the first): a
// random duration between minD and minD*2^(attempt-1), capped at maxD
// (exponential backoff with "full jitter"), so that replicas failing
// together do not retry together.
func Full(attempt int, minD, maxD time.Duration) time.Duration {
	ceil := minD
	for i := 1; i < attempt && ceil < maxD; i++ {
		ceil *= 2
	}
	ceil = min(ceil, maxD)
	if ceil <= minD {
		return minD
	}
	return minD + rand.N(ceil-minD+1) //nolint:gosec // jitter needs no unpredictability
}
