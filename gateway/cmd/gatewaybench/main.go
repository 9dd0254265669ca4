// Command gatewaybench measures the gateway side by side with the service behind it
// and with a minimal fasthttp reverse proxy (the ceiling of any proxy on this
// machine), in one run, so that noisy shared cores affect all three alike.
//
// `make bench-gateway` builds the binaries and runs it. It starts a fresh auth
// (PostgreSQL database created for the run, Redis), a trivial service standing in
// for the project service, the gateway and the ceiling proxy; registers a user and
// logs in; then drives each target with wrk, saturated (-c16) and unsaturated
// (-c1), on GET /api/v1/auth/me with the token and on the trivial route
// GET /api/v1/cards/{id}, in interleaved rounds: round r runs the three targets
// in the r-th of their six orders, so that over six rounds each target runs first,
// second and third twice and before each other target as often as after it (a
// rotation alone would put the gateway right before the ceiling in most rounds).
// Then, for the unsaturated comparison that the goal is about, a paired run: one
// client sends one request at a time to direct, gateway and ceiling in turn, so
// their latencies are taken at the same moments of the shared machine; the
// added_p50 lines come from it (the wrk -c1 rounds are printed too).
// It prints the load average before and after, and req/s, p50, p99, the CPU time per request of the gateway (or
// ceiling) process, the gateway's allocations per request and resident memory, per
// round and as medians, and the ratio lines: medians over rounds of the ratio
// within a round.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// writeSigningKey writes a fresh Ed25519 private key (PKCS #8 PEM, what
// `openssl genpkey -algorithm ed25519` makes) for the auth the benchmark starts.
func writeSigningKey(dir string) (string, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", err
	}
	file := filepath.Join(dir, "jwt-ed25519.pem")
	return file, os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "trivial":
			serveTrivial(os.Args[2])
			return
		case "ceiling":
			serveCeiling(os.Args[2], os.Args[3], os.Args[4])
			return
		}
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "gatewaybench:", err)
		os.Exit(1)
	}
}

// cardJSON is the trivial service's answer, a typical 300-byte resource.
const cardJSON = `{"id":"0193a1c2-7f5e-7b3a-9c41-2d5e8f0a1b2c","projectId":"0193a1c2-7f5e-7b3a-9c41-2d5e8f0a1b2d",` +
	`"title":"Login button does nothing","description":"Steps to reproduce: open the page, click.","status":"todo",` +
	`"creatorId":"0193a1c2-7f5e-7b3a-9c41-2d5e8f0a1b2e","totalComment":3,` +
	`"createdAt":"2026-11-24T10:15:30Z","updatedAt":"2026-11-24T10:15:30Z"}`

// serveTrivial answers every request with the card, as fast as fasthttp can.
func serveTrivial(addr string) {
	err := fasthttp.ListenAndServe(addr, func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/json")
		ctx.SetBodyString(cardJSON)
	})
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

