package gateway_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// restartableService is a service on a fixed 127.0.0.1 address that a test can
// kill the way kill -9 does (listener and every open connection gone at once) and
// start again on the same address. Each run answers with its generation number, so
// a test sees which run served a request.
type restartableService struct {
	t    *testing.T
	addr string

	mu    sync.Mutex
	ln    net.Listener
	srv   *http.Server
	conns map[net.Conn]struct{}
	gen   int
	// hold delays every answer of the current run, so concurrent requests need
	// as many connections.
	hold time.Duration
}

func newRestartableService(t *testing.T) *restartableService {
	t.Helper()
	s := &restartableService{t: t}
	ln := listen(t)
	s.addr = ln.Addr().String()
	s.serve(ln)
	t.Cleanup(func() { s.kill(true) })
	return s
}

// serve starts a new run (generation) on ln.
func (s *restartableService) serve(ln net.Listener) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	gen := strconv.Itoa(s.gen)
	s.ln = ln
	s.conns = map[net.Conn]struct{}{}
	s.srv = &http.Server{
		ReadHeaderTimeout: 5 * time.Second,
		ConnState: func(c net.Conn, st http.ConnState) {
			s.mu.Lock()
			defer s.mu.Unlock()
			switch st {
			case http.StateNew:
				s.conns[c] = struct{}{}
			case http.StateClosed, http.StateHijacked:
				delete(s.conns, c)
			}
		},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			s.mu.Lock()
			hold := s.hold
			s.mu.Unlock()
			time.Sleep(hold)
			w.Header().Set("X-Generation", gen)
			switch r.Method {
			case http.MethodDelete:
				w.WriteHeader(http.StatusNoContent)
			case http.MethodPost:
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusCreated)
				_, _ = io.WriteString(w, `{"generation":`+gen+`}`)
			default:
				w.WriteHeader(http.StatusOK)
			}
		}),
	}
	srv := s.srv
	go func() { _ = srv.Serve(ln) }()
}

// openConns is the number of connections the current run has open.
func (s *restartableService) openConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// kill closes the listener and every open connection at once, without a graceful
// shutdown. With reset, connections close with SO_LINGER 0 (an RST, what a peer
// sees when the process dies with unread data); without, with a FIN, which is what
// the kernel sends for the idle sockets of a killed process.
func (s *restartableService) kill(reset bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return
	}
	_ = s.ln.Close()
	s.ln = nil
	for c := range s.conns {
		if tc, ok := c.(*net.TCPConn); ok && reset {
			_ = tc.SetLinger(0)
		}
		_ = c.Close()
	}
}

// restart starts a new run on the same address.
func (s *restartableService) restart() {
	s.t.Helper()
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatalf("listening again on %s: %v", s.addr, err)
	}
	s.serve(ln)
}

func (s *restartableService) setHold(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hold = d
}

// concurrently runs n copies of f at once and returns their errors.
func concurrently(n int, f func(i int) error) []error {
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = f(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// TestServiceRestartOnSameAddressGivesNoErrors kills a service whose connections
// sit in the gateway's pool and starts it again on the same address: the next
// DELETE and POST requests, which fasthttp alone would not retry, must all reach
// the new run instead of failing with 502 on a dead pooled connection.
func TestServiceRestartOnSameAddressGivesNoErrors(t *testing.T) {
	const n = 32
	for _, tc := range []struct {
		name  string
		reset bool
	}{{"reset", true}, {"fin", false}} {
		t.Run(tc.name, func(t *testing.T) {
			svc := newRestartableService(t)
			h := newHarness(t, withEnv("GATEWAY_COMMENT_URL", "http://"+svc.addr))
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2 * n, DisableCompression: true}}
			t.Cleanup(client.CloseIdleConnections)
			send := func(i int) (string, error) {
				method, path, body := http.MethodDelete, fmt.Sprintf("/api/v1/comments/c%d", i), io.Reader(nil)
				if i%2 == 1 {
					method, path = http.MethodPost, fmt.Sprintf("/api/v1/cards/k%d/comments", i)
					body = strings.NewReader(`{"body":"hello"}`)
				}
				req, err := http.NewRequest(method, h.url+path, body)
				if err != nil {
					return "", err
				}
				if body != nil {
					req.Header.Set("Content-Type", "application/json")
				}
				resp, err := client.Do(req)
				if err != nil {
					return "", err
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				want := http.StatusNoContent
				if method == http.MethodPost {
					want = http.StatusCreated
				}
				if resp.StatusCode != want {
					return "", fmt.Errorf("%s %s: status %d, want %d; body %s", method, path, resp.StatusCode, want, b)
				}
				return resp.Header.Get("X-Generation"), nil
			}

			// Fill the gateway's pool: concurrent requests held by the service
			// each need a connection of their own.
			svc.setHold(50 * time.Millisecond)
			for _, err := range concurrently(n, func(i int) error { _, err := send(i); return err }) {
				if err != nil {
					t.Fatalf("before the restart: %v", err)
				}
			}
			if open := svc.openConns(); open < n/2 {
				t.Fatalf("the gateway keeps %d connections to the service, want at least %d for the test to mean anything", open, n/2)
			}

			svc.kill(tc.reset)
			svc.restart()
			svc.setHold(0)
			// Ready again, as /readyz would say: it answers on a new connection.
			resp, err := http.Get("http://" + svc.addr + "/readyz")
			if err != nil {
				t.Fatalf("service not answering after the restart: %v", err)
			}
			_ = resp.Body.Close()

			var failed atomic.Int32
			for i, err := range concurrently(n, func(i int) error {
				gen, err := send(i)
				if err == nil && gen != "2" {
					err = fmt.Errorf("answered by run %q, want 2", gen)
				}
				return err
			}) {
				if err != nil {
					failed.Add(1)
					t.Errorf("request %d after the restart: %v", i, err)
				}
			}
			if f := failed.Load(); f > 0 {
				t.Errorf("%d of %d requests failed after the service restarted", f, n)
			}
		})
	}
}

// flakyService is a raw HTTP/1.1 service that reads each request in full and
// then, for the first failFirst requests, resets the connection without answering,
// as a service crashing mid-request does; for the first failReused requests that
// come on an already used connection, it closes that connection (FIN) without
// answering, as a service timing out an idle keep-alive connection just as the
// request arrives looks to the gateway. It counts what it received per method.
type flakyService struct {
	addr string

	mu         sync.Mutex
	failFirst  int
	failReused int
	seen       map[string]int
}

func newFlakyService(t *testing.T, failFirst int) *flakyService {
	t.Helper()
	ln := listen(t)
	f := &flakyService{addr: ln.Addr().String(), failFirst: failFirst, seen: map[string]int{}}
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { f.serveConn(c) })
		}
	})
	return f
}

