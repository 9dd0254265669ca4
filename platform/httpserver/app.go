// Package httpserver builds the Fiber application every service serves: recovery,
// request ids, security headers, the 1 MiB body limit, Prometheus metrics, health and
// readiness endpoints, and the single error handler that writes RFC 9457 problems.
package httpserver

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/gofiber/fiber/v2/middleware/helmet"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/bugtracker/bugtracker/platform/logging"
	"github.com/bugtracker/bugtracker/platform/problem"
)

// RequestIDHeader carries the request id in and out of every service.
const RequestIDHeader = "X-Request-Id"

// DefaultBodyLimit is the largest request body accepted (API.md: 1 MiB, else 413).
const DefaultBodyLimit = 1 << 20

// Check reports whether one dependency (database, Redis) answers.
type Check func(ctx context.Context) error

// ErrorMapper turns a service's domain error into a problem, or returns nil when it
// does not know the error; unknown errors become a 500 that leaks nothing.
type ErrorMapper func(err error) *problem.Problem

// Config describes one service's HTTP application.
type Config struct {
	// Service names the process in logs and metrics.
	Service string
	// Logger receives access and error logs.
	Logger *slog.Logger
	// Checks are run by /readyz, keyed by a public component name ("database").
	Checks map[string]Check
	// MapError maps domain errors; it may be nil.
	MapError ErrorMapper
	// BodyLimit overrides DefaultBodyLimit when positive.
	BodyLimit int
	// TrustedProxies lists the addresses or CIDRs (the gateway) whose
	// X-Forwarded-For header names the client; others cannot spoof it.
	TrustedProxies []string
}

// New returns a Fiber app with the shared middleware and /healthz, /readyz, /metrics
// already routed. Services add their own routes to it.
func New(cfg Config) *fiber.App {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.BodyLimit <= 0 {
		cfg.BodyLimit = DefaultBodyLimit
	}
	app := fiber.New(fiber.Config{
		AppName:               cfg.Service,
		BodyLimit:             cfg.BodyLimit,
		DisableStartupMessage: true,
		ErrorHandler:          errorHandler(cfg),
		ReadTimeout:           30 * time.Second,
		WriteTimeout:          30 * time.Second,
		IdleTimeout:           120 * time.Second,

		EnableTrustedProxyCheck: true,
		TrustedProxies:          cfg.TrustedProxies,
		ProxyHeader:             fiber.HeaderXForwardedFor,
		EnableIPValidation:      true,
	})
	reg := prometheus.NewRegistry()
	m := newMetrics(reg, cfg.Service)

	app.Use(requestID)
	app.Use(recover.New(recover.Config{
		EnableStackTrace: true,
		StackTraceHandler: func(c *fiber.Ctx, e any) {
			cfg.Logger.ErrorContext(c.UserContext(), "panic", "panic", e)
		},
	}))
	app.Use(helmet.New())
	app.Use(m.middleware(cfg.Logger))

	app.Get("/healthz", func(c *fiber.Ctx) error {
		return c.JSON(fiber.Map{"status": "ok"})
	})
	app.Get("/readyz", readiness(cfg.Checks))
	app.Get("/metrics", adaptor.HTTPHandler(promhttp.HandlerFor(
		prometheus.Gatherers{reg, prometheus.DefaultGatherer}, promhttp.HandlerOpts{})))
	return app
}

// ClientIP is the caller's address: from X-Forwarded-For when the request came through
// a trusted proxy, else the connection's remote address.
func ClientIP(c *fiber.Ctx) string {
	if ip := c.IP(); ip != "" {
		return ip
	}
	return c.Context().RemoteIP().String()
}

// requestID echoes a sane client-sent X-Request-Id or makes one, and puts it in the
// request context so every log line of the request carries it.
func requestID(c *fiber.Ctx) error {
	id := setRequestID(c)
	c.SetUserContext(logging.WithRequestID(c.UserContext(), id))
	return c.Next()
}

// setRequestID puts the client's id, when it is safe, or a new one on the response.
func setRequestID(c *fiber.Ctx) string {
	id := c.Get(RequestIDHeader)
	if !validRequestID(id) {
		id = uuid.NewString()
	}
	c.Set(RequestIDHeader, id)
	return id
}

// validRequestID accepts short printable ids only, so a client cannot inject log lines.
func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// readiness answers 200 only while every check passes; the failing components are
// named but their errors stay in the log.
func readiness(checks map[string]Check) fiber.Handler {
	return func(c *fiber.Ctx) error {
		ctx, cancel := context.WithTimeout(c.UserContext(), 2*time.Second)
		defer cancel()
		var down []string
		for name, check := range checks {
			if err := check(ctx); err != nil {
				down = append(down, name)
			}
		}
		if len(down) > 0 {
			return problem.Unavailable("not ready: " + joinSorted(down))
		}
		return c.JSON(fiber.Map{"status": "ready"})
	}
}

// errorHandler is the one place where errors become HTTP responses.
func errorHandler(cfg Config) fiber.ErrorHandler {
	return func(c *fiber.Ctx, err error) error {
		p := toProblem(err, cfg.MapError)
		if p.Status >= 500 {
			cfg.Logger.ErrorContext(c.UserContext(), "request failed",
				"error", err.Error(), "method", c.Method(), "path", c.Path())
		}
		if c.GetRespHeader(RequestIDHeader) == "" {
			// Errors raised before the middleware ran (413 from the server) still get one.
			setRequestID(c)
		}
		if p.RetryAfter > 0 {
			c.Set(fiber.HeaderRetryAfter, strconv.Itoa(p.RetryAfter))
		}
		body, merr := json.Marshal(p)
		if merr != nil {
			return merr
		}
		c.Set(fiber.HeaderContentType, problem.ContentType)
		return c.Status(p.Status).Send(body)
	}
}

func toProblem(err error, mapErr ErrorMapper) *problem.Problem {
	var p *problem.Problem
	if errors.As(err, &p) {
		return p
	}
	var fe *fiber.Error
	if errors.As(err, &fe) {
		return problem.FromStatus(fe.Code, fe.Message)
	}
	if mapErr != nil {
		if p := mapErr(err); p != nil {
			return p
		}
	}
	return problem.Internal()
}
