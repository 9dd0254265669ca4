package launcher

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Env is a set of environment variables keyed by name.
type Env map[string]string

// ParseEnv turns "KEY=value" pairs, as returned by os.Environ, into an Env.
// Later entries win over earlier ones with the same name.
func ParseEnv(environ []string) Env {
	env := make(Env, len(environ))

	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			continue
		}

		env[k] = v
	}

	return env
}

// Get returns the value of name, or def when name is unset or empty.
func (e Env) Get(name, def string) string {
	if v := e[name]; v != "" {
		return v
	}

	return def
}

// IsSet reports whether name has a non-empty value.
func (e Env) IsSet(name string) bool {
	return e[name] != ""
}

// SetDefault sets name to value unless it already has a non-empty value.
func (e Env) SetDefault(name, value string) {
	if !e.IsSet(name) {
		e[name] = value
	}
}

// List returns the variables as sorted "KEY=value" pairs.
func (e Env) List() []string {
	list := make([]string, 0, len(e))
	for k, v := range e {
		list = append(list, k+"="+v)
	}

	slices.Sort(list)

	return list
}

// AddrVar returns the name of the environment variable holding the HTTP
// listen address of service: GATEWAY_ADDR for the gateway and
// <SERVICE>_HTTP_ADDR (for example AUTH_HTTP_ADDR) for the others.
func AddrVar(service string) string {
	name := strings.ToUpper(strings.ReplaceAll(service, "-", "_"))
	if name == "GATEWAY" {
		return "GATEWAY_ADDR"
	}

	return name + "_HTTP_ADDR"
}

// gatewayURLVar returns the name of the variable through which the gateway
// learns the base URL of service, for example GATEWAY_AUTH_URL.
func gatewayURLVar(service string) string {
	return "GATEWAY_" + strings.ToUpper(strings.ReplaceAll(service, "-", "_")) + "_URL"
}

// ApplyDefaults fills in the development defaults for the services' settings
// wherever a variable is unset or empty. dataDir must be absolute. Derived
// values (the gateway's backend URLs) are computed from the final listen
// addresses, so an address set by the caller is honoured by both.
func ApplyDefaults(env Env, dataDir string, services []string) {
	env.SetDefault("AUTH_DATABASE_URL", "sqlite://"+filepath.Join(dataDir, "auth.db"))
	env.SetDefault("AUTH_MAIL_DIR", filepath.Join(dataDir, "mail"))
	env.SetDefault("AUTH_HTTP_ADDR", "127.0.0.1:8081")
	env.SetDefault("JWT_JWKS_URL", BaseURL(env["AUTH_HTTP_ADDR"])+"/api/v1/auth/jwks.json")
	env.SetDefault("PROJECT_DATABASE_URL", "sqlite://"+filepath.Join(dataDir, "project.db"))
	env.SetDefault("PROJECT_HTTP_ADDR", "127.0.0.1:8082")
	env.SetDefault("COMMENT_DATABASE_URL", "sqlite://"+filepath.Join(dataDir, "comment.db"))
	env.SetDefault("COMMENT_HTTP_ADDR", "127.0.0.1:8083")
	env.SetDefault("NOTIF_HTTP_ADDR", "127.0.0.1:8084")
	env.SetDefault("NOTIF_MONGO_DATABASE", "notif")
	env.SetDefault("GATEWAY_ADDR", ":8080")
	env.SetDefault("LOG_LEVEL", "info")

	backends := []string{"auth", "project", "comment", "notif"}
	for _, s := range services {
		if s != "gateway" && !slices.Contains(backends, s) {
			backends = append(backends, s)
		}
	}

	for _, s := range backends {
		if addr := env[AddrVar(s)]; addr != "" {
			env.SetDefault(gatewayURLVar(s), BaseURL(addr))
		}
	}
}

// BaseURL returns the http URL under which a server listening on addr is
// reached from this machine: a wildcard or empty host becomes 127.0.0.1.
func BaseURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}

	switch host {
	case "", "0.0.0.0", "::", "[::]":
		host = "127.0.0.1"
	}

	return "http://" + net.JoinHostPort(host, port)
}

// secretBytes is the size of generated development secrets.
const secretBytes = 32

// LoadOrCreateSecret returns the development secret stored in path. On first
// use, or when the file is empty, it generates 32 random bytes, stores them
// hex-encoded in path with mode 0600 and returns them.
func LoadOrCreateSecret(path string) (string, error) {
	b, err := os.ReadFile(path) //nolint:gosec // the path is the launcher's own data directory

	switch {
	case err == nil:
		if s := strings.TrimSpace(string(b)); s != "" {
			return s, nil
		}
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("read secret %s: %w", path, err)
	}

	raw := make([]byte, secretBytes)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("generate secret: %w", err)
	}

	secret := hex.EncodeToString(raw)

	if err := writeFileAtomic(path, []byte(secret+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write secret %s: %w", path, err)
	}

	return secret, nil
}

// EnsureSigningKey makes sure path holds a PEM Ed25519 private key (PKCS #8, what
// `openssl genpkey -algorithm ed25519` writes): an existing "PRIVATE KEY" block is
// kept, so tokens survive a restart; a missing or empty file gets a new key, mode
// 0600. Auth itself checks the key when it starts.
func EnsureSigningKey(path string) error {
	b, err := os.ReadFile(path) //nolint:gosec // the path is the launcher's own data directory

	switch {
	case err == nil:
		if block, _ := pem.Decode(b); block != nil && block.Type == "PRIVATE KEY" {
			return nil
		}

		if strings.TrimSpace(string(b)) != "" {
			return fmt.Errorf("signing key %s: not a PEM private key (delete it to generate a new one)", path)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("read signing key %s: %w", path, err)
	}

	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("generate signing key: %w", err)
	}

	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return fmt.Errorf("encode signing key: %w", err)
	}

	if err := writeFileAtomic(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return fmt.Errorf("write signing key %s: %w", path, err)
	}

	return nil
}

// writeFileAtomic writes data to a temporary file next to path and renames
// it into place, so a crash never leaves a truncated secret behind.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}

	tmp := f.Name()
	defer func() { _ = os.Remove(tmp) }()

	if err := f.Chmod(perm); err != nil {
		_ = f.Close()
		return err
	}

	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}

	if err := f.Close(); err != nil {
		return err
	}

	return os.Rename(tmp, path)
}
