// Package gateway builds the bug tracker's API gateway: a lura (KrakenD engine)
// router on gin that passes every public route through to the service owning it,
// plus the gateway's own health, readiness, metrics and OpenAPI routes.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/luraproject/lura/v2/config"
	"github.com/luraproject/lura/v2/logging"
	"github.com/luraproject/lura/v2/proxy"
	krakendgin "github.com/luraproject/lura/v2/router/gin"
	"github.com/prometheus/client_golang/prometheus"

	assets "github.com/bugtracker/bugtracker/gateway"
)

// maxBodyBytes is the request body limit of the public contract (1 MiB).
const maxBodyBytes = 1 << 20

// shutdownGrace bounds how long in-flight requests may take to finish at shutdown.
const shutdownGrace = 30 * time.Second

// Options are the inputs of New.
type Options struct {
	// Settings come from LoadSettings.
	Settings Settings
	// Config comes from LoadConfig.
	Config config.ServiceConfig
	// OpenAPI is the document served at /api/v1/openapi.json; nil means the embedded one.
	OpenAPI []byte
	// Logger receives the access log and errors; nil means slog.Default().
	Logger *slog.Logger
}

// Gateway is a built gateway: an http.Handler plus the server around it.
type Gateway struct {
	engine    *gin.Engine
	logger    *slog.Logger
	transport *http.Transport
	client    *http.Client
	backends  map[string]string // service name -> base URL, for readiness probes
	services  []string
	openAPI   []byte
	metrics   *metrics
	routes    map[string]string // gin route (":id") -> label ("{id}")
	endpoints []string          // "METHOD /path/{id}" of every proxied endpoint
	maxWait   time.Duration     // longest endpoint timeout
}

// buildMu serialises engine construction: krakendgin.NewEngine and the lura router
// set package-level state (gin's mode, lura's error-message flag, the default
// transport) that the race detector would flag if two gateways were built at once.
var buildMu sync.Mutex

// New builds the gateway's handler from the options; nothing listens yet.
func New(ctx context.Context, opts Options) (*Gateway, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	openAPI := opts.OpenAPI
	if openAPI == nil {
		openAPI = assets.OpenAPI
	}
	cfg := opts.Config
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("gateway: configuration has no endpoints; load it with LoadConfig")
	}

	g := &Gateway{
		logger:   logger,
		backends: map[string]string{},
		services: services(cfg),
		openAPI:  openAPI,
		metrics:  newMetrics(),
		routes:   map[string]string{},
	}
	for _, svc := range g.services {
		g.backends[svc], _ = opts.Settings.BackendURL(svc)
	}
	for _, e := range cfg.Endpoints {
		g.maxWait = max(g.maxWait, e.Timeout)
	}
	g.transport = newBackendTransport()
	g.client = &http.Client{
		Transport: g.transport,
		// A pass-through gateway hands redirects to the client instead of following them.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}

	if err := g.build(ctx, cfg); err != nil {
		g.transport.CloseIdleConnections()
		return nil, err
	}
	return g, nil
}

// build assembles the gin engine and lets lura register the configured endpoints.
func (g *Gateway) build(ctx context.Context, cfg config.ServiceConfig) (err error) {
	buildMu.Lock()
	defer buildMu.Unlock()
	defer func() {
		// gin panics on conflicting routes; report that as a configuration error.
		if r := recover(); r != nil {
			err = fmt.Errorf("gateway: registering routes: %v", r)
		}
	}()

	luraLog := luraLogger{g.logger}
	cfg.ExtraConfig = withEngineDefaults(cfg.ExtraConfig)
	engine := krakendgin.NewEngine(cfg, krakendgin.EngineOptions{Logger: luraLog, Writer: io.Discard})
	if !hasTrustedProxies(cfg.ExtraConfig) {
		// Trust no forwarding header unless the configuration names the proxies.
		if err := engine.SetTrustedProxies(nil); err != nil {
			return fmt.Errorf("gateway: trusted proxies: %w", err)
		}
	}
	engine.Use(g.requestID, g.observe, g.problems, g.recoverer)
	engine.NoRoute(func(c *gin.Context) { writeProblem(c, problemFor(http.StatusNotFound)) })
	engine.NoMethod(func(c *gin.Context) { writeProblem(c, problemFor(http.StatusMethodNotAllowed)) })
	engine.GET("/healthz", g.healthz)
	engine.GET("/readyz", g.readyz)
	engine.GET("/metrics", gin.WrapH(g.metrics.handler()))
	engine.GET("/api/v1/openapi.json", g.openAPIDocument)

	factory := krakendgin.NewFactory(krakendgin.Config{
		Engine:         engine,
		Middlewares:    []gin.HandlerFunc{limitBody, checkParams},
		HandlerFactory: krakendgin.CustomErrorEndpointHandler(logging.NoOp, statusForError),
		ProxyFactory:   proxy.NewDefaultFactory(g.backendFactory(), luraLog),
		Logger:         luraLog,
		// lura's Run registers the endpoints and then calls RunServer; the gateway
		// runs its own server (Serve), so this one returns at once.
		RunServer: func(context.Context, config.ServiceConfig, http.Handler) error { return nil },
	})
	factory.NewWithContext(ctx).Run(cfg)

	registered := map[string]bool{}
	for _, r := range engine.Routes() {
		registered[r.Method+" "+r.Path] = true
		g.routes[r.Path] = routeLabel(r.Path)
	}
	for _, e := range cfg.Endpoints {
		if !registered[strings.ToUpper(e.Method)+" "+e.Endpoint] {
			return fmt.Errorf("gateway: endpoint %s %s was not registered; see the log", e.Method, e.Endpoint)
		}
		g.endpoints = append(g.endpoints, strings.ToUpper(e.Method)+" "+routeLabel(e.Endpoint))
	}
	g.engine = engine
	return nil
}

