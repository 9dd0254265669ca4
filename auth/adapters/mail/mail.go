// Package mail delivers the auth service's mail (app.Mailer) either over SMTP, for
// production, or into a directory of .eml files, for `make run` and tests where no
// mail server is at hand. Both adapters build the message with go-mail, so headers,
// encodings and the SMTP dialogue come from one well-tested library and the two
// adapters produce the same bytes for the same app.Mail.
package mail

import (
	"fmt"

	gomail "github.com/wneessen/go-mail"

	"github.com/bugtracker/bugtracker/auth/app"
)

// newMsg builds the RFC 5322 message both adapters deliver: one recipient, a
// UTF-8 text/plain body, and the Date and Message-ID headers that spam filters and
// mail clients expect on every message.
func newMsg(from string, m app.Mail) (*gomail.Msg, error) {
	msg := gomail.NewMsg()
	if err := msg.From(from); err != nil {
		return nil, fmt.Errorf("mail: sender address: %w", err)
	}
	if err := msg.To(m.To); err != nil {
		return nil, fmt.Errorf("mail: recipient address: %w", err)
	}
	msg.Subject(m.Subject)
	msg.SetDate()
	msg.SetMessageID()
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	return msg, nil
}
