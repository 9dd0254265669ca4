package gateway

import (
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics holds the gateway's instruments. Each gateway has its own registry, so
// tests can build many gateways in one process.
type metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	// slots caches the instruments of each endpoint by status, so the hot path
	// skips the label hashing of WithLabelValues; index len(slots)-1 is for
	// requests that matched no endpoint.
	slots [][600]atomic.Pointer[instruments]
}

// instruments are the series of one endpoint and status.
type instruments struct {
	count prometheus.Counter
	hist  prometheus.Observer
}

// newMetrics registers the HTTP instruments (named like the services' ones, with
// service="gateway") and the Go runtime and process collectors.
func newMetrics(endpoints int) *metrics {
	labels := prometheus.Labels{"service": "gateway"}
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total", Help: "HTTP requests by route template and status.",
			ConstLabels: labels,
		}, []string{"method", "route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "http_request_duration_seconds", Help: "HTTP request latency by route template and status.",
			ConstLabels: labels, Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"method", "route", "status"}),
	}
	m.slots = make([][600]atomic.Pointer[instruments], endpoints+1)
	m.registry.MustRegister(
		m.requests, m.latency,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// observe records one finished request; slot is the endpoint index, or -1 when
// no endpoint matched (the method label then varies, so it is not cached).
func (m *metrics) observe(slot int, method, route string, status int, elapsed time.Duration) {
	if slot < 0 || status < 100 || status >= 600 {
		code := strconv.Itoa(status)
		m.requests.WithLabelValues(method, route, code).Inc()
		m.latency.WithLabelValues(method, route, code).Observe(elapsed.Seconds())
		return
	}
	p := &m.slots[slot][status]
	in := p.Load()
	if in == nil {
		code := strconv.Itoa(status)
		in = &instruments{
			count: m.requests.WithLabelValues(method, route, code),
			hist:  m.latency.WithLabelValues(method, route, code),
		}
		p.Store(in)
	}
	in.count.Inc()
	in.hist.Observe(elapsed.Seconds())
}

// handler serves the registry in the Prometheus text format.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// metricMethod keeps the method label to a fixed set, so clients cannot blow up
// the number of series with made-up methods.
func metricMethod(m []byte) string {
	switch string(m) {
	case http.MethodGet:
		return http.MethodGet
	case http.MethodHead:
		return http.MethodHead
	case http.MethodPost:
		return http.MethodPost
	case http.MethodPut:
		return http.MethodPut
	case http.MethodPatch:
		return http.MethodPatch
	case http.MethodDelete:
		return http.MethodDelete
	case http.MethodOptions:
		return http.MethodOptions
	}
	return "OTHER"
}

// routeLabel turns lura's route ("/api/v1/cards/:id") into the template style of the
// API documentation ("/api/v1/cards/{id}").
func routeLabel(path string) string {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		if len(s) > 1 && (s[0] == ':' || s[0] == '*') {
			segs[i] = "{" + s[1:] + "}"
		}
	}
	return strings.Join(segs, "/")
}
