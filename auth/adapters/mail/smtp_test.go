package mail

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/bugtracker/bugtracker/auth/app"
)

var testMail = app.Mail{To: testTo, Subject: "Hello", Text: "token: abc123"}

func TestSMTPAuth(t *testing.T) {
	const password = "correct-horse-battery-staple"
	ts := startSMTPServer(t, testServerConfig{username: "mailer", password: password, allowInsecureAuth: true})
	cfg := SMTPConfig{Host: ts.host, Port: ts.port, TLS: TLSNone, From: testFrom, Username: "mailer"}

	t.Run("right password logs in", func(t *testing.T) {
		cfg := cfg
		cfg.Password = password
		if err := newTestSMTP(t, cfg, nil).Send(context.Background(), testMail); err != nil {
			t.Fatalf("Send: %v", err)
		}
		if logins := ts.loggedIn(); len(logins) != 1 || logins[0] != "mailer" {
			t.Fatalf("logins = %q, want [mailer]", logins)
		}
	})

	t.Run("wrong password fails without leaking it", func(t *testing.T) {
		const wrong = "wrong-password-4f9a1c"
		cfg := cfg
		cfg.Password = wrong
		before := len(ts.received())
		err := newTestSMTP(t, cfg, nil).Send(context.Background(), testMail)
		if err == nil {
			t.Fatal("Send with a wrong password succeeded")
		}
		if strings.Contains(err.Error(), wrong) {
			t.Fatalf("error leaks the password: %v", err)
		}
		if got := len(ts.received()); got != before {
			t.Fatalf("server received %d new messages, want 0", got-before)
		}
	})

	t.Run("no credentials are refused by the server", func(t *testing.T) {
		cfg := cfg
		cfg.Username = ""
		if err := newTestSMTP(t, cfg, nil).Send(context.Background(), testMail); err == nil {
			t.Fatal("Send without credentials succeeded against a server requiring auth")
		}
	})
}

// TestSMTPNeverSendsPasswordInClearToRemoteHost points a non-loopback host name at
// the test server: without TLS the password must stay home, whatever the server
// advertises.
func TestSMTPNeverSendsPasswordInClearToRemoteHost(t *testing.T) {
	for _, mode := range []string{TLSNone, TLSStartTLS} {
		t.Run(mode, func(t *testing.T) {
			ts := startSMTPServer(t, testServerConfig{username: "mailer", password: "s3cret", allowInsecureAuth: true})
			s := newTestSMTP(t, SMTPConfig{
				Host: "smtp.example.test", Port: ts.port, TLS: mode, From: testFrom,
				Username: "mailer", Password: "s3cret",
			}, nil)
			s.testOpts = append(s.testOpts, gomail.WithDialContextFunc(
				func(ctx context.Context, network, _ string) (net.Conn, error) {
					var d net.Dialer
					return d.DialContext(ctx, network, ts.addr())
				}))
			err := s.Send(context.Background(), testMail)
			if err == nil {
				t.Fatal("Send authenticated in clear text to a remote host")
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("error leaks the password: %v", err)
			}
			if logins := ts.loggedIn(); len(logins) != 0 {
				t.Fatalf("server saw logins %q", logins)
			}
			t.Logf("refused with: %v", err)
		})
	}
}

func TestSMTPTLSPolicy(t *testing.T) {
	tests := []struct {
		name       string
		mode       string
		serverTLS  bool // the server offers STARTTLS
		wantErr    bool
		wantSubstr string
	}{
		{name: "none against plain server", mode: TLSNone},
		{name: "starttls falls back on plain server", mode: TLSStartTLS},
		{name: "starttls upgrades when offered", mode: TLSStartTLS, serverTLS: true},
		{name: "mandatory refuses plain server", mode: TLSMandatory, wantErr: true, wantSubstr: "STARTTLS"},
		{name: "mandatory upgrades when offered", mode: TLSMandatory, serverTLS: true},
		{name: "default is mandatory", mode: "", wantErr: true, wantSubstr: "STARTTLS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var scfg testServerConfig
			cert := newTestCert(t)
			if tt.serverTLS {
				scfg.startTLS = cert.server
			}
			ts := startSMTPServer(t, scfg)
			s := newTestSMTP(t, SMTPConfig{Host: ts.host, Port: ts.port, TLS: tt.mode, From: testFrom}, cert.client)
			err := s.Send(context.Background(), testMail)
			if tt.wantErr {
				if err == nil {
					t.Fatal("Send succeeded, want an error")
				}
				if !strings.Contains(err.Error(), tt.wantSubstr) {
					t.Errorf("error %q does not mention %q", err, tt.wantSubstr)
				}
				if got := ts.received(); len(got) != 0 {
					t.Errorf("server received %d messages despite the error", len(got))
				}
				return
			}
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if got := ts.received(); len(got) != 1 {
				t.Fatalf("server received %d messages, want 1", len(got))
			}
		})
	}
}

