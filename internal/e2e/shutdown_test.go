package e2e

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stratametrics/strata/internal/harness"
)

// holdFirstWrite is a proxy in front of a block builder that holds the
// first write until release is closed, so that a test has a write in
// flight for as long as it needs one.
type holdFirstWrite struct {
	proxy   *httputil.ReverseProxy
	held    atomic.Bool
	arrived chan struct{}
	release chan struct{}
}

func (h *holdFirstWrite) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Not a sync.Once: the writes after the first must not wait for it.
	if r.URL.Path == "/api/v1/receive" && h.held.CompareAndSwap(false, true) {
		close(h.arrived)
		<-h.release
	}
	h.proxy.ServeHTTP(w, r)
}

// TestRouterShutdownDrains: a router told to stop (SIGTERM) answers 503 on
// /-/ready at once, so that load balancers stop sending, while it keeps
// its listener open and answers the write it was forwarding, and any write
// still reaching it, with 204; then it exits 0.
func TestRouterShutdownDrains(t *testing.T) {
	bb := harness.StartBlockBuilder(t, "drain-0", []string{"STRATA_BUCKET_DIR=" + t.TempDir()})
	target, _ := url.Parse("http://" + bb.Addr)
	gate := &holdFirstWrite{proxy: httputil.NewSingleHostReverseProxy(target), arrived: make(chan struct{}), release: make(chan struct{})}
	proxy := httptest.NewServer(gate)
	t.Cleanup(proxy.Close)
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { close(gate.release) }) }
	t.Cleanup(release)

	// No delay: what keeps the router serving is the write in flight, for
	// as long as the test holds it, not a timer.
	router := harness.StartRouterEnv(t,
		"STRATA_ENDPOINTS="+strings.TrimPrefix(proxy.URL, "http://"),
		"STRATA_SHUTDOWN_DELAY=0s",
		"STRATA_FORWARD_TIMEOUT=10m",
	)
	now := time.Now().UnixMilli()
	type answer struct {
		code int
		body string
	}
	inFlight := make(chan answer, 1)
	go func() {
		code, body := postBatch(client, router.URL(), "team-a", batch("drain", 10, now))
		inFlight <- answer{code, body}
	}()
	<-gate.arrived

	if err := router.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// A new connection each time: what a load balancer's check sees.
	fresh := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	status := func(path string) (int, string) {
		resp, err := fresh.Get("http://" + router.Addr + path)
		if err != nil {
			t.Fatalf("%s during the drain: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// The signal is handled asynchronously: ready turns, and stays, 503.
	waitFor(t, 30*time.Second, func() bool { code, _ := status("/-/ready"); return code == http.StatusServiceUnavailable })
	if code, body := status("/-/ready"); code != http.StatusServiceUnavailable || !strings.Contains(body, "shutting down") {
		t.Fatalf("/-/ready during the drain: %d %q, want 503 saying it is shutting down", code, body)
	}
	if code, _ := status("/-/healthy"); code != http.StatusOK {
		t.Fatalf("/-/healthy during the drain: %d, want 200 (the process is not broken)", code)
	}
	// A sender whose load balancer has not seen it yet is still served.
	if code, body := postBatch(fresh, router.URL(), "team-a", batch("drain_late", 10, now)); code != http.StatusNoContent {
		t.Fatalf("a write arriving during the drain: %d %q, want 204", code, body)
	}
	select {
	case a := <-inFlight:
		t.Fatalf("the held write was answered (%d %q) before the block builder answered it", a.code, a.body)
	default:
	}

	release()
	if a := <-inFlight; a.code != http.StatusNoContent {
		t.Fatalf("the write in flight at SIGTERM: %d %q, want 204", a.code, a.body)
	}
	if err := router.Wait(30 * time.Second); err != nil {
		t.Fatalf("router exit after the drain: %v", err)
	}
	// And it has closed its listener.
	if _, err := net.DialTimeout("tcp", router.Addr, time.Second); err == nil || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial after exit: %v, want connection refused", err)
	}
}

// TestRouterShutdownDelay: with no write in flight, STRATA_SHUTDOWN_DELAY
// alone keeps the router serving, not ready, after SIGTERM: load
// balancers get the time to see it.
func TestRouterShutdownDelay(t *testing.T) {
	bb := harness.StartBlockBuilder(t, "delay-0", []string{"STRATA_BUCKET_DIR=" + t.TempDir()})
	router := harness.StartRouter(t, []*harness.Component{bb}, 1, "STRATA_SHUTDOWN_DELAY=1h", "STRATA_SHUTDOWN_TIMEOUT=2h")
	if err := router.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	fresh := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	waitFor(t, 30*time.Second, func() bool {
		resp, err := fresh.Get("http://" + router.Addr + "/-/ready")
		if err != nil {
			t.Fatalf("/-/ready during the delay: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	if code, body := postBatch(fresh, router.URL(), "team-a", batch("delay", 10, time.Now().UnixMilli())); code != http.StatusNoContent {
		t.Fatalf("a write during the delay: %d %q, want 204", code, body)
	}
	// The hour is not waited for: the test has seen what it needed.
	router.Kill()
}
