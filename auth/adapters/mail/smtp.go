package mail

import (
	"context"
	"errors"
	"fmt"
	"net"
	netmail "net/mail"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/bugtracker/bugtracker/auth/app"
)

// The values of SMTPConfig.TLS. They are plain strings so the config reads straight
// from the environment; Validate rejects anything else.
const (
	// TLSNone never encrypts. It is meant for a relay on the same host or for tests:
	// go-mail then sends a password only to a loopback host.
	TLSNone = "none"
	// TLSStartTLS upgrades with STARTTLS when the server offers it and silently
	// stays in clear text when it does not, so an attacker can strip it.
	TLSStartTLS = "starttls"
	// TLSMandatory requires STARTTLS and fails when the server does not offer it.
	// It is the default because a silent downgrade would expose reset tokens.
	TLSMandatory = "mandatory"
	// TLSImplicit speaks TLS from the first byte (SMTPS, usually port 465).
	TLSImplicit = "tls"
)

// ErrInvalidConfig is wrapped by every error Validate returns, so callers can tell a
// misconfiguration from a delivery failure with errors.Is.
var ErrInvalidConfig = errors.New("mail: invalid SMTP config")

// SMTPConfig says how to reach the SMTP server. Its env tags let the service's
// config embed it as is; its zero values are filled by setDefaults, so a config
// built in code gets the same secure defaults as one read from the environment.
type SMTPConfig struct {
	// Host is the SMTP server's name or IP; it is also the name checked against
	// the server's TLS certificate.
	Host string `env:"AUTH_SMTP_HOST"`
	// Port is the server's port: 587 for submission with STARTTLS, 465 for TLS.
	Port int `env:"AUTH_SMTP_PORT" envDefault:"587"`
	// Username turns on SMTP AUTH when it is not empty; servers that relay for
	// anyone on a private network need none.
	Username string `env:"AUTH_SMTP_USERNAME"`
	// Password goes with Username. It never appears in errors or in String.
	Password string `env:"AUTH_SMTP_PASSWORD"`
	// TLS is one of TLSNone, TLSStartTLS, TLSMandatory or TLSImplicit.
	TLS string `env:"AUTH_SMTP_TLS" envDefault:"mandatory"`
	// From is the sender, with or without a display name, for the From header
	// and the envelope.
	From string `env:"AUTH_MAIL_FROM" envDefault:"bugtracker <no-reply@bugtracker.local>"`
	// Timeout bounds the connection and every SMTP command, so a stalled server
	// cannot hold a request forever.
	Timeout time.Duration `env:"AUTH_SMTP_TIMEOUT" envDefault:"10s"`
}

// setDefaults fills the zero values with the same defaults the env tags declare.
func (c *SMTPConfig) setDefaults() {
	if c.Port == 0 {
		c.Port = 587
	}
	if c.TLS == "" {
		c.TLS = TLSMandatory
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
}

// Validate reports every problem at once, naming the environment variable to fix,
// so a deployment fails at start-up rather than on the first password reset.
func (c SMTPConfig) Validate() error {
	var problems []string
	if strings.TrimSpace(c.Host) == "" {
		problems = append(problems, "AUTH_SMTP_HOST is required")
	}
	if c.Port < 1 || c.Port > 65535 {
		problems = append(problems, fmt.Sprintf("AUTH_SMTP_PORT must be between 1 and 65535, got %d", c.Port))
	}
	switch c.TLS {
	case TLSNone, TLSStartTLS, TLSMandatory, TLSImplicit:
	default:
		problems = append(problems, fmt.Sprintf("AUTH_SMTP_TLS must be one of none, starttls, mandatory, tls, got %q", c.TLS))
	}
	if strings.TrimSpace(c.From) == "" {
		problems = append(problems, "AUTH_MAIL_FROM is required")
	} else if _, err := netmail.ParseAddress(c.From); err != nil {
		problems = append(problems, fmt.Sprintf("AUTH_MAIL_FROM is not a valid address: %v", err))
	}
	if c.Timeout <= 0 {
		problems = append(problems, fmt.Sprintf("AUTH_SMTP_TIMEOUT must be positive, got %s", c.Timeout))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, strings.Join(problems, "; "))
	}
	return nil
}