// TestSMTPRejectsUntrustedCertificate checks STARTTLS verifies the certificate, so
// "mandatory" is not satisfied by any TLS at all.
func TestSMTPRejectsUntrustedCertificate(t *testing.T) {
	ts := startSMTPServer(t, testServerConfig{startTLS: newTestCert(t).server})
	s := newTestSMTP(t, SMTPConfig{Host: ts.host, Port: ts.port, TLS: TLSMandatory, From: testFrom}, nil)
	if err := s.Send(context.Background(), testMail); err == nil {
		t.Fatal("Send trusted a self-signed certificate")
	}
	if got := ts.received(); len(got) != 0 {
		t.Fatalf("server received %d messages", len(got))
	}
}

func TestSMTPServerDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()

	const timeout = 2 * time.Second
	s := newTestSMTP(t, SMTPConfig{Host: "127.0.0.1", Port: port, TLS: TLSNone, From: testFrom, Timeout: timeout}, nil)
	start := time.Now()
	err = s.Send(context.Background(), testMail)
	if err == nil {
		t.Fatal("Send to a closed port succeeded")
	}
	if elapsed := time.Since(start); elapsed > timeout {
		t.Fatalf("Send took %s, longer than the %s timeout", elapsed, timeout)
	}
	if !strings.Contains(err.Error(), "127.0.0.1") {
		t.Errorf("error %q does not name the server", err)
	}
}

// startSilentServer accepts connections and never says a word, like a firewall
// that swallows packets or a wedged server.
func startSilentServer(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().(*net.TCPAddr).Port
}

func TestSMTPSilentServerTimesOut(t *testing.T) {
	port := startSilentServer(t)
	const timeout = 300 * time.Millisecond
	s := newTestSMTP(t, SMTPConfig{Host: "127.0.0.1", Port: port, TLS: TLSNone, From: testFrom, Timeout: timeout}, nil)
	start := time.Now()
	if err := s.Send(context.Background(), testMail); err == nil {
		t.Fatal("Send to a silent server succeeded")
	}
	if elapsed := time.Since(start); elapsed > timeout+2*time.Second {
		t.Fatalf("Send took %s with a %s timeout", elapsed, timeout)
	}
}

func TestSMTPSendHonoursContext(t *testing.T) {
	port := startSilentServer(t)
	s := newTestSMTP(t, SMTPConfig{Host: "127.0.0.1", Port: port, TLS: TLSNone, From: testFrom, Timeout: time.Minute}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := s.Send(ctx, testMail)
	if err == nil {
		t.Fatal("Send to a silent server succeeded")
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Fatalf("Send took %s after its context ended", elapsed)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v does not wrap context.DeadlineExceeded", err)
	}
}

func TestSMTPRejectsBadRecipient(t *testing.T) {
	ts := startSMTPServer(t, testServerConfig{})
	s := newTestSMTP(t, SMTPConfig{Host: ts.host, Port: ts.port, TLS: TLSNone, From: testFrom}, nil)
	if err := s.Send(context.Background(), app.Mail{To: "not an address", Subject: "x", Text: "y"}); err == nil {
		t.Fatal("Send accepted an invalid recipient")
	}
	if got := ts.received(); len(got) != 0 {
		t.Fatalf("server received %d messages", len(got))
	}
}
