package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/luraproject/lura/v2/config"
	"github.com/luraproject/lura/v2/encoding"

	assets "github.com/bugtracker/bugtracker/gateway"
)

// Namespace is the extra_config key under which each backend of krakend.json names
// the service that serves it: {"github_com/bugtracker/gateway": {"service": "auth"}}.
// The service name, not the host written in the file, decides where requests go.
const Namespace = "github_com/bugtracker/gateway"

// embeddedConfigName is how error messages refer to the embedded krakend.json.
const embeddedConfigName = "krakend.json (embedded)"

// ConfigSource returns the routing configuration to use: the file named by
// GATEWAY_CONFIG when set, else the embedded krakend.json; name is for messages.
func ConfigSource(s Settings) (data []byte, name string, err error) {
	if s.ConfigFile == "" {
		return assets.KrakendConfig, embeddedConfigName, nil
	}
	data, err = os.ReadFile(s.ConfigFile)
	if err != nil {
		return nil, "", fmt.Errorf("GATEWAY_CONFIG: %w", err)
	}
	return data, s.ConfigFile, nil
}

// LoadConfig parses a KrakenD-style configuration with lura's parser, checks that
// every endpoint is a plain pass-through the gateway can serve, and points each
// backend at the base URL the settings give for its service.
func LoadConfig(data []byte, name string, s Settings) (config.ServiceConfig, error) {
	if err := checkDurations(data); err != nil {
		return config.ServiceConfig{}, fmt.Errorf("%s: %w", name, err)
	}
	parser := config.NewParserWithFileReader(func(string) ([]byte, error) { return data, nil })
	cfg, err := parser.Parse(name)
	if err != nil {
		return config.ServiceConfig{}, err
	}
	if len(cfg.Endpoints) == 0 {
		return config.ServiceConfig{}, fmt.Errorf("%s: no endpoints", name)
	}
	var errs []error
	for _, e := range cfg.Endpoints {
		if err := configureEndpoint(e, s); err != nil {
			errs = append(errs, fmt.Errorf("%s: endpoint %s %s: %w", name, e.Method, e.Endpoint, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return config.ServiceConfig{}, err
	}
	return cfg, nil
}

// configureEndpoint validates one endpoint and sets its backend host.
func configureEndpoint(e *config.EndpointConfig, s Settings) error {
	if e.OutputEncoding != encoding.NOOP {
		return errors.New(`output_encoding must be "no-op" so statuses, headers and bodies pass unchanged`)
	}
	if len(e.Backend) != 1 {
		return fmt.Errorf("want exactly one backend, got %d", len(e.Backend))
	}
	if slices.Contains(e.HeadersToPass, "*") {
		return errors.New(`input_headers must list header names; "*" would let clients forge internal headers`)
	}
	b := e.Backend[0]
	if b.SD != "" && b.SD != "static" {
		return fmt.Errorf("backend sd %q is not supported; hosts come from the environment", b.SD)
	}
	service, err := backendService(b)
	if err != nil {
		return err
	}
	base, ok := s.BackendURL(service)
	if !ok {
		return fmt.Errorf("unknown service %q; want %s, %s, %s or %s",
			service, ServiceAuth, ServiceProject, ServiceComment, ServiceNotif)
	}
	b.Host = []string{base}
	return nil
}

// backendService reads the service name from the backend's extra_config.
func backendService(b *config.Backend) (string, error) {
	opts, ok := b.ExtraConfig[Namespace].(map[string]interface{})
	if !ok {
		return "", fmt.Errorf(`backend has no extra_config %q with a "service" name`, Namespace)
	}
	service, ok := opts["service"].(string)
	if !ok || service == "" {
		return "", fmt.Errorf(`backend extra_config %q has no "service" name`, Namespace)
	}
	return service, nil
}

// checkDurations rejects unparsable timeouts, which lura would silently replace
// with its 2 s default.
func checkDurations(data []byte) error {
	var raw struct {
		Timeout   string `json:"timeout"`
		Endpoints []struct {
			Endpoint string `json:"endpoint"`
			Method   string `json:"method"`
			Timeout  string `json:"timeout"`
		} `json:"endpoints"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return fmt.Errorf("not valid JSON: %w", err)
	}
	check := func(what, v string) error {
		if v == "" {
			return nil
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("%s: timeout %q is not a positive duration such as \"10s\"", what, v)
		}
		return nil
	}
	errs := []error{check("service", raw.Timeout)}
	for _, e := range raw.Endpoints {
		errs = append(errs, check("endpoint "+e.Method+" "+e.Endpoint, e.Timeout))
	}
	return errors.Join(errs...)
}

// services returns the sorted, distinct service names the configuration routes to.
func services(cfg config.ServiceConfig) []string {
	var out []string
	for _, e := range cfg.Endpoints {
		for _, b := range e.Backend {
			if s, err := backendService(b); err == nil && !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	slices.Sort(out)
	return out
}