// withEngineDefaults returns a copy of the service extra_config whose gin options
// switch off the parts of krakendgin.NewEngine the gateway replaces with its own
// middleware: the text access log, /__health and the plain-text path check.
func withEngineDefaults(extra config.ExtraConfig) config.ExtraConfig {
	out := config.ExtraConfig{}
	for k, v := range extra {
		out[k] = v
	}
	opts := map[string]interface{}{}
	if m, ok := extra[krakendgin.Namespace].(map[string]interface{}); ok {
		for k, v := range m {
			opts[k] = v
		}
	}
	opts["disable_access_log"] = true
	opts["disable_health"] = true
	opts["disable_path_decoding"] = true
	out[krakendgin.Namespace] = opts
	return out
}

// hasTrustedProxies reports whether the gin options name trusted proxies.
func hasTrustedProxies(extra config.ExtraConfig) bool {
	m, ok := extra[krakendgin.Namespace].(map[string]interface{})
	if !ok {
		return false
	}
	list, ok := m["trusted_proxies"].([]interface{})
	return ok && len(list) > 0
}

// newBackendTransport returns the connection pool towards the services. Keep-alive
// pools sized for a busy gateway matter most for its overhead: Go's default of two
// idle connections per host makes most requests dial.
func newBackendTransport() *http.Transport {
	return &http.Transport{
		// Internal calls never go through an HTTP proxy from the environment.
		Proxy: nil,
		DialContext: (&net.Dialer{
			Timeout:   3 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		// Bodies pass through untouched: no transparent gzip.
		DisableCompression: true,
	}
}

// backendFactory wraps lura's HTTP proxy so the gateway's own client is used and
// hop-by-hop headers of the service's response are not relayed.
func (g *Gateway) backendFactory() proxy.BackendFactory {
	base := proxy.CustomHTTPProxyFactory(func(context.Context) *http.Client { return g.client })
	return func(b *config.Backend) proxy.Proxy {
		next := base(b)
		return func(ctx context.Context, r *proxy.Request) (*proxy.Response, error) {
			resp, err := next(ctx, r)
			if resp != nil {
				dropHopHeaders(resp.Metadata.Headers)
			}
			return resp, err
		}
	}
}

// hopHeaders are meaningful for a single connection only (RFC 9110, section 7.6.1).
var hopHeaders = []string{
	"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// dropHopHeaders deletes the hop-by-hop headers of h, including those that its
// Connection header names.
func dropHopHeaders(h map[string][]string) {
	if c, ok := h["Connection"]; ok {
		for _, v := range c {
			for _, name := range strings.Split(v, ",") {
				delete(h, http.CanonicalHeaderKey(strings.TrimSpace(name)))
			}
		}
	}
	for _, name := range hopHeaders {
		delete(h, name)
	}
}

// Handler returns the gateway as an http.Handler.
func (g *Gateway) Handler() http.Handler { return g.engine }

// Endpoints lists the proxied endpoints as "METHOD /path/{param}", in configuration
// order; the gateway's own routes (health, metrics, docs) are not included.
func (g *Gateway) Endpoints() []string { return slices.Clone(g.endpoints) }

// Registry returns the Prometheus registry behind /metrics.
func (g *Gateway) Registry() *prometheus.Registry { return g.metrics.registry }

// Close releases the idle connections to the services.
func (g *Gateway) Close() { g.transport.CloseIdleConnections() }

// Serve answers requests on ln until ctx is done, then stops accepting, lets
// in-flight requests finish (up to 30 s) and returns nil.
func (g *Gateway) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           g.engine,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		// Long enough for the slowest endpoint to answer and its body to be relayed.
		WriteTimeout:   g.maxWait + 30*time.Second,
		IdleTimeout:    120 * time.Second,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(g.logger.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		return fmt.Errorf("gateway: serving: %w", err)
	case <-ctx.Done():
	}
	g.logger.Info("shutting down: finishing in-flight requests")
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	err := srv.Shutdown(shutdownCtx)
	if serr := <-served; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		g.logger.Warn("serve stopped", "error", serr)
	}
	g.Close()
	if err != nil {
		return fmt.Errorf("gateway: shutdown: %w", err)
	}
	g.logger.Info("stopped")
	return nil
}

// Run is the whole program: it reads the environment, builds the gateway, listens
// on GATEWAY_ADDR and serves until ctx is done (the caller cancels it on SIGINT or
// SIGTERM). Logs go to logOut as JSON lines.
func Run(ctx context.Context, environ []string, logOut io.Writer) error {
	s, err := LoadSettings(environ)
	if err != nil {
		return err
	}
	level, _ := s.Level() // Validated by LoadSettings.
	logger := slog.New(slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: level})).
		With("service", "gateway")

	data, name, err := ConfigSource(s)
	if err != nil {
		return err
	}
	cfg, err := LoadConfig(data, name, s)
	if err != nil {
		return err
	}
	g, err := New(ctx, Options{Settings: s, Config: cfg, Logger: logger})
	if err != nil {
		return err
	}
	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", s.Addr)
	if err != nil {
		g.Close()
		return fmt.Errorf("GATEWAY_ADDR: %w", err)
	}
	logger.Info("listening", "addr", ln.Addr().String(), "config", name,
		"endpoints", len(cfg.Endpoints), "backends", g.backends)
	return g.Serve(ctx, ln)
}
