// Package gateway builds the bug tracker's API gateway: lura (the KrakenD engine)
// reads krakend.json and builds each endpoint's proxy pipeline, whose last stage is
// a fasthttp client; a fasthttp server in front routes requests into those
// pipelines and serves the gateway's own health, readiness and OpenAPI routes.
// Metrics live on a separate admin listener.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/luraproject/lura/v2/config"
	"github.com/luraproject/lura/v2/proxy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

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
	// Logger receives errors and notices; nil means slog.Default(). It also
	// receives the access log when AccessLog is nil.
	Logger *slog.Logger
	// AccessLog receives the access log, one JSON line per request in the format
	// of a slog JSON line, written in one Write each (Logger's level applies); nil
	// sends it through Logger instead, at several times the CPU cost per request.
	AccessLog io.Writer
	// MaxClientConns bounds the client connections served at once; 0 means 4096.
	MaxClientConns int
}

// endpoint is one route of krakend.json with the lura pipeline built for it.
type endpoint struct {
	index   int    // position in Gateway.eps, also the metrics slot
	method  string // upper case
	label   string // "/api/v1/cards/{id}", the documentation's template
	timeout time.Duration
	proxy   proxy.Proxy
	// headers are the input_headers to copy to the service (canonical names),
	// without the ones the gateway sets itself.
	headers [][]byte
	// params are the lura parameter names ("Id", "UserId") in path order.
	params []string
	// queryAll forwards the query string untouched; otherwise only queryKeys pass.
	queryAll  bool
	queryKeys [][]byte
}

// Gateway is a built gateway: its routes, its pipelines and its clients.
type Gateway struct {
	logger   *slog.Logger
	access   *accessLog // nil: the access log goes through logger
	settings Settings
	openAPI  []byte
	metrics  *metrics
	router   *router
	eps      []*endpoint
	maxConns int
	maxWait  time.Duration // longest endpoint timeout

	clientsMu sync.Mutex
	clients   map[string]*backendClient // base URL -> client, shared by the endpoints of a service
	backends  map[string]string         // service name -> base URL, for readiness probes
	services  []string
}

// New builds the gateway from the options; nothing listens yet.
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
		settings: opts.Settings,
		openAPI:  openAPI,
		clients:  map[string]*backendClient{},
		backends: map[string]string{},
		services: services(cfg),
		maxConns: opts.MaxClientConns,
	}
	if g.maxConns <= 0 {
		g.maxConns = defaultMaxClientConns
	}
	if opts.AccessLog != nil {
		g.access = newAccessLog(opts.AccessLog, logger)
	}
	for _, svc := range g.services {
		g.backends[svc], _ = opts.Settings.BackendURL(svc)
	}
	if err := g.build(ctx, cfg); err != nil {
		return nil, err
	}
	g.metrics = newMetrics(len(g.eps))
	return g, nil
}

// build lets lura build every endpoint's proxy pipeline (its stages: the request
// builder, the filters, the plugin and static stages; see proxyFactory) around the
// gateway's fasthttp backend, and compiles the routes.
func (g *Gateway) build(_ context.Context, cfg config.ServiceConfig) error {
	factory := g.proxyFactory()
	for i, e := range cfg.Endpoints {
		p, err := factory.New(e)
		if err != nil {
			return fmt.Errorf("gateway: endpoint %s %s: %w", e.Method, e.Endpoint, err)
		}
		ep := &endpoint{
			index:   i,
			method:  strings.ToUpper(e.Method),
			label:   routeLabel(e.Endpoint),
			timeout: e.Timeout,
			proxy:   p,
		}
		for _, h := range e.HeadersToPass {
			switch h {
			case "X-Forwarded-For", "Content-Length", "Host", "Connection", "Transfer-Encoding":
				// Set by the gateway or by the client library, never copied.
			default:
				ep.headers = append(ep.headers, []byte(h))
			}
		}
		for _, q := range e.QueryString {
			if q == "*" {
				ep.queryAll = true
			}
			ep.queryKeys = append(ep.queryKeys, []byte(q))
		}
		for _, s := range strings.Split(e.Endpoint, "/") {
			if strings.HasPrefix(s, ":") && len(s) > 1 {
				// lura's request builder fills {{.Id}} from the key "Id".
				ep.params = append(ep.params, strings.ToUpper(s[1:2])+s[2:])
			}
		}
		g.maxWait = max(g.maxWait, e.Timeout)
		g.eps = append(g.eps, ep)
	}
	r, err := newRouter(g.eps)
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	g.router = r
	return nil
}

// Endpoints lists the proxied endpoints as "METHOD /path/{param}", in configuration
// order; the gateway's own routes (health, docs) are not included.
func (g *Gateway) Endpoints() []string {
	out := make([]string, 0, len(g.eps))
	for _, ep := range g.eps {
		out = append(out, ep.method+" "+ep.label)
	}
	return slices.Clip(out)
}

// Registry returns the Prometheus registry the admin listener serves at /metrics.
func (g *Gateway) Registry() *prometheus.Registry { return g.metrics.registry }

// AdminHandler serves the admin routes: /metrics, and /healthz so that the admin
// port can be probed on its own. It is never mounted on the public port.
func (g *Gateway) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", g.metrics.handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"ok"}`)
	})
	return mux
}

// Close releases the idle connections to the services.
func (g *Gateway) Close() {
	g.clientsMu.Lock()
	defer g.clientsMu.Unlock()
	for _, c := range g.clients {
		c.tr.closeIdle()
		c.probe.CloseIdleConnections()
	}
}

