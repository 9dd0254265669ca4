package gateway_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	assets "github.com/bugtracker/bugtracker/gateway"
)

// ownRoutes are served by the gateway itself and documented too.
var ownRoutes = []string{"GET /healthz", "GET /readyz", "GET /api/v1/openapi.json"}

// publicRoutes need no bearer token (API.md, Conventions).
var publicRoutes = []string{
	"POST /api/v1/auth/register", "POST /api/v1/auth/login", "POST /api/v1/auth/refresh",
	"POST /api/v1/auth/password/forgot", "POST /api/v1/auth/password/reset", "GET /api/v1/auth/jwks.json",
}

type openAPIDoc struct {
	OpenAPI    string                                `json:"openapi"`
	Security   []map[string][]string                 `json:"security"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components map[string]map[string]json.RawMessage `json:"components"`
}

type openAPIOperation struct {
	Security  *[]map[string][]string     `json:"security"`
	Responses map[string]json.RawMessage `json:"responses"`
}

func loadOpenAPI(t *testing.T) (openAPIDoc, map[string]openAPIOperation) {
	t.Helper()
	var doc openAPIDoc
	if err := json.Unmarshal(assets.OpenAPI, &doc); err != nil {
		t.Fatalf("openapi.json is not valid JSON: %v", err)
	}
	ops := map[string]openAPIOperation{}
	for path, item := range doc.Paths {
		for method, raw := range item {
			switch method {
			case "get", "put", "post", "delete", "patch", "head", "options", "trace":
			default:
				continue
			}
			var op openAPIOperation
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			ops[strings.ToUpper(method)+" "+path] = op
		}
	}
	return doc, ops
}

func TestOpenAPIDocumentIsVersion3(t *testing.T) {
	doc, _ := loadOpenAPI(t)
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi = %q, want 3.x", doc.OpenAPI)
	}
	if _, ok := doc.Components["securitySchemes"]["bearerAuth"]; !ok {
		t.Error("no bearerAuth security scheme")
	}
	for _, name := range []string{
		"User", "Tokens", "Project", "Member", "Card", "Comment", "Notification",
		"UserList", "ProjectList", "MemberList", "CardList", "CommentList", "NotificationList",
		"OffsetMeta", "CursorMeta", "PageMeta", "Problem",
	} {
		if _, ok := doc.Components["schemas"][name]; !ok {
			t.Errorf("no schema %s", name)
		}
	}
}

func TestOpenAPIDocumentsExactlyTheGatewayRoutes(t *testing.T) {
	_, ops := loadOpenAPI(t)
	h := newHarness(t)
	want := append(h.gw.Endpoints(), ownRoutes...)

	for _, route := range want {
		if _, ok := ops[route]; !ok {
			t.Errorf("openapi.json does not document %s", route)
		}
	}
	for route := range ops {
		if !slices.Contains(want, route) {
			t.Errorf("openapi.json documents %s, which krakend.json does not route", route)
		}
	}
}

func TestOpenAPIOperationsHaveResponsesAndTheRightSecurity(t *testing.T) {
	doc, ops := loadOpenAPI(t)
	if len(doc.Security) != 1 || doc.Security[0]["bearerAuth"] == nil {
		t.Fatalf("global security = %v, want bearerAuth", doc.Security)
	}
	for route, op := range ops {
		public := slices.Contains(publicRoutes, route) || slices.Contains(ownRoutes, route)
		overridden := op.Security != nil && len(*op.Security) == 0
		if public != overridden {
			t.Errorf("%s: public = %v but security override = %v", route, public, overridden)
		}
		var success bool
		for code := range op.Responses {
			success = success || strings.HasPrefix(code, "2")
		}
		if !success {
			t.Errorf("%s has no 2xx response", route)
		}
		if !public {
			if _, ok := op.Responses["401"]; !ok {
				t.Errorf("%s: no 401 response", route)
			}
		}
	}
}

func TestOpenAPIReferencesResolve(t *testing.T) {
	doc, _ := loadOpenAPI(t)
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if r, ok := v["$ref"].(string); ok {
				parts := strings.Split(strings.TrimPrefix(r, "#/components/"), "/")
				if len(parts) != 2 || !strings.HasPrefix(r, "#/components/") {
					t.Errorf("unexpected $ref %q", r)
				} else if _, ok := doc.Components[parts[0]][parts[1]]; !ok {
					t.Errorf("$ref %q does not resolve", r)
				}
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	var raw any
	if err := json.Unmarshal(assets.OpenAPI, &raw); err != nil {
		t.Fatal(err)
	}
	walk(raw)
}