// serveCeiling is the minimal fasthttp reverse proxy: the client's request goes to
// the backend as is (Host rewritten) and the backend's response comes back as is.
// It has none of the gateway's checks, logs or metrics: it is the ceiling.
func serveCeiling(addr, authAddr, trivialAddr string) {
	auth := &fasthttp.HostClient{Addr: authAddr, MaxConns: 1024}
	trivial := &fasthttp.HostClient{Addr: trivialAddr, MaxConns: 1024}
	err := fasthttp.ListenAndServe(addr, func(ctx *fasthttp.RequestCtx) {
		hc := trivial
		if bytes.HasPrefix(ctx.Path(), []byte("/api/v1/auth/")) {
			hc = auth
		}
		req := &ctx.Request
		req.Header.Del("Connection")
		if err := hc.Do(req, &ctx.Response); err != nil {
			ctx.Error("bad gateway", fasthttp.StatusBadGateway)
		}
		ctx.Response.Header.Del("Connection")
	})
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

// result is one wrk run.
type result struct {
	rps      float64
	p50, p99 time.Duration
	requests int
	errors   int
	cpuPerRq time.Duration // of the measured proxy process; 0 for direct
	allocs   float64       // per request, gateway only
	rssMB    float64       // gateway only, after the run
}

func run() error {
	bin := flag.String("bin", "bin", "directory with the auth and gateway binaries")
	satDur := flag.Duration("d", 5*time.Second, "duration of each saturated run")
	unsatDur := flag.Duration("d1", 3*time.Second, "duration of each unsaturated run")
	pgURL := flag.String("postgres", envOr("POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"), "PostgreSQL admin URL")
	pairDur := flag.Duration("dp", 10*time.Second, "duration of the paired unsaturated run per route")
	rounds := flag.Int("rounds", 6, "interleaved rounds of direct, gateway and ceiling per route and mode (6 runs every order once)")
	redisURL := flag.String("redis", envOr("REDIS_URL", "redis://127.0.0.1:6379/0"), "Redis URL")
	flag.Parse()
	if *rounds < 1 {
		return errors.New("-rounds must be at least 1")
	}

	if _, err := exec.LookPath("wrk"); err != nil {
		return errors.New("wrk not found: apt-get install -y wrk")
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "gatewaybench-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(tmp) }()

	dbName := fmt.Sprintf("gwbench_%d", time.Now().UnixNano())
	dbURL, drop, err := createDatabase(*pgURL, dbName)
	if err != nil {
		return err
	}
	defer drop()

	authAddr, trivialAddr, gwAddr, adminAddr, ceilAddr := freeAddr(), freeAddr(), freeAddr(), freeAddr(), freeAddr()
	var procs []*exec.Cmd
	defer func() {
		for _, p := range procs {
			_ = p.Process.Kill()
			_ = p.Wait()
		}
	}()
	start := func(env []string, name string, args ...string) (*exec.Cmd, error) {
		cmd := exec.CommandContext(context.Background(), name, args...) //nolint:gosec // A benchmark tool runs the programs it is told to.
		cmd.Env = append(os.Environ(), env...)
		logf, err := os.Create(filepath.Join(tmp, filepath.Base(name)+"-"+strconv.Itoa(len(procs))+".log")) //nolint:gosec // A benchmark tool runs the programs it is told to.
		if err != nil {
			return nil, err
		}
		cmd.Stdout, cmd.Stderr = io.Discard, logf
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		procs = append(procs, cmd)
		return cmd, nil
	}
	if _, err := start(nil, self, "trivial", trivialAddr); err != nil {
		return err
	}
	prefix := dbName + ":"
	keyFile, err := writeSigningKey(tmp)
	if err != nil {
		return err
	}
	if _, err := start([]string{
		"AUTH_HTTP_ADDR=" + authAddr, "AUTH_DATABASE_URL=" + dbURL, "AUTH_MAIL_DIR=" + filepath.Join(tmp, "mail"),
		"REDIS_URL=" + *redisURL, "REDIS_PREFIX=" + prefix, "AUTH_JWT_PRIVATE_KEY_FILE=" + keyFile,
		"LOG_LEVEL=info",
	}, filepath.Join(*bin, "auth")); err != nil {
		return err
	}
	gwEnv := func(gogc string) []string {
		return []string{
			"GATEWAY_ADDR=" + gwAddr, "GATEWAY_ADMIN_ADDR=" + adminAddr, "GATEWAY_AUTH_URL=http://" + authAddr,
			"GATEWAY_PROJECT_URL=http://" + trivialAddr, "GATEWAY_GOGC=" + gogc, "LOG_LEVEL=info",
		}
	}
	gw, err := start(gwEnv(envOr("GATEWAY_GOGC", "400")), filepath.Join(*bin, "gateway"))
	if err != nil {
		return err
	}
	ceil, err := start(nil, self, "ceiling", ceilAddr, authAddr, trivialAddr)
	if err != nil {
		return err
	}
	for _, u := range []string{"http://" + authAddr + "/readyz", "http://" + gwAddr + "/healthz", "http://" + trivialAddr + "/", "http://" + ceilAddr + "/api/v1/cards/x"} {
		if err := waitOK(u, 20*time.Second); err != nil {
			return fmt.Errorf("%w (logs in %s)", err, tmp)
		}
	}
	token, err := login("http://" + authAddr)
	if err != nil {
		return err
	}

	routes := []struct {
		name, path string
		direct     string
		header     string
	}{
		{"GET /api/v1/auth/me", "/api/v1/auth/me", authAddr, "Authorization: Bearer " + token},
		{"GET /api/v1/cards/{id} (trivial service)", "/api/v1/cards/0193a1c2-7f5e-7b3a-9c41-2d5e8f0a1b2c", trivialAddr, "Authorization: Bearer " + token},
	}
	modes := []struct {
		name    string
		threads int
		conns   int
		dur     time.Duration
	}{
		{"saturated (wrk -t2 -c16)", 2, 16, *satDur},
		{"unsaturated (wrk -t1 -c1)", 1, 1, *unsatDur},
	}
	type key struct{ route, mode, target string }
	// Every round runs the three targets back to back, each round in another
	// of the six orders, so that drift of the shared cores (and the position in
	// a round) weighs on all three alike; each ratio is taken within a round,
	// and the figures reported are medians over rounds.
	res := map[key][]result{}
	targets := []struct {
		name string
		proc *exec.Cmd
	}{{"direct", nil}, {"gateway", gw}, {"ceiling", ceil}}
	fmt.Printf("gateway benchmark: %d CPUs shared by client, gateway and services; wrk %s (saturated) and %s (unsaturated) each, %d interleaved rounds\n",
		numCPU(), satDur, unsatDur, *rounds)
	fmt.Printf("load average at start: %s\n", loadAvg())
	for _, rt := range routes {
		for _, m := range modes {
			fmt.Printf("\n%s, %s\n", rt.name, m.name)
			fmt.Printf("  %-8s %5s %10s %9s %9s %11s %10s %8s\n", "target", "round", "req/s", "p50", "p99", "cpu us/req", "allocs/req", "rss MB")
			for round := range *rounds {
				for i := range targets {
					tg := targets[targetOrders[round%len(targetOrders)][i]]
					addr := map[string]string{"direct": rt.direct, "gateway": gwAddr, "ceiling": ceilAddr}[tg.name]
					r, err := measure(addr, rt.path, rt.header, m.threads, m.conns, m.dur, tg.proc, adminAddr, tg.name == "gateway")
					if err != nil {
						return err
					}
					k := key{rt.name, m.name, tg.name}
					res[k] = append(res[k], r)
					fmt.Printf("  %-8s %5d %10.0f %9s %9s %11s %10s %8s\n", tg.name, round+1, r.rps, us(r.p50), us(r.p99),
						orDash(r.cpuPerRq > 0, fmt.Sprintf("%.0f", float64(r.cpuPerRq.Nanoseconds())/1000)),
						orDash(r.allocs > 0, fmt.Sprintf("%.1f", r.allocs)), orDash(r.rssMB > 0, fmt.Sprintf("%.0f", r.rssMB)))
					if r.errors > 0 {
						fmt.Printf("  !! %d non-2xx answers or socket errors\n", r.errors)
					}
				}
			}
			for _, tg := range targets {
				rs := res[key{rt.name, m.name, tg.name}]
				fmt.Printf("  %-8s %5s %10.0f %9s %9s %11s\n", tg.name, "med", median(rs, func(r result) float64 { return r.rps }),
					us(time.Duration(median(rs, func(r result) float64 { return float64(r.p50) }))),
					us(time.Duration(median(rs, func(r result) float64 { return float64(r.p99) }))),
					orDash(tg.proc != nil, fmt.Sprintf("%.0f", median(rs, func(r result) float64 { return float64(r.cpuPerRq.Nanoseconds()) / 1000 }))))
			}
		}
	}

	// The unsaturated comparison once more, paired: one client sends one
	// request at a time to the three targets in turn, so every target sees the
	// same moment of the shared machine, request by request, instead of its own
	// 3-second window (across windows, direct's p50 on /me drifted 2x with the
	// other sessions' load, more than the gateway adds).
	paired := map[string][3]time.Duration{}
	fmt.Printf("\nunsaturated, paired (one client, one request at a time, the targets in turn, %s per route)\n", *pairDur)
	fmt.Printf("  %-42s %8s %9s %9s %9s %9s %9s %9s\n", "route", "requests", "direct50", "gw50", "ceil50", "direct99", "gw99", "ceil99")
	for _, rt := range routes {
		lat, err := pairedLatency([3]string{rt.direct, gwAddr, ceilAddr}, rt.path, rt.header, *pairDur)
		if err != nil {
			return err
		}
		var p50, p99 [3]time.Duration
		for i := range lat {
			p50[i], p99[i] = quantile(lat[i], 0.5), quantile(lat[i], 0.99)
		}
		paired[rt.name] = p50
		fmt.Printf("  %-42s %8d %9s %9s %9s %9s %9s %9s\n", rt.name, len(lat[0]), us(p50[0]), us(p50[1]), us(p50[2]), us(p99[0]), us(p99[1]), us(p99[2]))
	}

	me, triv := routes[0].name, routes[1].name
	sat, unsat := modes[0].name, modes[1].name
	perRound := func(f func(i int) float64) float64 {
		vals := make([]float64, *rounds)
		for i := range vals {
			vals[i] = f(i)
		}
		return mid(vals)
	}
	ratio := func(route, a, b string) float64 {
		return perRound(func(i int) float64 { return res[key{route, sat, a}][i].rps / res[key{route, sat, b}][i].rps })
	}
	added := func(route string) time.Duration {
		return time.Duration(perRound(func(i int) float64 {
			return float64(res[key{route, unsat, "gateway"}][i].p50 - res[key{route, unsat, "direct"}][i].p50)
		}))
	}
	fmt.Printf("\nload average at end: %s\n", loadAvg())
	fmt.Printf("\nsummary (medians over rounds of the saturated req/s ratio within a round; added p50 unsaturated)\n")
	fmt.Printf("trivial_ratio_vs_direct: %.2f\n", ratio(triv, "gateway", "direct"))
	fmt.Printf("trivial_ratio_vs_ceiling: %.2f\n", ratio(triv, "gateway", "ceiling"))
	fmt.Printf("ceiling_ratio_vs_direct_me: %.2f\n", ratio(me, "ceiling", "direct"))
	fmt.Printf("added_p50_me_us_wrk_rounds: %s\n", us(added(me)))
	fmt.Printf("added_p50_trivial_us_wrk_rounds: %s\n", us(added(triv)))
	fmt.Printf("ceiling_added_p50_me_us: %s\n", us(paired[me][2]-paired[me][0]))
	fmt.Printf("added_p50_trivial_us: %s\n", us(paired[triv][1]-paired[triv][0]))
	fmt.Printf("added_p50_me_us: %s\n", us(paired[me][1]-paired[me][0]))
	fmt.Printf("gateway_allocs_per_request: %.1f\n", median(res[key{me, sat, "gateway"}], func(r result) float64 { return r.allocs }))
	fmt.Printf("ratio_vs_direct: %.2f\n", ratio(me, "gateway", "direct"))
	fmt.Printf("ratio_vs_ceiling: %.2f\n", ratio(me, "gateway", "ceiling"))
	return nil
}

// pairedLatency sends GET path, one request at a time, to the three addresses in
// turn for d after a second of warm-up, each over its own keep-alive connection,
// and returns each target's latencies. The cycles go through the six orders of
// the three, so each target follows each other one as often (a rotation would
// always send the gateway's request right after direct's and the ceiling's right
// after the gateway's).
func pairedLatency(addrs [3]string, path, header string, d time.Duration) ([3][]time.Duration, error) {
	var out [3][]time.Duration
	var clients [3]*fasthttp.HostClient
	var reqs [3]*fasthttp.Request
	name, value, _ := strings.Cut(header, ": ")
	for i, a := range addrs {
		clients[i] = &fasthttp.HostClient{Addr: a, MaxConns: 1}
		reqs[i] = new(fasthttp.Request)
		reqs[i].SetRequestURI("http://" + a + path)
		reqs[i].Header.Set(name, value)
	}
	resp := new(fasthttp.Response)
	warm := time.Now().Add(time.Second)
	end := warm.Add(d)
	for cycle := 0; ; cycle++ {
		now := time.Now()
		if now.After(end) {
			return out, nil
		}
		for _, i := range targetOrders[cycle%len(targetOrders)] {
			t0 := time.Now()
			if err := clients[i].Do(reqs[i], resp); err != nil {
				return out, fmt.Errorf("paired GET %s at %s: %w", path, addrs[i], err)
			}
			el := time.Since(t0)
			if resp.StatusCode() != http.StatusOK {
				return out, fmt.Errorf("paired GET %s at %s: status %d", path, addrs[i], resp.StatusCode())
			}
			if now.After(warm) {
				out[i] = append(out[i], el)
			}
		}
	}
}

// quantile is the q-quantile of ds (sorted in place).
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	sort.Slice(ds, func(a, b int) bool { return ds[a] < ds[b] })
	return ds[min(len(ds)-1, int(q*float64(len(ds))))]
}

// targetOrders are the six orders of three targets, arranged so that any six
// consecutive ones put each target in each position twice and before each other
// target three times.
var targetOrders = [6][3]int{{0, 1, 2}, {2, 1, 0}, {1, 2, 0}, {0, 2, 1}, {2, 0, 1}, {1, 0, 2}}

// median returns the median of f over rs.
func median(rs []result, f func(result) float64) float64 {
	vals := make([]float64, len(rs))
	for i, r := range rs {
		vals[i] = f(r)
	}
	return mid(vals)
}

// mid is the median of vals (the mean of the middle two for an even count).
func mid(vals []float64) float64 {
	sort.Float64s(vals)
	n := len(vals)
	if n%2 == 0 {
		return (vals[n/2-1] + vals[n/2]) / 2
	}
	return vals[n/2]
}

// loadAvg is the first three fields of /proc/loadavg: the machine is shared, and
// figures mean little without it.
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	return strings.Join(f[:min(3, len(f))], " ")
}

