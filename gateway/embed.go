// Package gateway holds the gateway's committed files, krakend.json (the routing
// table, generated from internal/gateway.Routes by `go generate`) and openapi.json (the public API document), embedded so that the binary
// runs from any directory without them on disk. The code lives in internal/gateway.
package gateway

import _ "embed"

//go:generate go run ./cmd/krakendgen -o krakend.json

// KrakendConfig is the KrakenD-style routing configuration the gateway uses unless
// GATEWAY_CONFIG names another file.
//
//go:embed krakend.json
var KrakendConfig []byte

// OpenAPI is the OpenAPI 3 document of the whole public API, served at
// /api/v1/openapi.json.
//
//go:embed openapi.json
var OpenAPI []byte
