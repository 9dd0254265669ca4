package launcher_test

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/bugtracker/bugtracker/devstack/launcher"
)

func TestLoadOrCreateSecret(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dev-jwt-secret")

	first, err := launcher.LoadOrCreateSecret(path)
	if err != nil {
		t.Fatalf("first LoadOrCreateSecret: %v", err)
	}

	if raw, err := hex.DecodeString(first); err != nil || len(raw) != 32 {
		t.Errorf("secret %q is not 32 hex-encoded bytes", first)
	}

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}

	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("secret file mode %v, want 0600", perm)
	}

	second, err := launcher.LoadOrCreateSecret(path)
	if err != nil {
		t.Fatalf("second LoadOrCreateSecret: %v", err)
	}

	if second != first {
		t.Errorf("second call returned %q, want the stored %q", second, first)
	}

	other, err := launcher.LoadOrCreateSecret(filepath.Join(t.TempDir(), "dev-cursor-secret"))
	if err != nil {
		t.Fatal(err)
	}

	if other == first {
		t.Error("two new secrets are equal")
	}

	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	regenerated, err := launcher.LoadOrCreateSecret(path)
	if err != nil {
		t.Fatal(err)
	}

	if regenerated == "" || regenerated == first {
		t.Errorf("an empty secret file was not regenerated (got %q)", regenerated)
	}
}

func TestApplyDefaults(t *testing.T) {
	env := launcher.ParseEnv([]string{
		"NOTIF_HTTP_ADDR=127.0.0.1:9094",
		"LOG_LEVEL=debug",
		"GATEWAY_AUTH_URL=http://auth.internal:1234",
		"PROJECT_HTTP_ADDR=0.0.0.0:8082",
		"EMPTY=",
	})

	launcher.ApplyDefaults(env, "/abs/data", []string{"auth", "notif", "project", "gateway"})

	want := map[string]string{
		"AUTH_DATABASE_URL":    "sqlite:///abs/data/auth.db",
		"AUTH_MAIL_DIR":        "/abs/data/mail",
		"AUTH_HTTP_ADDR":       "127.0.0.1:8081",
		"COMMENT_DATABASE_URL": "sqlite:///abs/data/comment.db",
		"COMMENT_HTTP_ADDR":    "127.0.0.1:8083",
		"NOTIF_HTTP_ADDR":      "127.0.0.1:9094",
		"NOTIF_MONGO_DATABASE": "notif",
		"GATEWAY_ADDR":         ":8080",
		"GATEWAY_AUTH_URL":     "http://auth.internal:1234",
		"GATEWAY_NOTIF_URL":    "http://127.0.0.1:9094",
		"GATEWAY_PROJECT_URL":  "http://127.0.0.1:8082",
		"LOG_LEVEL":            "debug",
	}

	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}

	if _, ok := env["GATEWAY_GATEWAY_URL"]; ok {
		t.Error("the gateway got a URL for itself")
	}

	list := env.List()
	if !slices.IsSorted(list) || !slices.Contains(list, "LOG_LEVEL=debug") {
		t.Errorf("List() = %v, want sorted KEY=value pairs", list)
	}
}

func TestAddrVarAndBaseURL(t *testing.T) {
	for service, want := range map[string]string{
		"auth":    "AUTH_HTTP_ADDR",
		"notif":   "NOTIF_HTTP_ADDR",
		"gateway": "GATEWAY_ADDR",
		"comment": "COMMENT_HTTP_ADDR",
	} {
		if got := launcher.AddrVar(service); got != want {
			t.Errorf("AddrVar(%q) = %q, want %q", service, got, want)
		}
	}

	for addr, want := range map[string]string{
		":8080":          "http://127.0.0.1:8080",
		"0.0.0.0:8080":   "http://127.0.0.1:8080",
		"[::]:8080":      "http://127.0.0.1:8080",
		"127.0.0.1:8081": "http://127.0.0.1:8081",
		"[::1]:8081":     "http://[::1]:8081",
		"localhost:9000": "http://localhost:9000",
	} {
		if got := launcher.BaseURL(addr); got != want {
			t.Errorf("BaseURL(%q) = %q, want %q", addr, got, want)
		}
	}
}

func TestEnsureSigningKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), launcher.DevSigningKeyFile)
	if err := launcher.EnsureSigningKey(path); err != nil {
		t.Fatal(err)
	}

	first, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	block, _ := pem.Decode(first)
	if block == nil || block.Type != "PRIVATE KEY" {
		t.Fatalf("not a PEM private key: %q", first)
	}

	if key, err := x509.ParsePKCS8PrivateKey(block.Bytes); err != nil {
		t.Fatal(err)
	} else if _, ok := key.(ed25519.PrivateKey); !ok {
		t.Fatalf("key is %T, want Ed25519", key)
	}

	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}

	if err := launcher.EnsureSigningKey(path); err != nil {
		t.Fatal(err)
	}

	if again, _ := os.ReadFile(path); string(again) != string(first) {
		t.Error("an existing key was replaced")
	}

	if err := os.WriteFile(path, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}

	if err := launcher.EnsureSigningKey(path); err == nil {
		t.Error("a file that is not a key was accepted (or silently overwritten)")
	}
}