// measure runs wrk against addr and, for a proxy process, reads its CPU time (and
// for the gateway its allocation count and RSS from the admin listener) around it.
func measure(addr, path, header string, threads, conns int, d time.Duration, proc *exec.Cmd, adminAddr string, isGateway bool) (result, error) {
	target := "http://" + addr + path
	// Warm the connection pools and the caches first.
	if _, err := wrk(target, header, threads, conns, time.Second); err != nil {
		return result{}, err
	}
	var cpu0 time.Duration
	var m0 map[string]float64
	if proc != nil {
		cpu0 = cpuTime(proc.Process.Pid)
	}
	if isGateway {
		m0 = scrape(adminAddr)
	}
	r, err := wrk(target, header, threads, conns, d)
	if err != nil {
		return result{}, err
	}
	if proc != nil && r.requests > 0 {
		r.cpuPerRq = (cpuTime(proc.Process.Pid) - cpu0) / time.Duration(r.requests)
	}
	if isGateway && r.requests > 0 {
		m1 := scrape(adminAddr)
		r.allocs = (m1["go_memstats_mallocs_total"] - m0["go_memstats_mallocs_total"]) / float64(r.requests)
		r.rssMB = m1["process_resident_memory_bytes"] / (1 << 20)
	}
	return r, nil
}

