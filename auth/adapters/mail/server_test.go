package mail

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	gomail "github.com/wneessen/go-mail"
)

// testServerConfig shapes the real SMTP server a test talks to.
type testServerConfig struct {
	// username and password, when set, make MAIL FROM require PLAIN auth.
	username, password string
	// allowInsecureAuth advertises AUTH before TLS, as a local relay would.
	allowInsecureAuth bool
	// startTLS, when set, makes the server offer STARTTLS with this config.
	startTLS *tls.Config
	// implicitTLS, when set, makes the server speak TLS from the first byte.
	implicitTLS *tls.Config
}

// received is one message as the server got it: envelope and raw data.
type received struct {
	from string
	to   []string
	data []byte
}

// testSMTPServer is a go-smtp server on 127.0.0.1 that keeps what it receives, so
// tests check the bytes a real server gets rather than go-mail's intentions.
type testSMTPServer struct {
	host string
	port int
	cfg  testServerConfig

	mu     sync.Mutex
	msgs   []received
	logins []string
}

func startSMTPServer(t *testing.T, cfg testServerConfig) *testSMTPServer {
	t.Helper()
	ts := &testSMTPServer{cfg: cfg}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &testSession{srv: ts}, nil
	}))
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = cfg.allowInsecureAuth
	srv.TLSConfig = cfg.startTLS
	srv.ReadTimeout = 5 * time.Second
	srv.WriteTimeout = 5 * time.Second

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	ts.host, ts.port = addr.IP.String(), addr.Port
	if cfg.implicitTLS != nil {
		ln = tls.NewListener(ln, cfg.implicitTLS)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ts
}

func (ts *testSMTPServer) addr() string {
	return net.JoinHostPort(ts.host, strconv.Itoa(ts.port))
}

func (ts *testSMTPServer) received() []received {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]received(nil), ts.msgs...)
}

func (ts *testSMTPServer) loggedIn() []string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]string(nil), ts.logins...)
}

// testSession is one SMTP conversation; go-smtp drives it from one goroutine.
type testSession struct {
	srv    *testSMTPServer
	authed bool
	from   string
	to     []string
}

func (s *testSession) AuthMechanisms() []string {
	if s.srv.cfg.username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *testSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, username, password string) error {
		if username != s.srv.cfg.username || password != s.srv.cfg.password {
			return smtp.ErrAuthFailed
		}
		s.authed = true
		s.srv.mu.Lock()
		s.srv.logins = append(s.srv.logins, username)
		s.srv.mu.Unlock()
		return nil
	}), nil
}

func (s *testSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.srv.cfg.username != "" && !s.authed {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}

func (s *testSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *testSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.srv.mu.Lock()
	s.srv.msgs = append(s.srv.msgs, received{from: s.from, to: s.to, data: data})
	s.srv.mu.Unlock()
	return nil
}

func (s *testSession) Reset() {
	s.from, s.to = "", nil
}

func (s *testSession) Logout() error { return nil }

// testCert is a throw-away self-signed certificate for 127.0.0.1 and a client
// config trusting only it, so TLS is verified for real, never skipped.
type testCert struct {
	server *tls.Config
	client *tls.Config
}

func newTestCert(t *testing.T) testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "bugtracker test SMTP"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return testCert{
		server: &tls.Config{
			Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
			MinVersion:   tls.VersionTLS12,
		},
		client: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12},
	}
}

// newTestSMTP builds the adapter for ts, trusting clientTLS when given.
func newTestSMTP(t *testing.T, cfg SMTPConfig, clientTLS *tls.Config) *SMTP {
	t.Helper()
	s, err := NewSMTP(cfg)
	if err != nil {
		t.Fatalf("NewSMTP: %v", err)
	}
	if clientTLS != nil {
		s.testOpts = append(s.testOpts, gomail.WithTLSConfig(clientTLS))
	}
	return s
}
