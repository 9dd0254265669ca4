package gateway

import (
	"bytes"
	"encoding/json"
	"strings"
)

// Route is one public route of API.md and the service that owns it.
type Route struct {
	Method  string
	Path    string // template with {name} parameters, as in API.md
	Service string
}

// Routes is the gateway's route table, the single source of krakend.json: every
// route of API.md, grouped by service. Adding a route here and running
// `go generate ./...` in the gateway module rewrites krakend.json;
// TestKrakendJSONIsGenerated fails while the committed file differs.
var Routes = []Route{
	{"POST", "/api/v1/auth/register", ServiceAuth},
	{"POST", "/api/v1/auth/login", ServiceAuth},
	{"POST", "/api/v1/auth/refresh", ServiceAuth},
	{"POST", "/api/v1/auth/logout", ServiceAuth},
	{"GET", "/api/v1/auth/me", ServiceAuth},
	{"POST", "/api/v1/auth/password", ServiceAuth},
	{"POST", "/api/v1/auth/password/forgot", ServiceAuth},
	{"POST", "/api/v1/auth/password/reset", ServiceAuth},
	{"GET", "/api/v1/auth/jwks.json", ServiceAuth},
	{"GET", "/api/v1/users", ServiceAuth},
	{"GET", "/api/v1/users/{id}", ServiceAuth},

	{"POST", "/api/v1/projects", ServiceProject},
	{"GET", "/api/v1/projects", ServiceProject},
	{"GET", "/api/v1/projects/{id}", ServiceProject},
	{"PATCH", "/api/v1/projects/{id}", ServiceProject},
	{"DELETE", "/api/v1/projects/{id}", ServiceProject},
	{"POST", "/api/v1/projects/{id}/members", ServiceProject},
	{"GET", "/api/v1/projects/{id}/members", ServiceProject},
	{"DELETE", "/api/v1/projects/{id}/members/{userId}", ServiceProject},
	{"POST", "/api/v1/projects/{id}/cards", ServiceProject},
	{"GET", "/api/v1/projects/{id}/cards", ServiceProject},
	{"GET", "/api/v1/cards/{id}", ServiceProject},
	{"PATCH", "/api/v1/cards/{id}", ServiceProject},
	{"DELETE", "/api/v1/cards/{id}", ServiceProject},

	{"POST", "/api/v1/cards/{id}/comments", ServiceComment},
	{"GET", "/api/v1/cards/{id}/comments", ServiceComment},
	{"GET", "/api/v1/comments/{id}", ServiceComment},
	{"DELETE", "/api/v1/comments/{id}", ServiceComment},

	{"GET", "/api/v1/notifications", ServiceNotif},
	{"PATCH", "/api/v1/notifications/{id}", ServiceNotif},
	{"POST", "/api/v1/notifications/read-all", ServiceNotif},
}

// forwardedHeaders is the header allow-list of every endpoint: what the services
// read. Anything else a client sends (cookies, internal headers) stays at the
// gateway; X-Forwarded-For is always replaced by the peer address.
var forwardedHeaders = []string{
	"Authorization", "Content-Type", "Content-Length", "Accept", "X-Request-Id", "User-Agent", "X-Forwarded-For",
}

// endpointTimeout is every endpoint's timeout.
const endpointTimeout = "10s"

// defaultServiceHosts are the hosts written into krakend.json for readers of the
// file; the gateway replaces them with GATEWAY_*_URL at start.
var defaultServiceHosts = map[string]string{
	ServiceAuth:    "http://127.0.0.1:8081",
	ServiceProject: "http://127.0.0.1:8082",
	ServiceComment: "http://127.0.0.1:8083",
	ServiceNotif:   "http://127.0.0.1:8084",
}

// RenderConfig renders krakend.json from Routes: one no-op pass-through endpoint
// per route, each naming its service in the gateway's extra_config namespace.
func RenderConfig() ([]byte, error) {
	type backend struct {
		Host        []string                  `json:"host"`
		URLPattern  string                    `json:"url_pattern"`
		Method      string                    `json:"method"`
		Encoding    string                    `json:"encoding"`
		ExtraConfig map[string]map[string]any `json:"extra_config"`
	}
	type endpointConfig struct {
		Endpoint          string    `json:"endpoint"`
		Method            string    `json:"method"`
		Timeout           string    `json:"timeout"`
		OutputEncoding    string    `json:"output_encoding"`
		InputHeaders      []string  `json:"input_headers"`
		InputQueryStrings []string  `json:"input_query_strings"`
		Backend           []backend `json:"backend"`
	}
	doc := struct {
		Schema         string           `json:"$schema"`
		Version        int              `json:"version"`
		Name           string           `json:"name"`
		Timeout        string           `json:"timeout"`
		OutputEncoding string           `json:"output_encoding"`
		Endpoints      []endpointConfig `json:"endpoints"`
	}{
		Schema: "https://www.krakend.io/schema/v2.7/krakend.json", Version: 3,
		Name: "bugtracker-gateway", Timeout: endpointTimeout, OutputEncoding: "no-op",
	}
	for _, r := range Routes {
		doc.Endpoints = append(doc.Endpoints, endpointConfig{
			Endpoint: r.Path, Method: r.Method, Timeout: endpointTimeout, OutputEncoding: "no-op",
			InputHeaders: forwardedHeaders, InputQueryStrings: []string{"*"},
			Backend: []backend{{
				Host:        []string{defaultServiceHosts[r.Service]},
				URLPattern:  r.Path,
				Method:      r.Method,
				Encoding:    "no-op",
				ExtraConfig: map[string]map[string]any{Namespace: {"service": r.Service}},
			}},
		})
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return []byte(strings.ReplaceAll(buf.String(), "\t", "  ")), nil
}