var (
	reRPS      = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	reTotal    = regexp.MustCompile(`(\d+) requests in`)
	reNon2xx   = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	reSockErrs = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	reLatency  = regexp.MustCompile(`(?m)^\s+(50|99)(?:\.000)?%\s+([0-9.]+)(us|ms|s)\s*$`)
)

// wrk runs wrk once and parses its report.
func wrk(target, header string, threads, conns int, d time.Duration) (result, error) {
	args := []string{"-t" + strconv.Itoa(threads), "-c" + strconv.Itoa(conns), "-d" + strconv.Itoa(int(d.Seconds())) + "s", "--latency", "-H", header, target}
	out, err := exec.CommandContext(context.Background(), "wrk", args...).CombinedOutput() //nolint:gosec // A benchmark tool runs the programs it is told to.
	if err != nil {
		return result{}, fmt.Errorf("wrk %v: %w\n%s", args, err, out)
	}
	var r result
	text := string(out)
	if m := reRPS.FindStringSubmatch(text); m != nil {
		r.rps, _ = strconv.ParseFloat(m[1], 64)
	}
	if m := reTotal.FindStringSubmatch(text); m != nil {
		r.requests, _ = strconv.Atoi(m[1])
	}
	if m := reNon2xx.FindStringSubmatch(text); m != nil {
		r.errors, _ = strconv.Atoi(m[1])
	}
	if m := reSockErrs.FindStringSubmatch(text); m != nil {
		for _, s := range m[1:] {
			n, _ := strconv.Atoi(s)
			r.errors += n
		}
	}
	for _, m := range reLatency.FindAllStringSubmatch(text, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		unit := map[string]float64{"us": 1e3, "ms": 1e6, "s": 1e9}[m[3]]
		lat := time.Duration(v * unit)
		if m[1] == "50" {
			r.p50 = lat
		} else {
			r.p99 = lat
		}
	}
	if r.rps == 0 {
		return r, fmt.Errorf("wrk printed no throughput:\n%s", text)
	}
	return r, nil
}

