package gateway

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
	"time"
)

// TestAccessLineIsJSON checks that every field survives the hand-written encoding,
// whatever bytes a client put in the path or the request id.
func TestAccessLineIsJSON(t *testing.T) {
	at := time.Date(2026, 12, 5, 14, 0, 1, 234_000_000, time.UTC)
	for _, e := range []accessEntry{
		{requestID: []byte("abc-123"), method: "GET", route: "/api/v1/cards/{id}", path: []byte("/api/v1/cards/c1"), status: 200, bytes: 344, remote: []byte("127.0.0.1")},
		{requestID: []byte(`q"uo\te`), method: "OTHER", route: "unmatched", path: []byte("/caf\xc3\xa9/\xff\"x\x01"), status: 404, remote: []byte("::1")},
		{requestID: []byte("x"), method: "POST", route: "/api/v1/projects", path: []byte("/api/v1/projects"), status: 502, err: "dial tcp 127.0.0.1:1: connect: refused\n\t\"x\"", remote: []byte("10.0.0.1")},
	} {
		e.at, e.elapsed = at, 1234567*time.Nanosecond
		line := appendAccessLine(nil, &e)
		if !bytes.HasSuffix(line, []byte("}\n")) || bytes.Count(line, []byte("\n")) != 1 {
			t.Fatalf("not one line: %q", line)
		}
		var got map[string]any
		if err := json.Unmarshal(line, &got); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		wantLevel := "INFO"
		if e.status >= 500 {
			wantLevel = "ERROR"
		}
		want := map[string]any{
			"time": "2026-12-05T14:00:01.234Z", "level": wantLevel, "msg": "request", "service": "gateway",
			"request_id": string(e.requestID), "method": e.method, "route": e.route,
			"path": string(bytes.ToValidUTF8(e.path, []byte("\uFFFD"))), "status": float64(e.status),
			"duration_ms": 1.234, "bytes": float64(e.bytes), "remote": string(e.remote),
		}
		if e.err != "" {
			want["error"] = e.err
		}
		if len(got) != len(want) {
			t.Errorf("%s: fields %v, want %v", line, got, want)
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: %s = %#v, want %#v", line, k, got[k], v)
			}
		}
	}
}

// TestAccessLogFollowsTheLevel checks that LOG_LEVEL=error keeps only failed
// requests' lines and LOG_LEVEL=info keeps all.
func TestAccessLogFollowsTheLevel(t *testing.T) {
	var buf bytes.Buffer
	errorsOnly := newAccessLog(&buf, slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelError})))
	if errorsOnly.enabled(200) || errorsOnly.enabled(404) || !errorsOnly.enabled(502) {
		t.Error("at error level, want lines for 5xx only")
	}
	all := newAccessLog(&buf, slog.New(slog.NewJSONHandler(&buf, nil)))
	if !all.enabled(200) || !all.enabled(504) {
		t.Error("at info level, want every line")
	}
}

func BenchmarkAccessLine(b *testing.B) {
	e := accessEntry{
		at: time.Now(), requestID: []byte("0193a1c2-7f5e-7b3a-9c41-2d5e8f0a1b2c"), method: "GET", route: "/api/v1/cards/{id}",
		path: []byte("/api/v1/cards/0193a1c2-7f5e-7b3a-9c41-2d5e8f0a1b2c"), status: 200, elapsed: 123 * time.Microsecond,
		bytes: 344, remote: []byte("127.0.0.1"),
	}
	l := &accessLog{out: nopWriter{}, info: true, errors: true}
	b.ReportAllocs()
	for b.Loop() {
		l.write(&e)
	}
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }
