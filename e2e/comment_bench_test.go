//go:build bench

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bugtracker/bugtracker/eventbus/contracts"
)

// wrkResult is what one wrk run reports.
type wrkResult struct {
	rps    string
	p99    string
	errors string
	raw    string
}

var (
	wrkRPS    = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	wrkP99    = regexp.MustCompile(`\s99%\s+([\d.]+\w+)`)
	wrkNon2xx = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	wrkSocket = regexp.MustCompile(`Socket errors: (.*)`)
)

func runWrk(t *testing.T, script, url string, args ...string) wrkResult {
	t.Helper()
	cmd := exec.Command("wrk", append([]string{"-t2", "-c16", "-d8s", "--latency", "-s", script}, append(args, url)...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("wrk: %v\n%s", err, out)
	}
	r := wrkResult{raw: string(out), errors: "0"}
	if m := wrkRPS.FindStringSubmatch(r.raw); m != nil {
		r.rps = m[1]
	}
	if m := wrkP99.FindStringSubmatch(r.raw); m != nil {
		r.p99 = m[1]
	}
	var errs []string
	if m := wrkNon2xx.FindStringSubmatch(r.raw); m != nil {
		errs = append(errs, "non-2xx "+m[1])
	}
	if m := wrkSocket.FindStringSubmatch(r.raw); m != nil {
		errs = append(errs, "socket "+m[1])
	}
	if len(errs) > 0 {
		r.errors = strings.Join(errs, ", ")
	}
	return r
}

// TestBenchmarkCommentsThroughGateway measures, with wrk at 16 connections for 8 s
// each, a page of 20 comments and comment creation through the gateway, each beside
// the same request sent to the comment service directly in the same run (the
// baseline; ratios are what compare across runs on this noisy machine). The comment
// service runs on MariaDB. Run it with
//
//	go test -tags bench -run TestBenchmarkCommentsThroughGateway -v ./e2e/
//
// (it is not part of make test).
func TestBenchmarkCommentsThroughGateway(t *testing.T) {
	if _, err := exec.LookPath("wrk"); err != nil {
		t.Fatal("wrk is needed (apt-get install wrk)")
	}
	s := startSystem(t)
	annID, ann := s.user(t, "Ann")
	bobID, bob := s.user(t, "Bob")
	s.publish(t,
		contracts.ProjectCreated{ProjectID: "p-bench", Title: "Apollo", OwnerID: annID, AggregateVersion: 1},
		contracts.MemberAdded{ProjectID: "p-bench", UserID: bobID, Role: "member", AggregateVersion: 1},
		contracts.CardCreated{CardID: "c-bench", ProjectID: "p-bench", Title: "Crash", AggregateVersion: 1},
	)
	path := "/api/v1/cards/c-bench/comments"
	s.eventually(t, 10*time.Second, 201, "POST", path, bob, `{"body":"first"}`)
	for i := range 99 {
		if r := s.call(t, "POST", path, []string{ann, bob}[i%2], fmt.Sprintf(`{"body":"seed %d"}`, i)); r.status != 201 {
			t.Fatalf("seed: %d %s", r.status, r.raw)
		}
	}
	dir := t.TempDir()
	list := filepath.Join(dir, "list.lua")
	create := filepath.Join(dir, "create.lua")
	auth := `wrk.headers["Authorization"] = "Bearer ` + bob + `"` + "\n"
	if err := os.WriteFile(list, []byte(auth), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(create, []byte(auth+`wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"body":"a benchmark comment of ordinary length, about one line of text"}'
`), 0o600); err != nil {
		t.Fatal(err)
	}
	direct := s.serviceURLs["comment"]
	var lines []string
	for _, bench := range []struct{ name, script, query string }{
		{"list (page of 20)", list, "?limit=20"},
		{"create", create, ""},
	} {
		// Alternate direct and gateway runs so drift in the machine's load hits both.
		for round := range 2 {
			d := runWrk(t, bench.script, direct+path+bench.query)
			g := runWrk(t, bench.script, s.gateway+path+bench.query)
			lines = append(lines, fmt.Sprintf("%-18s round %d: direct %8s req/s p99 %8s errors %s | gateway %8s req/s p99 %8s errors %s",
				bench.name, round+1, d.rps, d.p99, d.errors, g.rps, g.p99, g.errors))
			if d.errors != "0" || g.errors != "0" {
				t.Errorf("errors in %s:\n%s\n%s", bench.name, d.raw, g.raw)
			}
		}
	}
	t.Log("\n" + strings.Join(lines, "\n"))
	r := s.call(t, "GET", path+"?limit=1", bob, "")
	if r.status != 200 {
		t.Fatalf("after the benchmark: %d", r.status)
	}
}
