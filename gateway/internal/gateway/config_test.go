package gateway_test

import (
	"encoding/json"
	"strings"
	"testing"

	assets "github.com/bugtracker/bugtracker/gateway"
	"github.com/bugtracker/bugtracker/gateway/internal/gateway"
)

func TestLoadSettingsDefaults(t *testing.T) {
	s, err := gateway.LoadSettings(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := gateway.Settings{
		Addr:       ":8080",
		AdminAddr:  "127.0.0.1:9091",
		GOGC:       "400",
		AuthURL:    "http://127.0.0.1:8081",
		ProjectURL: "http://127.0.0.1:8082",
		CommentURL: "http://127.0.0.1:8083",
		NotifURL:   "http://127.0.0.1:8084",
		LogLevel:   "info",
	}
	if s != want {
		t.Errorf("got %+v\nwant %+v", s, want)
	}
}

func TestLoadSettingsOverrides(t *testing.T) {
	s, err := gateway.LoadSettings([]string{
		"GATEWAY_ADDR=127.0.0.1:18080",
		"GATEWAY_AUTH_URL=https://auth.internal:9443/",
		"GATEWAY_CONFIG=/etc/gateway/krakend.json",
		"LOG_LEVEL=debug",
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.Addr != "127.0.0.1:18080" || s.AuthURL != "https://auth.internal:9443" ||
		s.ConfigFile != "/etc/gateway/krakend.json" || s.LogLevel != "debug" {
		t.Errorf("got %+v", s)
	}
}

func TestLoadSettingsNamesTheBadVariable(t *testing.T) {
	for _, tc := range []struct{ env, variable string }{
		{"GATEWAY_AUTH_URL=::not a url", "GATEWAY_AUTH_URL"},
		{"GATEWAY_PROJECT_URL=127.0.0.1:8082", "GATEWAY_PROJECT_URL"},
		{"GATEWAY_COMMENT_URL=ftp://127.0.0.1:8083", "GATEWAY_COMMENT_URL"},
		{"GATEWAY_NOTIF_URL=http://", "GATEWAY_NOTIF_URL"},
		{"GATEWAY_NOTIF_URL=http://h:99999", "GATEWAY_NOTIF_URL"},
		{"GATEWAY_AUTH_URL=http://127.0.0.1:8081?x=1", "GATEWAY_AUTH_URL"},
		{"GATEWAY_ADDR=8080", "GATEWAY_ADDR"},
		{"GATEWAY_ADDR=:http", "GATEWAY_ADDR"},
		{"LOG_LEVEL=loud", "LOG_LEVEL"},
		{"GATEWAY_ADMIN_ADDR=9091", "GATEWAY_ADMIN_ADDR"},
		{"GATEWAY_GOGC=5", "GATEWAY_GOGC"},
		{"GATEWAY_GOGC=lots", "GATEWAY_GOGC"},
	} {
		t.Run(tc.env, func(t *testing.T) {
			_, err := gateway.LoadSettings([]string{tc.env})
			if err == nil || !strings.Contains(err.Error(), tc.variable) {
				t.Fatalf("error = %v, want one naming %s", err, tc.variable)
			}
		})
	}
}

func TestLoadSettingsHidesCredentials(t *testing.T) {
	_, err := gateway.LoadSettings([]string{"GATEWAY_AUTH_URL=http://user:s3cret@auth:8081"})
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("error = %v; want one that does not echo the password", err)
	}
}

func TestLoadConfigPointsBackendsAtTheSettings(t *testing.T) {
	s, err := gateway.LoadSettings([]string{"GATEWAY_COMMENT_URL=http://comment.internal:7000"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := gateway.LoadConfig(assets.KrakendConfig, "krakend.json", s)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range cfg.Endpoints {
		if e.Endpoint == "/api/v1/comments/:id" {
			if got := e.Backend[0].Host; len(got) != 1 || got[0] != "http://comment.internal:7000" {
				t.Errorf("comment backend host = %v", got)
			}
			return
		}
	}
	t.Fatal("no /api/v1/comments/{id} endpoint")
}

func TestLoadConfigRejectsUnsafeOrBrokenEndpoints(t *testing.T) {
	s, err := gateway.LoadSettings(nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		edit func(e map[string]any)
		want string
	}{
		"json output": {func(e map[string]any) { e["output_encoding"] = "json" }, "no-op"},
		"all headers": {func(e map[string]any) { e["input_headers"] = []any{"*"} }, `"*"`},
		"bad timeout": {func(e map[string]any) { e["timeout"] = "10 seconds" }, "timeout"},
		"unknown service": {func(e map[string]any) {
			backend(e)["extra_config"] = map[string]any{gateway.Namespace: map[string]any{"service": "billing"}}
		}, "billing"},
		"no service": {func(e map[string]any) { delete(backend(e), "extra_config") }, gateway.Namespace},
	} {
		t.Run(name, func(t *testing.T) {
			var cfg map[string]any
			if err := json.Unmarshal(assets.KrakendConfig, &cfg); err != nil {
				t.Fatal(err)
			}
			tc.edit(cfg["endpoints"].([]any)[0].(map[string]any))
			data, _ := json.Marshal(cfg)
			_, err := gateway.LoadConfig(data, "test.json", s)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "test.json") {
				t.Fatalf("error = %v, want one naming the file and %q", err, tc.want)
			}
		})
	}
}

func backend(e map[string]any) map[string]any {
	return e["backend"].([]any)[0].(map[string]any)
}

func TestConfigSourceReportsMissingFile(t *testing.T) {
	_, _, err := gateway.ConfigSource(gateway.Settings{ConfigFile: "/does/not/exist.json"})
	if err == nil || !strings.Contains(err.Error(), "GATEWAY_CONFIG") {
		t.Fatalf("error = %v, want one naming GATEWAY_CONFIG", err)
	}
}

// TestKrakendJSONIsGenerated fails when the committed krakend.json is not what the
// route table renders: edit internal/gateway/routes.go, then `go generate ./...`.
func TestKrakendJSONIsGenerated(t *testing.T) {
	want, err := gateway.RenderConfig()
	if err != nil {
		t.Fatal(err)
	}
	if string(want) != string(assets.KrakendConfig) {
		t.Fatal("krakend.json differs from what internal/gateway.Routes renders; run `go generate ./...` in gateway/ and commit it")
	}
}
