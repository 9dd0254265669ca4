package app

import "context"

// Mail is one plain-text message to one recipient.
type Mail struct {
	To      string
	Subject string
	Text    string
}

// Mailer delivers mail: over SMTP in production, into a directory of .eml files for
// `make run`.
type Mailer interface {
	// Send delivers m or returns why it could not.
	Send(ctx context.Context, m Mail) error
}
