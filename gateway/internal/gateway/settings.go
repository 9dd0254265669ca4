package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/caarlos0/env/v11"
)

// Service names used in krakend.json to say which backend serves an endpoint.
const (
	ServiceAuth    = "auth"
	ServiceProject = "project"
	ServiceComment = "comment"
	ServiceNotif   = "notif"
)

// Settings is everything the gateway reads from its environment. Backend base URLs
// here override the hosts written in the routing configuration, so one committed
// krakend.json serves laptops, CI and deployments alike.
type Settings struct {
	// Addr is the listen address, host:port; an empty host listens on every interface.
	Addr string `env:"GATEWAY_ADDR" envDefault:":8080"`
	// AdminAddr is the listen address of the admin listener (/metrics). It defaults
	// to loopback so that metrics are never on the public port or interface.
	AdminAddr string `env:"GATEWAY_ADMIN_ADDR" envDefault:"127.0.0.1:9091"`
	// GOGC is the garbage collector's target percentage (as the GOGC variable):
	// the gateway allocates little per request but at a high rate, so a higher
	// target trades a few MB of heap for less GC CPU. 0 keeps Go's default (or
	// the GOGC variable), -1 switches the collector off (only sensible together
	// with GOMEMLIMIT, which Go reads itself).
	GOGC string `env:"GATEWAY_GOGC" envDefault:"400"`
	// ConfigFile, when set, replaces the embedded krakend.json.
	ConfigFile string `env:"GATEWAY_CONFIG"`
	// AuthURL is the base URL of the auth service.
	AuthURL string `env:"GATEWAY_AUTH_URL" envDefault:"http://127.0.0.1:8081"`
	// ProjectURL is the base URL of the project service.
	ProjectURL string `env:"GATEWAY_PROJECT_URL" envDefault:"http://127.0.0.1:8082"`
	// CommentURL is the base URL of the comment service.
	CommentURL string `env:"GATEWAY_COMMENT_URL" envDefault:"http://127.0.0.1:8083"`
	// NotifURL is the base URL of the notif service.
	NotifURL string `env:"GATEWAY_NOTIF_URL" envDefault:"http://127.0.0.1:8084"`
	// LogLevel is one of debug, info, warn or error.
	LogLevel string `env:"LOG_LEVEL" envDefault:"info"`
}

// LoadSettings reads the settings from environ, a "KEY=value" list such as
// os.Environ(), and validates them. Its errors name the offending variable.
func LoadSettings(environ []string) (Settings, error) {
	var s Settings
	vars := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	if err := env.ParseWithOptions(&s, env.Options{Environment: vars}); err != nil {
		return Settings{}, fmt.Errorf("reading environment: %w", err)
	}
	if err := s.Validate(); err != nil {
		return Settings{}, err
	}
	return s, nil
}

// Validate checks every setting and normalises the backend URLs (no trailing slash).
// All problems are reported at once, each prefixed with its variable name.
func (s *Settings) Validate() error {
	var errs []error
	if err := validateAddr(s.Addr); err != nil {
		errs = append(errs, fmt.Errorf("GATEWAY_ADDR: %w", err))
	}
	if err := validateAddr(s.AdminAddr); err != nil {
		errs = append(errs, fmt.Errorf("GATEWAY_ADMIN_ADDR: %w", err))
	}
	if _, err := s.GCPercent(); err != nil {
		errs = append(errs, fmt.Errorf("GATEWAY_GOGC: %w", err))
	}
	for _, b := range []struct {
		name string
		val  *string
	}{
		{"GATEWAY_AUTH_URL", &s.AuthURL},
		{"GATEWAY_PROJECT_URL", &s.ProjectURL},
		{"GATEWAY_COMMENT_URL", &s.CommentURL},
		{"GATEWAY_NOTIF_URL", &s.NotifURL},
	} {
		clean, err := validateBaseURL(*b.val)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", b.name, err))
			continue
		}
		*b.val = clean
	}
	if _, err := s.Level(); err != nil {
		errs = append(errs, fmt.Errorf("LOG_LEVEL: %w", err))
	}
	return errors.Join(errs...)
}

// GCPercent returns the parsed GATEWAY_GOGC.
func (s *Settings) GCPercent() (int, error) {
	n, err := strconv.Atoi(s.GOGC)
	if err != nil || n < -1 || (n > 0 && n < 10) || n > 10000 {
		return 0, fmt.Errorf("want -1 (off), 0 (Go's default) or 10 to 10000, got %q", s.GOGC)
	}
	return n, nil
}

// Level returns the parsed log level.
func (s *Settings) Level() (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s.LogLevel)); err != nil {
		return 0, fmt.Errorf("want debug, info, warn or error, got %q", s.LogLevel)
	}
	return l, nil
}

// BackendURL returns the base URL of the named service and whether the name is known.
func (s *Settings) BackendURL(service string) (string, bool) {
	switch service {
	case ServiceAuth:
		return s.AuthURL, true
	case ServiceProject:
		return s.ProjectURL, true
	case ServiceComment:
		return s.CommentURL, true
	case ServiceNotif:
		return s.NotifURL, true
	}
	return "", false
}

// validateAddr accepts host:port with a numeric port; the host may be empty.
func validateAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("want host:port such as :8080 or 127.0.0.1:8080, got %q", addr)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port must be a number from 0 to 65535, got %q", port)
	}
	return nil
}

// validateBaseURL accepts absolute http(s) URLs with a host and nothing after the
// path, because lura appends the endpoint path to it verbatim.
func validateBaseURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("not a URL: %q", raw)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("want an http:// or https:// URL, got %q", raw)
	}
	if u.Host == "" || u.Hostname() == "" {
		return "", fmt.Errorf("URL has no host: %q", raw)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("URL has a bad port: %q", raw)
		}
	}
	if u.User != nil {
		// The value is not echoed: it holds a credential.
		return "", errors.New("URL must not carry credentials")
	}
	if u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", fmt.Errorf("URL must not carry a query or a fragment: %q", raw)
	}
	return strings.TrimRight(raw, "/"), nil
}
