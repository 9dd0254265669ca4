package mail

import (
	"bytes"
	"context"
	"fmt"
	"mime"
	netmail "net/mail"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/bugtracker/bugtracker/auth/app"
)

func TestMailboxConcurrentSends(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "mail")
	b, err := NewMailbox(dir, testFrom)
	if err != nil {
		t.Fatalf("NewMailbox: %v", err)
	}
	info, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	// 0o755 minus whatever the umask removes: never more open than that.
	if perm := info.Mode().Perm(); !info.IsDir() || perm&^0o755 != 0 || perm&0o700 != 0o700 {
		t.Fatalf("mailbox directory mode %v, want a directory with at most 0755", info.Mode())
	}

	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			errs <- b.Send(context.Background(), app.Mail{
				To:      fmt.Sprintf("user%d@example.com", i),
				Subject: fmt.Sprintf("Message %d", i),
				Text:    strings.Repeat(fmt.Sprintf("line of message %d\n", i), 200),
			})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Send: %v", err)
		}
	}

	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != n {
		names := make([]string, 0, len(entries))
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("mailbox holds %d files, want %d: %q", len(entries), n, names)
	}
	namePattern := regexp.MustCompile(`^\d{8}T\d{6}\.\d{9}Z-[A-Z2-7]+\.eml$`)
	var subjects []string
	for _, e := range entries {
		if !namePattern.MatchString(e.Name()) {
			t.Errorf("file %q is not a finished time-ordered .eml", e.Name())
			continue
		}
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if perm := info.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s has mode %v, want 0600", e.Name(), perm)
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		msg, err := netmail.ReadMessage(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		subject, _ := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
		subjects = append(subjects, subject)
		var i int
		if _, err := fmt.Sscanf(subject, "Message %d", &i); err != nil {
			t.Fatalf("%s: subject %q", e.Name(), subject)
		}
		if to := msg.Header.Get("To"); !strings.Contains(to, fmt.Sprintf("user%d@example.com", i)) {
			t.Errorf("%s: To %q does not match subject %q", e.Name(), to, subject)
		}
		// A complete file ends with the whole body, not a prefix of it.
		if !bytes.Contains(data, []byte(fmt.Sprintf("line of message %d", i))) ||
			bytes.Count(data, []byte(fmt.Sprintf("line of message %d\r\n", i))) != 200 {
			t.Errorf("%s is incomplete", e.Name())
		}
	}
	slices.Sort(subjects)
	if len(slices.Compact(subjects)) != n {
		t.Errorf("subjects are not distinct: %q", subjects)
	}
}

func TestMailboxFilesSortByTime(t *testing.T) {
	dir := t.TempDir()
	b, err := NewMailbox(dir, testFrom)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := b.Send(context.Background(), app.Mail{To: testTo, Subject: fmt.Sprint(i), Text: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := os.ReadDir(dir) // sorted by name
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		msg, err := netmail.ReadMessage(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if got := msg.Header.Get("Subject"); got != fmt.Sprint(i) {
			t.Errorf("file %d (%s) holds message %q, want %d", i, e.Name(), got, i)
		}
	}
}

func TestMailboxErrors(t *testing.T) {
	t.Run("invalid sender", func(t *testing.T) {
		if _, err := NewMailbox(t.TempDir(), "not an address"); err == nil {
			t.Fatal("NewMailbox accepted an invalid sender")
		}
	})
	t.Run("empty directory", func(t *testing.T) {
		if _, err := NewMailbox("", testFrom); err == nil {
			t.Fatal("NewMailbox accepted an empty directory")
		}
	})
	t.Run("directory is a file", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := NewMailbox(file, testFrom); err == nil {
			t.Fatal("NewMailbox accepted a file as directory")
		}
	})
	t.Run("invalid recipient leaves nothing", func(t *testing.T) {
		dir := t.TempDir()
		b, err := NewMailbox(dir, testFrom)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Send(context.Background(), app.Mail{To: "nope", Subject: "x", Text: "y"}); err == nil {
			t.Fatal("Send accepted an invalid recipient")
		}
		assertEmptyDir(t, dir)
	})
	t.Run("cancelled context leaves nothing", func(t *testing.T) {
		dir := t.TempDir()
		b, err := NewMailbox(dir, testFrom)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := b.Send(ctx, app.Mail{To: testTo, Subject: "x", Text: "y"}); err == nil {
			t.Fatal("Send ignored a cancelled context")
		}
		assertEmptyDir(t, dir)
	})
}

func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Fatalf("directory holds %d entries, want none (first %q)", len(entries), entries[0].Name())
	}
}
