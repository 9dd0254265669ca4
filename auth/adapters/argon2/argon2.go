// Package argon2 is the argon2id adapter of the password hasher port.
package argon2

import (
	"errors"
	"fmt"

	"github.com/alexedwards/argon2id"
)

// Params are the argon2id cost settings; the defaults are OWASP's minimum
// recommendation (19 MiB, 2 iterations, 1 lane).
type Params struct {
	MemoryKiB   uint32 `env:"MEMORY_KIB" envDefault:"19456"`
	Iterations  uint32 `env:"ITERATIONS" envDefault:"2"`
	Parallelism uint8  `env:"PARALLELISM" envDefault:"1"`
}

// Validate refuses settings weaker than OWASP's floor.
func (p Params) Validate() error {
	if p.MemoryKiB < 19456 || p.Iterations < 2 || p.Parallelism < 1 {
		return errors.New("AUTH_ARGON2_*: below OWASP minimum (19456 KiB, 2 iterations, 1 lane)")
	}
	return nil
}

// Hasher hashes passwords into PHC strings ($argon2id$v=19$m=...,t=...,p=...$salt$key).
type Hasher struct {
	params *argon2id.Params
}

// New returns a hasher with a 16-byte salt and a 32-byte key.
func New(p Params) *Hasher {
	return &Hasher{params: &argon2id.Params{
		Memory: p.MemoryKiB, Iterations: p.Iterations, Parallelism: p.Parallelism,
		SaltLength: 16, KeyLength: 32,
	}}
}

// Hash returns the encoded hash of password with a fresh random salt.
func (h *Hasher) Hash(password string) (string, error) {
	s, err := argon2id.CreateHash(password, h.params)
	if err != nil {
		return "", fmt.Errorf("argon2: %w", err)
	}
	return s, nil
}

// Verify compares password with hash in constant time; the cost comes from the hash.
func (h *Hasher) Verify(password, hash string) (bool, error) {
	ok, err := argon2id.ComparePasswordAndHash(password, hash)
	if err != nil {
		return false, fmt.Errorf("argon2: %w", err)
	}
	return ok, nil
}
