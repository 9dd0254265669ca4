package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"
)

func TestRequestIDIsLogged(t *testing.T) {
	var buf bytes.Buffer
	log := New(&buf, "auth", slog.LevelInfo).With("k", "v")
	log.InfoContext(WithRequestID(context.Background(), "req-1"), "hello")
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("not JSON: %q", buf.String())
	}
	if line["request_id"] != "req-1" || line["service"] != "auth" || line["k"] != "v" {
		t.Fatalf("missing fields: %v", line)
	}
	log.DebugContext(context.Background(), "hidden")
	if bytes.Count(buf.Bytes(), []byte("\n")) != 1 {
		t.Fatal("debug line must be filtered at info level")
	}
}

func TestParseLevel(t *testing.T) {
	for in, want := range map[string]slog.Level{"debug": slog.LevelDebug, "INFO": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError} {
		got, err := ParseLevel(in)
		if err != nil || got != want {
			t.Fatalf("%s: got %v %v", in, got, err)
		}
	}
	if _, err := ParseLevel("loud"); err == nil {
		t.Fatal("unknown level accepted")
	}
}
