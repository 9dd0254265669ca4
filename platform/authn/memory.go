package authn

import (
	"context"
	"sync"
	"time"
)

// MemoryRevocations is an in-process adapter of the revocation ports for unit tests and
// single-process setups.
type MemoryRevocations struct {
	mu      sync.Mutex
	revoked map[string]time.Time
	now     func() time.Time
}

// NewMemoryRevocations returns an empty revocation list.
func NewMemoryRevocations() *MemoryRevocations {
	return &MemoryRevocations{revoked: map[string]time.Time{}, now: time.Now}
}

// IsRevoked reports whether tokenID was revoked and its entry has not expired.
func (m *MemoryRevocations) IsRevoked(_ context.Context, tokenID string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	until, ok := m.revoked[tokenID]
	return ok && m.now().Before(until), nil
}

// Revoke records tokenID as revoked for ttl.
func (m *MemoryRevocations) Revoke(_ context.Context, tokenID string, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.revoked[tokenID] = m.now().Add(ttl)
	return nil
}
