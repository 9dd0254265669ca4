package service_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/bugtracker/bugtracker/platform/authn"
)

// BenchmarkLogin measures POST /api/v1/auth/login through the real HTTP server; the
// argon2id hash (19 MiB, t=2, p=1) dominates it. It reports ms per login.
func BenchmarkLogin(b *testing.B) {
	h := start(b)
	h.register(b, "Ann", "ann@example.com", "correct horse")
	body := `{"email":"ann@example.com","password":"correct horse"}`
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		resp, err := http.Post(h.base+"/api/v1/auth/login", "application/json", strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/login")
}

// BenchmarkMe compares a whole GET /api/v1/auth/me request (keep-alive HTTP, JWT
// verification with the revocation check, user lookup, JSON) with the JWT
// verification alone, so the share of verification in a request can be read off.
func BenchmarkMe(b *testing.B) {
	h := start(b)
	h.register(b, "Ann", "ann@example.com", "correct horse")
	tok := h.login(b, "ann@example.com", "correct horse").access
	b.Run("request", func(b *testing.B) {
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
		req, _ := http.NewRequest("GET", h.base+"/api/v1/auth/me", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		b.ReportAllocs()
		for b.Loop() {
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
	})
	b.Run("jwt-verify", func(b *testing.B) {
		set, err := authn.NewKeySet(signingKey.Public())
		if err != nil {
			b.Fatal(err)
		}
		v, err := authn.NewVerifier(parties, set, authn.NewMemoryRevocations())
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Verify(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}