// cpuTime is the user plus system CPU time of a process, from /proc.
func cpuTime(pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticks
}

// scrape reads the unlabelled samples of the gateway's admin /metrics.
func scrape(adminAddr string) map[string]float64 {
	out := map[string]float64{}
	resp, err := get("http://" + adminAddr + "/metrics")
	if err != nil {
		return out
	}
	defer func() { _ = resp.Body.Close() }()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || strings.Contains(line, "{") {
			continue
		}
		if name, v, ok := strings.Cut(line, " "); ok {
			out[name], _ = strconv.ParseFloat(v, 64)
		}
	}
	return out
}

// login registers a user directly at auth and returns an access token.
func login(base string) (string, error) {
	email := fmt.Sprintf("bench-%d@example.com", time.Now().UnixNano())
	body := fmt.Sprintf(`{"name":"Bench","email":%q,"password":"correct horse battery"}`, email)
	if _, err := postJSON(base+"/api/v1/auth/register", body, http.StatusCreated); err != nil {
		return "", err
	}
	out, err := postJSON(base+"/api/v1/auth/login", fmt.Sprintf(`{"email":%q,"password":"correct horse battery"}`, email), http.StatusOK)
	if err != nil {
		return "", err
	}
	var tokens struct {
		AccessToken string `json:"accessToken"`
	}
	if err := json.Unmarshal(out, &tokens); err != nil || tokens.AccessToken == "" {
		return "", fmt.Errorf("login answer %s: %w", out, err)
	}
	return tokens.AccessToken, nil
}