// String describes the config for logs with the password masked, because configs
// end up in start-up log lines and panics.
func (c SMTPConfig) String() string {
	password := ""
	if c.Password != "" {
		password = "[redacted]"
	}
	return fmt.Sprintf("SMTPConfig{Host:%s Port:%d Username:%s Password:%s TLS:%s From:%s Timeout:%s}",
		c.Host, c.Port, c.Username, password, c.TLS, c.From, c.Timeout)
}

// SMTP is the production app.Mailer: it hands each message to an SMTP server.
// It keeps no connection open, so it is safe for concurrent use and survives server
// restarts without reconnect logic.
type SMTP struct {
	cfg  SMTPConfig
	addr string
	opts []gomail.Option
	// testOpts are appended to opts; tests use them to trust a throw-away CA.
	testOpts []gomail.Option
}

// NewSMTP checks cfg after filling its defaults and returns an SMTP mailer, so a bad
// configuration stops the service at start-up. It does not contact the server.
func NewSMTP(cfg SMTPConfig) (*SMTP, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}

	opts := []gomail.Option{
		gomail.WithPort(cfg.Port),
		gomail.WithTimeout(cfg.Timeout),
	}
	switch cfg.TLS {
	case TLSNone:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	case TLSStartTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	case TLSMandatory:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case TLSImplicit:
		opts = append(opts, gomail.WithSSL())
	}
	if cfg.Username != "" {
		opts = append(opts, gomail.WithUsername(cfg.Username), gomail.WithPassword(cfg.Password))
		if cfg.TLS == TLSNone {
			// Auto-discovery never picks PLAIN or LOGIN without TLS. Asking for them
			// explicitly keeps go-mail's own guard: it sends the password in clear
			// text only to a loopback host (a local relay or an SSH tunnel).
			opts = append(opts, gomail.WithOpportunisticSMTPAuth(gomail.SMTPAuthPlain, gomail.SMTPAuthLogin))
		} else {
			// Over TLS go-mail picks the strongest mechanism the server offers
			// (SCRAM, then CRAM-MD5, then PLAIN or LOGIN).
			opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover))
		}
	}

	s := &SMTP{
		cfg:  cfg,
		addr: net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)),
		opts: opts,
	}
	if _, err := s.client(); err != nil {
		return nil, err
	}
	return s, nil
}

// client builds a fresh go-mail client: go-mail clients carry per-connection state,
// and a new one per message keeps concurrent Sends independent.
func (s *SMTP) client() (*gomail.Client, error) {
	opts := append(append([]gomail.Option(nil), s.opts...), s.testOpts...)
	c, err := gomail.NewClient(s.cfg.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("mail: SMTP client for %s: %w", s.addr, err)
	}
	return c, nil
}

// Send dials the server, delivers m and hangs up. Its errors name the server but
// never the password.
//
// It returns when ctx ends even if the server has stalled: go-mail honours ctx
// only while dialing and bounds each later SMTP step by Timeout, so the exchange
// runs in a goroutine that Send stops waiting for. That goroutine still ends within
// Timeout per step, and the message may then be delivered after all, which for a
// notification only means a duplicate if the caller retries.
func (s *SMTP) Send(ctx context.Context, m app.Mail) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mail: send via SMTP %s: %w", s.addr, err)
	}
	msg, err := newMsg(s.cfg.From, m)
	if err != nil {
		return err
	}
	c, err := s.client()
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- c.DialAndSendWithContext(ctx, msg) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		err = context.Cause(ctx)
	}
	if err != nil {
		return fmt.Errorf("mail: send via SMTP %s: %w", s.addr, err)
	}
	return nil
}

var _ app.Mailer = (*SMTP)(nil)
