package service

import (
	"os"
	"runtime"
	"runtime/debug"
)

// ApplyMemoryLimit sets the Go runtime's soft memory limit to what the hash cap
// needs: a baseline plus 1.25 times AUTH_ARGON2_MEMORY_KIB per concurrent hash. The
// cap bounds the live argon2 buffers, but without a limit the collector lets freed
// 19 MiB buffers pile up to twice the live heap before it runs, which put peak RSS at
// 140 MB with two hashes at a time; with the limit it stays under 100 MB at the same
// throughput (README, Benchmarks). GOMEMLIMIT, when set, wins. It returns the limit
// in bytes, or -1 when GOMEMLIMIT decided.
func ApplyMemoryLimit(cfg Config) int64 {
	if os.Getenv("GOMEMLIMIT") != "" {
		return -1
	}
	n := cfg.Hash.Concurrency
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	const baseline = 24 << 20
	limit := baseline + int64(n)*int64(cfg.Argon2.MemoryKiB)*1024*5/4
	debug.SetMemoryLimit(limit)
	return limit
}
