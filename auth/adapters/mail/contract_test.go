package mail

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"io"
	"mime"
	"mime/quotedprintable"
	netmail "net/mail"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/bugtracker/bugtracker/auth/app"
)

const (
	testFrom     = "bugtracker <no-reply@bugtracker.local>"
	testFromAddr = "no-reply@bugtracker.local"
	testTo       = "alice@example.com"
)

// mailerUnderTest is one adapter of app.Mailer plus a way to read back the single
// message it delivered, exactly as the recipient's side stored it.
type mailerUnderTest struct {
	mailer    app.Mailer
	delivered func(t *testing.T) []byte
	// envelope, when set, checks the SMTP envelope the server saw.
	envelope func(t *testing.T)
}

// smtpCase is one way of talking to the test SMTP server.
type smtpCase struct {
	tls        string // the adapter's TLS mode; the server offers what it needs
	user, pass string // when set, the server requires PLAIN auth
}

// smtpMailer starts a test SMTP server matching c and points the SMTP adapter at it.
func smtpMailer(c smtpCase) func(t *testing.T) mailerUnderTest {
	return func(t *testing.T) mailerUnderTest {
		scfg := testServerConfig{username: c.user, password: c.pass}
		var clientTLS *tls.Config
		switch c.tls {
		case TLSNone:
			scfg.allowInsecureAuth = true
		case TLSStartTLS, TLSMandatory:
			cert := newTestCert(t)
			scfg.startTLS, clientTLS = cert.server, cert.client
		case TLSImplicit:
			cert := newTestCert(t)
			scfg.implicitTLS, clientTLS = cert.server, cert.client
		}
		ts := startSMTPServer(t, scfg)
		s := newTestSMTP(t, SMTPConfig{
			Host: ts.host, Port: ts.port, Username: c.user, Password: c.pass,
			TLS: c.tls, From: testFrom,
		}, clientTLS)
		return mailerUnderTest{
			mailer: s,
			delivered: func(t *testing.T) []byte {
				got := ts.received()
				if len(got) != 1 {
					t.Fatalf("server received %d messages, want 1", len(got))
				}
				return got[0].data
			},
			envelope: func(t *testing.T) {
				got := ts.received()[0]
				if got.from != testFromAddr {
					t.Errorf("envelope MAIL FROM = %q, want %q", got.from, testFromAddr)
				}
				if len(got.to) != 1 || got.to[0] != testTo {
					t.Errorf("envelope RCPT TO = %q, want [%q]", got.to, testTo)
				}
				if c.user != "" {
					if logins := ts.loggedIn(); len(logins) != 1 || logins[0] != c.user {
						t.Errorf("logins = %q, want [%q]", logins, c.user)
					}
				}
			},
		}
	}
}

// mailers lists every adapter of app.Mailer, each wired to its own receiving side,
// so the contract test below holds them all to the same behaviour.
func mailers() map[string]func(t *testing.T) mailerUnderTest {
	return map[string]func(t *testing.T) mailerUnderTest{
		"smtp/plain":                   smtpMailer(smtpCase{tls: TLSNone}),
		"smtp/plain-auth":              smtpMailer(smtpCase{tls: TLSNone, user: "mailer", pass: "s3cret"}),
		"smtp/starttls-mandatory-auth": smtpMailer(smtpCase{tls: TLSMandatory, user: "mailer", pass: "s3cret"}),
		"smtp/implicit-tls":            smtpMailer(smtpCase{tls: TLSImplicit}),
		"mailbox": func(t *testing.T) mailerUnderTest {
			dir := filepath.Join(t.TempDir(), "mail")
			b, err := NewMailbox(dir, testFrom)
			if err != nil {
				t.Fatalf("NewMailbox: %v", err)
			}
			return mailerUnderTest{
				mailer: b,
				delivered: func(t *testing.T) []byte {
					files, err := filepath.Glob(filepath.Join(dir, "*.eml"))
					if err != nil || len(files) != 1 {
						t.Fatalf("mailbox holds %q (err %v), want one .eml file", files, err)
					}
					data, err := os.ReadFile(files[0])
					if err != nil {
						t.Fatal(err)
					}
					return data
				},
			}
		},
	}
}

func TestMailerContract(t *testing.T) {
	const (
		subject   = "Réinitialisation — ünïcode"
		tokenLine = "token: abc123def456ghi789jkl012mno345pqr678stu901vwx234yz567ABC890DEF123GHI456"
	)
	text := "Bonjour Zoë,\n\nPour réinitialiser votre mot de passe — ünïcode ✓ :\n" +
		tokenLine + "\n\nCe lien expire dans 30 minutes.\n"

	for name, newMailer := range mailers() {
		t.Run(name, func(t *testing.T) {
			mut := newMailer(t)
			err := mut.mailer.Send(context.Background(), app.Mail{To: testTo, Subject: subject, Text: text})
			if err != nil {
				t.Fatalf("Send: %v", err)
			}

			msg, err := netmail.ReadMessage(bytes.NewReader(mut.delivered(t)))
			if err != nil {
				t.Fatalf("parse delivered message: %v", err)
			}
			h := msg.Header

			to, err := h.AddressList("To")
			if err != nil || len(to) != 1 || to[0].Address != testTo {
				t.Errorf("To = %v (err %v), want %s", to, err, testTo)
			}
			from, err := h.AddressList("From")
			if err != nil || len(from) != 1 || from[0].Address != testFromAddr || from[0].Name != "bugtracker" {
				t.Errorf("From = %v (err %v), want %s", from, err, testFrom)
			}
			gotSubject, err := new(mime.WordDecoder).DecodeHeader(h.Get("Subject"))
			if err != nil || gotSubject != subject {
				t.Errorf("Subject = %q (err %v), want %q", gotSubject, err, subject)
			}
			if _, err := h.Date(); err != nil {
				t.Errorf("Date header %q: %v", h.Get("Date"), err)
			}
			if id := h.Get("Message-ID"); !regexp.MustCompile(`^<[^<>@\s]+@[^<>@\s]+>$`).MatchString(id) {
				t.Errorf("Message-ID = %q, want <local@domain>", id)
			}

			mediaType, params, err := mime.ParseMediaType(h.Get("Content-Type"))
			if err != nil || mediaType != "text/plain" || !strings.EqualFold(params["charset"], "utf-8") {
				t.Errorf("Content-Type = %q (err %v), want text/plain; charset=UTF-8", h.Get("Content-Type"), err)
			}
			body := msg.Body
			switch cte := strings.ToLower(h.Get("Content-Transfer-Encoding")); cte {
			case "quoted-printable":
				body = quotedprintable.NewReader(body)
			case "base64":
				body = base64.NewDecoder(base64.StdEncoding, body)
			case "", "7bit", "8bit":
			default:
				t.Fatalf("unexpected Content-Transfer-Encoding %q", cte)
			}
			decoded, err := io.ReadAll(body)
			if err != nil {
				t.Fatalf("decode body: %v", err)
			}
			lines := strings.Split(strings.ReplaceAll(string(decoded), "\r\n", "\n"), "\n")
			found := false
			for _, l := range lines {
				if l == tokenLine {
					found = true
				}
			}
			if !found {
				t.Errorf("decoded body lacks the line %q:\n%s", tokenLine, decoded)
			}
			if !strings.Contains(string(decoded), "ünïcode ✓") {
				t.Errorf("decoded body lost its non-ASCII text:\n%s", decoded)
			}

			if mut.envelope != nil {
				mut.envelope(t)
			}
		})
	}
}
