package functions_test

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/stratametrics/strata/app/router"
	"github.com/stratametrics/strata/functions"
)

// TestHAPairDedup: two replicas of an HA pair write the same series
// through two routers, each write to either router as a load balancer
// without sticky sessions would send it. One replica is stored, without
// its replica label; the other is answered 202. When the elected one
// stops, the other takes over within the failover timeout plus a refresh;
// a router restarted, and the election's owner away for a while, elect
// no one else.
func TestHAPairDedup(t *testing.T) {
	const timeout = 2 * time.Second
	ha := func(cfg *functions.Config) {
		cfg.HA.Accept = true
		cfg.HA.FailoverTimeout = timeout
	}
	c := startCluster(t, 3, 3, ha)
	var addrs []string
	for _, b := range c.bbs {
		addrs = append(addrs, b.addr)
	}
	second := func() *router.Server {
		cfg := functions.DefaultConfig()
		ha(&cfg)
		cfg.Endpoints, cfg.ReplicationFactor = addrs, 3
		cfg.ShutdownDelay = 0
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s, err := router.Start(cfg, l, router.Options{Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	other := second()
	defer func() { _ = other.Stop() }()
	urls := func() []string { return []string{c.routerURL, other.URL()} }

	// write sends replica's scrape of three series at ts, value v, to
	// router k, and returns the status.
	n := map[string]int{}
	write := func(replica string, ts int64, v float64) int {
		t.Helper()
		req := &prompb.WriteRequest{}
		for i := 0; i < 3; i++ {
			req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
				Labels: []prompb.Label{
					{Name: "__name__", Value: "ha_metric"}, {Name: "__replica__", Value: replica},
					{Name: "cluster", Value: "prod"}, {Name: "pod", Value: fmt.Sprint(i)},
				},
				Samples: []prompb.Sample{{Timestamp: ts, Value: v}},
			})
		}
		n[replica]++
		resp, body := post(t, urls()[n[replica]%2], encodeV1(t, req), v1Headers("team"))
		if resp.StatusCode != 204 && resp.StatusCode != 202 && resp.StatusCode != 503 {
			t.Fatalf("%s at %d: %d %q", replica, ts, resp.StatusCode, body)
		}
		return resp.StatusCode
	}
	const tick = 100 * time.Millisecond
	start := time.Now()
	ts := func() int64 { return time.Now().UnixMilli() }
	// Both write: a, first, is stored.
	for time.Since(start) < time.Second {
		if got := write("a", ts(), 1); got != 204 {
			t.Fatalf("the elected replica a answered %d", got)
		}
		if got := write("b", ts(), 2); got != 202 {
			t.Fatalf("replica b, not elected, answered %d, want 202", got)
		}
		time.Sleep(tick)
	}
	// a stops: b is elected within the timeout and a refresh.
	lastA := ts()
	var firstB int64
	for firstB == 0 {
		if time.Since(start) > 10*time.Second {
			t.Fatal("b never elected after a stopped")
		}
		now := ts()
		if write("b", now, 2) == 204 {
			firstB = now
		}
		time.Sleep(tick)
	}
	// Routers tell the owner of a's writes once a refresh (a tenth of
	// the timeout here), so the timeout runs from up to a refresh before
	// a's last write, and b's next ask comes up to a refresh after it.
	refresh := timeout / 10
	if gap := time.Duration(firstB-lastA) * time.Millisecond; gap < timeout-refresh-tick || gap > timeout+2*refresh+3*tick {
		t.Fatalf("b elected %s after a's last write, want the timeout %s within a refresh (%s)", gap, timeout, refresh)
	}

	// The election's owner away, a router restarted, a back: nobody is
	// elected anew while b writes.
	for _, b := range c.bbs {
		b.electDown.Store(true)
	}
	_ = other.Stop()
	other = second()
	// A router that kept its answer, and saw b write lately, goes on
	// with it; one that has none, or saw its elected replica silent,
	// answers 503, which senders retry: nothing is dropped on a guess,
	// and a is never stored.
	codes := map[string]map[int]int{"a": {}, "b": {}}
	for i := 0; i < 10; i++ {
		now := ts()
		codes["b"][write("b", now, 2)]++
		codes["a"][write("a", now, 1)]++
		time.Sleep(tick)
	}
	if codes["a"][204] > 0 || codes["b"][202] > 0 || codes["b"][503] == 0 {
		t.Fatalf("answers while the owner was away: %v; want a never stored, b never dropped, and 503 from the restarted router", codes)
	}
	for _, b := range c.bbs {
		b.electDown.Store(false)
	}
	for i := 0; i < 10; i++ {
		now := ts()
		if got := write("b", now, 2); got != 204 {
			t.Fatalf("elected b answered %d after the owner came back", got)
		}
		if got := write("a", now, 1); got != 202 {
			t.Fatalf("a answered %d after the owner came back, want 202: no second election", got)
		}
		time.Sleep(tick)
	}

	c.flush()
	got, _ := c.bucketSamples()
	if len(got["team"]) != 3 {
		t.Fatalf("%d series stored, want 3: %v", len(got["team"]), got["team"])
	}
	for s, samples := range got["team"] {
		if strings.Contains(s, "__replica__") {
			t.Fatalf("stored series %s keeps the replica label", s)
		}
		for at, v := range samples {
			if want := map[bool]float64{true: 1, false: 2}[at <= lastA]; v != want {
				t.Fatalf("%s at %d holds %v, want %v: one replica at a time", s, at, v, want)
			}
		}
	}
}
