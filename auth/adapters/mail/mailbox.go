package mail

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	netmail "net/mail"
	"os"
	"path/filepath"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/bugtracker/bugtracker/auth/app"
)

// Mailbox is the app.Mailer for `make run` and tests: it writes each message as an
// .eml file into a directory (./data/mail for `make run`), where a developer can
// open it in any mail client or copy the reset link without an SMTP server.
type Mailbox struct {
	dir  string
	from string
}

// NewMailbox creates dir if needed and returns a Mailbox writing there as from.
// It checks from now so a typo fails at start-up, not on the first message.
func NewMailbox(dir string, from string) (*Mailbox, error) {
	if dir == "" {
		return nil, errors.New("mail: mailbox directory is required")
	}
	if _, err := netmail.ParseAddress(from); err != nil {
		return nil, fmt.Errorf("mail: mailbox sender address %q: %w", from, err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("mail: create mailbox directory: %w", err)
	}
	return &Mailbox{dir: dir, from: from}, nil
}

// Send writes m to a new file named after the current UTC time plus a random
// suffix, so files sort by time and concurrent sends never collide. The message is
// written to a hidden temporary file and renamed, so a reader watching the
// directory for *.eml never sees half a message.
func (b *Mailbox) Send(ctx context.Context, m app.Mail) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	msg, err := newMsg(b.from, m)
	if err != nil {
		return err
	}

	name := time.Now().UTC().Format("20060102T150405.000000000Z") + "-" + rand.Text() + ".eml"
	tmp, err := os.CreateTemp(b.dir, "."+name+".*.tmp") // 0o600: mail holds reset tokens.
	if err != nil {
		return fmt.Errorf("mail: create temporary file: %w", err)
	}
	err = writeAndClose(tmp, msg)
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(b.dir, name))
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("mail: write %s: %w", name, err)
	}
	return nil
}

// writeAndClose writes msg to f and flushes it to disk before the rename makes it
// visible, so a crash cannot leave an empty file under the final name.
func writeAndClose(f *os.File, msg *gomail.Msg) error {
	if _, err := msg.WriteTo(f); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

var _ app.Mailer = (*Mailbox)(nil)
