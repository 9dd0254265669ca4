package gateway_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/valyala/fasthttp"

	assets "github.com/bugtracker/bugtracker/gateway"
	"github.com/bugtracker/bugtracker/gateway/internal/gateway"
)

// cardJSON is a typical single-resource answer (about 300 bytes).
const cardJSON = `{"id":"0193a1c2-7f5e-7b3a-9c41-2d5e8f0a1b2c","projectId":"0193a1c2-7f5e-7b3a-9c41-2d5e8f0a1b2d",` +
	`"title":"Login button does nothing","description":"Steps to reproduce: open the page, click.","status":"todo",` +
	`"creatorId":"0193a1c2-7f5e-7b3a-9c41-2d5e8f0a1b2e","totalComment":3,` +
	`"createdAt":"2026-11-24T10:15:30Z","updatedAt":"2026-11-24T10:15:30Z"}`

// BenchmarkGatewayPassThrough compares GET /api/v1/cards/{id} sent straight to an
// httptest service ("direct") with the same request through the gateway
// ("gateway"), one request at a time and with parallel clients. The gateway runs
// as in production, JSON access log included (written to io.Discard). The ratio
// direct/gateway of ns/op is the gateway's overhead.
func BenchmarkGatewayPassThrough(b *testing.B) {
	service := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Request-Id", r.Header.Get("X-Request-Id"))
		_, _ = io.WriteString(w, cardJSON)
	}))
	defer service.Close()

	s, err := gateway.LoadSettings([]string{"GATEWAY_PROJECT_URL=" + service.URL})
	if err != nil {
		b.Fatal(err)
	}
	cfg, err := gateway.LoadConfig(assets.KrakendConfig, "krakend.json", s)
	if err != nil {
		b.Fatal(err)
	}
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	gw, err := gateway.New(context.Background(), gateway.Options{Settings: s, Config: cfg, Logger: logger, AccessLog: io.Discard})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- gw.Serve(ctx, ln, nil) }()
	defer func() { cancel(); <-served }()
	frontURL := "http://" + ln.Addr().String()

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true}}
	defer client.CloseIdleConnections()
	get := func(url string) error {
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK || n != int64(len(cardJSON)) {
			return fmt.Errorf("got %d with %d bytes", resp.StatusCode, n)
		}
		return nil
	}
	const path = "/api/v1/cards/0193a1c2-7f5e-7b3a-9c41-2d5e8f0a1b2c"
	for _, target := range []struct{ name, url string }{
		{"direct", service.URL + path},
		{"gateway", frontURL + path},
	} {
		b.Run(target.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := get(target.url); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(target.name+"-parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := get(target.url); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkGatewayAllocs isolates the gateway's own allocations: the client and the
// service are both fasthttp and allocate next to nothing per request, so the
// allocs/op of "gateway" minus "direct" is what the gateway adds. The request is
// GET /api/v1/cards/{id} with a token, as a client would send it.
func BenchmarkGatewayAllocs(b *testing.B) {
	svcLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	svc := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/json")
		ctx.Response.Header.SetBytesV("X-Request-Id", ctx.Request.Header.Peek("X-Request-Id"))
		ctx.SetBodyString(cardJSON)
	}}
	go func() { _ = svc.Serve(svcLn) }()
	defer func() { _ = svc.Shutdown() }()
	svcURL := "http://" + svcLn.Addr().String()

	s, err := gateway.LoadSettings([]string{"GATEWAY_PROJECT_URL=" + svcURL})
	if err != nil {
		b.Fatal(err)
	}
	cfg, err := gateway.LoadConfig(assets.KrakendConfig, "krakend.json", s)
	if err != nil {
		b.Fatal(err)
	}
	gw, err := gateway.New(context.Background(), gateway.Options{
		Settings: s, Config: cfg, Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), AccessLog: io.Discard,
	})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- gw.Serve(ctx, ln, nil) }()
	defer func() { cancel(); <-served }()

	const path = "/api/v1/cards/0193a1c2-7f5e-7b3a-9c41-2d5e8f0a1b2c"
	for _, target := range []struct{ name, addr string }{
		{"direct", svcLn.Addr().String()},
		{"gateway", ln.Addr().String()},
	} {
		b.Run(target.name, func(b *testing.B) {
			client := &fasthttp.HostClient{Addr: target.addr, MaxConns: 64}
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI("http://" + target.addr + path)
			req.Header.Set("Authorization", "Bearer eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1MSJ9.c2ln")
			req.Header.Set("Accept", "application/json")
			req.Header.Set("X-Request-Id", "bench-request-id-0001")
			b.ReportAllocs()
			for b.Loop() {
				if err := client.Do(req, resp); err != nil {
					b.Fatal(err)
				}
				if resp.StatusCode() != fasthttp.StatusOK || len(resp.Body()) != len(cardJSON) {
					b.Fatalf("got %d with %d bytes", resp.StatusCode(), len(resp.Body()))
				}
			}
		})
	}
}
