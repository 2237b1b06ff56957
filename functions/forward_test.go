package functions

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stratametrics/strata/internal/harness"
	"github.com/stratametrics/strata/shard"
)

// TestForwardTokenInClearIsWarned: a forward bearer token sent over plain
// http is logged once per block builder, and not for those reached over
// https.
func TestForwardTokenInClearIsWarned(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ForwardBearerTokenFile = filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(cfg.ForwardBearerTokenFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	eps, err := newEndpoints(context.Background(), &cfg, slog.New(slog.NewTextHandler(&logs, nil)), newMetrics(nil, 1))
	if err != nil {
		t.Fatal(err)
	}
	// Twice, as after a reload of the hashrings: endpoints are kept.
	for range 2 {
		ring, err := shard.SingleHashring([]string{"plain:19291", "https://secure:19291"}, cfg.shardOptions())
		if err != nil {
			t.Fatal(err)
		}
		eps.of(ring)
	}
	out := logs.String()
	if n := strings.Count(out, "in clear"); n != 1 || !strings.Contains(out, "plain:19291") {
		t.Fatalf("want one warning, for plain:19291; logged:\n%s", out)
	}
	if strings.Contains(out, "s3cret") {
		t.Fatalf("the token itself was logged:\n%s", out)
	}
}

// TestRemovedEndpointsAreForgotten: a block builder that leaves the
// hashrings stops being probed and leaves the router's metrics; one that
// stays keeps its state.
func TestRemovedEndpointsAreForgotten(t *testing.T) {
	cfg := DefaultConfig()
	cfg.EndpointBackoff, cfg.EndpointMaxBackoff = 10*time.Millisecond, 50*time.Millisecond
	reg := prometheus.NewRegistry()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	eps, err := newEndpoints(ctx, &cfg, quiet(), newMetrics(reg, 1))
	if err != nil {
		t.Fatal(err)
	}
	ring := func(addrs ...string) *shard.Ring {
		r, err := shard.SingleHashring(addrs, cfg.shardOptions())
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	// Nothing listens on either: both fail, back off and are probed.
	stays, leaves := harness.FreeAddr(t), harness.FreeAddr(t)
	before := eps.of(ring(stays, leaves))
	for _, ep := range before {
		eps.markDown(ep)
	}
	kept, gone := before[0], before[1]
	if kept.addr != stays {
		kept, gone = gone, kept
	}
	after := eps.of(ring(stays))
	if len(eps.byURL) != 1 || after[0] != kept {
		t.Fatalf("after the reload the router knows %d endpoints (want 1), the one that stayed kept: %v", len(eps.byURL), after[0] == kept)
	}
	deadline := time.Now().Add(5 * time.Second)
	for gone.probing.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the removed endpoint is still being probed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	eps.markDown(gone) // a write to it that was still on its way fails
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, mf := range mfs {
		for _, m := range mf.Metric {
			for _, l := range m.Label {
				if l.GetName() == "endpoint" {
					seen[l.GetValue()] = true
				}
			}
		}
	}
	if seen[gone.addr] || !seen[stays] {
		t.Fatalf("metric series by endpoint: %v; want %s only", seen, stays)
	}
}
