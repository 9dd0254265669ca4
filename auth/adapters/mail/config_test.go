package mail

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestSMTPConfigValidate(t *testing.T) {
	valid := SMTPConfig{
		Host: "smtp.example.com", Port: 587, TLS: TLSMandatory,
		From: "bugtracker <no-reply@bugtracker.local>", Timeout: 10 * time.Second,
	}
	tests := []struct {
		name    string
		change  func(c *SMTPConfig)
		wantErr []string // each must appear in the error; none means valid
	}{
		{name: "valid", change: func(*SMTPConfig) {}},
		{name: "bare address sender", change: func(c *SMTPConfig) { c.From = "no-reply@bugtracker.local" }},
		{name: "tls none", change: func(c *SMTPConfig) { c.TLS = TLSNone }},
		{name: "tls starttls", change: func(c *SMTPConfig) { c.TLS = TLSStartTLS }},
		{name: "tls implicit", change: func(c *SMTPConfig) { c.TLS = TLSImplicit; c.Port = 465 }},
		{name: "with credentials", change: func(c *SMTPConfig) { c.Username, c.Password = "u", "p" }},
		{name: "missing host", change: func(c *SMTPConfig) { c.Host = "" }, wantErr: []string{"AUTH_SMTP_HOST"}},
		{name: "blank host", change: func(c *SMTPConfig) { c.Host = "  " }, wantErr: []string{"AUTH_SMTP_HOST"}},
		{name: "port zero", change: func(c *SMTPConfig) { c.Port = 0 }, wantErr: []string{"AUTH_SMTP_PORT"}},
		{name: "port too big", change: func(c *SMTPConfig) { c.Port = 70000 }, wantErr: []string{"AUTH_SMTP_PORT"}},
		{name: "unknown tls", change: func(c *SMTPConfig) { c.TLS = "ssl" }, wantErr: []string{"AUTH_SMTP_TLS", `"ssl"`}},
		{name: "tls case matters", change: func(c *SMTPConfig) { c.TLS = "Mandatory" }, wantErr: []string{"AUTH_SMTP_TLS"}},
		{name: "empty tls", change: func(c *SMTPConfig) { c.TLS = "" }, wantErr: []string{"AUTH_SMTP_TLS"}},
		{name: "missing from", change: func(c *SMTPConfig) { c.From = "" }, wantErr: []string{"AUTH_MAIL_FROM"}},
		{name: "invalid from", change: func(c *SMTPConfig) { c.From = "bugtracker" }, wantErr: []string{"AUTH_MAIL_FROM"}},
		{name: "timeout", change: func(c *SMTPConfig) { c.Timeout = -time.Second }, wantErr: []string{"AUTH_SMTP_TIMEOUT"}},
		{
			name:    "every problem at once",
			change:  func(c *SMTPConfig) { *c = SMTPConfig{TLS: "x"} },
			wantErr: []string{"AUTH_SMTP_HOST", "AUTH_SMTP_PORT", "AUTH_SMTP_TLS", "AUTH_MAIL_FROM", "AUTH_SMTP_TIMEOUT"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid
			tt.change(&cfg)
			err := cfg.Validate()
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate accepted an invalid config")
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("error %v does not wrap ErrInvalidConfig", err)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %s", err, want)
				}
			}
		})
	}
}

func TestNewSMTPDefaults(t *testing.T) {
	s, err := NewSMTP(SMTPConfig{Host: "smtp.example.com", From: "no-reply@bugtracker.local"})
	if err != nil {
		t.Fatalf("NewSMTP: %v", err)
	}
	if s.cfg.Port != 587 || s.cfg.TLS != TLSMandatory || s.cfg.Timeout != 10*time.Second {
		t.Fatalf("defaults = port %d, tls %q, timeout %s; want 587, mandatory, 10s", s.cfg.Port, s.cfg.TLS, s.cfg.Timeout)
	}
	if _, err := NewSMTP(SMTPConfig{From: "no-reply@bugtracker.local"}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("NewSMTP without host: %v, want ErrInvalidConfig", err)
	}
}

func TestSMTPConfigStringHidesPassword(t *testing.T) {
	cfg := SMTPConfig{Host: "smtp.example.com", Username: "mailer", Password: "hunter2-secret"}
	for _, s := range []string{cfg.String(), fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%v", &cfg)} {
		if strings.Contains(s, "hunter2-secret") {
			t.Fatalf("config prints its password: %s", s)
		}
		if !strings.Contains(s, "mailer") {
			t.Errorf("config print lost the username: %s", s)
		}
	}
}