func (f *flakyService) serveConn(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	for served := 0; ; served++ {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, req.Body)
		f.mu.Lock()
		f.seen[req.Method]++
		fail := f.failFirst > 0
		if fail {
			f.failFirst--
		}
		closeIdle := !fail && served > 0 && f.failReused > 0
		if closeIdle {
			f.failReused--
		}
		f.mu.Unlock()
		if closeIdle {
			return
		}
		if fail {
			_ = c.(*net.TCPConn).SetLinger(0)
			return
		}
		status := "204 No Content"
		if req.Method == http.MethodPost {
			status = "201 Created"
		}
		if _, err := io.WriteString(c, "HTTP/1.1 "+status+"\r\nContent-Length: 0\r\n\r\n"); err != nil {
			return
		}
	}
}

func (f *flakyService) count(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.seen[method]
}

// TestConnectionFailureRetriesIdempotentMethodsOnly checks the retry rule on a
// connection that fails after the request went out and before any answer byte,
// the case the pool's check cannot see coming: DELETE (idempotent, RFC 9110
// section 9.2.2) is sent again on another connection and succeeds; POST on a new
// connection is not, since the service may have acted on it, and the client gets
// 502 with the service having seen it once.
func TestConnectionFailureRetriesIdempotentMethodsOnly(t *testing.T) {
	t.Run("DELETE retried", func(t *testing.T) {
		svc := newFlakyService(t, 1)
		h := newHarness(t, withEnv("GATEWAY_COMMENT_URL", "http://"+svc.addr))
		r := h.do(t, http.MethodDelete, "/api/v1/comments/c1", nil)
		if r.Status != http.StatusNoContent {
			t.Fatalf("status = %d, want 204 from the second attempt; body %s", r.Status, r.Body)
		}
		if got := svc.count(http.MethodDelete); got != 2 {
			t.Fatalf("service saw %d DELETE, want 2 (the failed one and its retry)", got)
		}
	})
	t.Run("DELETE attempts bounded", func(t *testing.T) {
		svc := newFlakyService(t, 100)
		h := newHarness(t, withEnv("GATEWAY_COMMENT_URL", "http://"+svc.addr))
		wantProblem(t, h.do(t, http.MethodDelete, "/api/v1/comments/c1", nil), http.StatusBadGateway)
		if got := svc.count(http.MethodDelete); got != 3 {
			t.Fatalf("service saw %d DELETE, want 3 attempts at most", got)
		}
	})
	t.Run("POST not replayed", func(t *testing.T) {
		svc := newFlakyService(t, 1)
		h := newHarness(t, withEnv("GATEWAY_COMMENT_URL", "http://"+svc.addr))
		r := h.do(t, http.MethodPost, "/api/v1/cards/k1/comments", strings.NewReader(`{"body":"x"}`),
			"Content-Type", "application/json")
		wantProblem(t, r, http.StatusBadGateway)
		if got := svc.count(http.MethodPost); got != 1 {
			t.Fatalf("service saw %d POST, want 1: a POST the service may have processed must not be sent again", got)
		}
	})
	// fasthttp's io.EOF rule: a reused keep-alive connection closed before the
	// first answer byte is taken for one the service closed between requests.
	t.Run("POST on a reused connection closed unanswered retried", func(t *testing.T) {
		svc := newFlakyService(t, 0)
		h := newHarness(t, withEnv("GATEWAY_COMMENT_URL", "http://"+svc.addr))
		post := func() response {
			return h.do(t, http.MethodPost, "/api/v1/cards/k1/comments", strings.NewReader(`{"body":"x"}`),
				"Content-Type", "application/json")
		}
		if r := post(); r.Status != http.StatusCreated {
			t.Fatalf("first POST: status = %d, want 201; body %s", r.Status, r.Body)
		}
		svc.mu.Lock()
		svc.failReused = 1
		svc.mu.Unlock()
		if r := post(); r.Status != http.StatusCreated {
			t.Fatalf("second POST: status = %d, want 201 from the retry on a new connection; body %s", r.Status, r.Body)
		}
		if got := svc.count(http.MethodPost); got != 3 {
			t.Fatalf("service saw %d POST, want 3 (one, then one unanswered and its retry)", got)
		}
	})
}