// Serve answers public requests on public and admin requests on admin (which may
// be nil) until ctx is done; then it stops accepting, lets in-flight requests
// finish (up to 30 s) and returns nil.
func (g *Gateway) Serve(ctx context.Context, public, admin net.Listener) error {
	srv := g.newServer()
	served := make(chan error, 2)
	ln := newLimitListener(public, g.maxConns)
	go func() { served <- srv.Serve(ln) }()

	var adminSrv *http.Server
	if admin != nil {
		adminSrv = &http.Server{
			Handler:           g.AdminHandler(),
			ReadHeaderTimeout: 5 * time.Second,
			ErrorLog:          slog.NewLogLogger(g.logger.Handler(), slog.LevelWarn),
		}
		go func() {
			if err := adminSrv.Serve(admin); err != nil && !errors.Is(err, http.ErrServerClosed) {
				served <- fmt.Errorf("admin listener: %w", err)
			}
		}()
	}

	var serveErr error
	select {
	case serveErr = <-served:
	case <-ctx.Done():
	}
	g.logger.Info("shutting down: finishing in-flight requests")
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	shutDown := make(chan struct{})
	go func() {
		// Connections that never sent a byte hold no request: close them once they
		// are old enough, while the shutdown waits for the others.
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			ln.closeSilent(unusedConnGrace)
			select {
			case <-shutDown:
				return
			case <-t.C:
			}
		}
	}()
	err := srv.ShutdownWithContext(shutdownCtx)
	close(shutDown)
	if adminSrv != nil {
		_ = adminSrv.Shutdown(shutdownCtx)
	}
	g.Close()
	if serveErr != nil {
		return fmt.Errorf("gateway: serving: %w", serveErr)
	}
	if err != nil {
		return fmt.Errorf("gateway: shutdown: %w", err)
	}
	g.logger.Info("stopped")
	return nil
}

// newServer configures the public fasthttp server.
func (g *Gateway) newServer() *fasthttp.Server {
	return &fasthttp.Server{
		Handler:      g.serve,
		ErrorHandler: g.serveError,
		Name:         "",
		// The request body limit of the contract; larger bodies, declared or
		// chunked, end in serveError with ErrBodyTooLarge.
		MaxRequestBodySize: maxBodyBytes,
		// The request line and headers must fit in this buffer (431 otherwise).
		ReadBufferSize:  readBufferSize,
		WriteBufferSize: 16 << 10,
		ReadTimeout:     30 * time.Second,
		// Long enough for the slowest endpoint to answer and its body to be relayed.
		WriteTimeout:                  g.maxWait + 30*time.Second,
		IdleTimeout:                   120 * time.Second,
		NoDefaultServerHeader:         true,
		NoDefaultContentType:          true,
		DisablePreParseMultipartForm:  true,
		DisableHeaderNamesNormalizing: false,
		CloseOnShutdown:               true,
		Logger:                        fasthttpLogger{g.logger},
	}
}

// readBufferSize bounds the request line plus headers (net/http's default limit
// would be 1 MiB; a bearer token and the usual headers need about 2 KiB).
const readBufferSize = 16 << 10

// fasthttpLogger sends fasthttp's own messages (accept errors and the like) to slog.
type fasthttpLogger struct{ l *slog.Logger }

// Printf logs at warn level: fasthttp only reports connection-level trouble here.
func (l fasthttpLogger) Printf(format string, args ...any) {
	l.l.Warn(fmt.Sprintf(format, args...), "component", "fasthttp")
}

// Run is the whole program: it reads the environment, tunes the garbage collector,
// builds the gateway, listens on GATEWAY_ADDR and GATEWAY_ADMIN_ADDR and serves
// until ctx is done (the caller cancels it on SIGINT or SIGTERM). Logs go to logOut
// as JSON lines.
func Run(ctx context.Context, environ []string, logOut io.Writer) error {
	s, err := LoadSettings(environ)
	if err != nil {
		return err
	}
	level, _ := s.Level() // Validated by LoadSettings.
	lw := newLogWriter(logOut)
	defer lw.Close()
	logger := slog.New(slog.NewJSONHandler(lw, &slog.HandlerOptions{Level: level})).
		With("service", "gateway")
	if gc, _ := s.GCPercent(); gc != 0 { // Validated by LoadSettings.
		debug.SetGCPercent(gc)
	}

	data, name, err := ConfigSource(s)
	if err != nil {
		return err
	}
	cfg, err := LoadConfig(data, name, s)
	if err != nil {
		return err
	}
	g, err := New(ctx, Options{Settings: s, Config: cfg, Logger: logger, AccessLog: lw})
	if err != nil {
		return err
	}
	lc := new(net.ListenConfig)
	ln, err := lc.Listen(ctx, "tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("GATEWAY_ADDR: %w", err)
	}
	admin, err := lc.Listen(ctx, "tcp", s.AdminAddr)
	if err != nil {
		_ = ln.Close()
		return fmt.Errorf("GATEWAY_ADMIN_ADDR: %w", err)
	}
	logger.Info("listening", "addr", ln.Addr().String(), "admin_addr", admin.Addr().String(),
		"config", name, "endpoints", len(cfg.Endpoints), "backends", g.backends, "gogc", s.GOGC)
	return g.Serve(ctx, ln, admin)
}