func postJSON(u, body string, want int) ([]byte, error) {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req) //nolint:gosec // G107: local addresses of the run.
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return nil, fmt.Errorf("POST %s: %d %s", u, resp.StatusCode, out)
	}
	return out, nil
}

// createDatabase makes an empty PostgreSQL database for the run's auth and returns
// its URL and a function that drops it.
func createDatabase(adminURL, name string) (string, func(), error) {
	u, err := url.Parse(adminURL)
	if err != nil {
		return "", nil, err
	}
	port := u.Port()
	if port == "" {
		port = "5432"
	}
	args := []string{"-h", u.Hostname(), "-p", port, "-U", u.User.Username()}
	if out, err := exec.CommandContext(context.Background(), "createdb", append(args, name)...).CombinedOutput(); err != nil { //nolint:gosec // A benchmark tool runs the programs it is told to.
		return "", nil, fmt.Errorf("createdb: %w: %s", err, out)
	}
	db := *u
	db.Path = "/" + name
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = exec.CommandContext(ctx, "dropdb", append(args, "--force", name)...).Run() //nolint:gosec // A benchmark tool runs the programs it is told to.
	}
	return db.String(), drop, nil
}

func waitOK(u string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		resp, err := get(u)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer 200 within %v", u, within)
}

func freeAddr() string {
	ln, err := new(net.ListenConfig).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().String()
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func orDash(ok bool, s string) string {
	if ok {
		return s
	}
	return "-"
}

func us(d time.Duration) string { return fmt.Sprintf("%.0fus", float64(d.Nanoseconds())/1000) }

func numCPU() int {
	data, _ := os.ReadFile("/proc/cpuinfo")
	return max(1, strings.Count(string(data), "processor\t:"))
}

// get fetches a local URL of the run.
func get(u string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	return http.DefaultClient.Do(req) //nolint:gosec // G107: local addresses of the run.
}
