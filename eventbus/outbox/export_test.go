package outbox

// DisableLossDetection switches loss detection off, for the mutation test
// that proves the loss tests fail without it.
func DisableLossDetection(r *Relay) { r.detect = false }
