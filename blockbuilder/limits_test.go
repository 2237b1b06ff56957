package blockbuilder

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/thanos-io/objstore"

	"github.com/stratametrics/strata/internal/forwarding"
	"github.com/stratametrics/strata/internal/harness"
)

// TestTenantLimitsFile: the limits file sets a tenant's out-of-order
// window, series bound, exemplar ring and request limits on the block
// builder, over the environment's defaults; a changed file applies to
// tenants already open at their next write, and a broken one keeps the
// last good one.
func TestTenantLimitsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "limits.yaml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(`
tenants:
  late:
    out_of_order_window: 10m
  few:
    max_series_per_tenant: 2
  traced:
    max_exemplars: 100
  long:
    max_label_value_length: 40000
`)
	reg := prometheus.NewRegistry()
	b := newTestBlockBuilder(t, objstore.NewInMemBucket(), reg, func(c *Config) {
		c.LimitsFile = path
		c.OutOfOrderWindow = 0
		c.MaxExemplars = 0
		c.MaxSeriesPerTenant = 0
	})
	h := b.Handler()
	now := time.Now().Add(-time.Minute).UnixMilli()

	// outOfOrder writes a series, then a sample five minutes older.
	outOfOrder := func(tenant string, at int64) int {
		t.Helper()
		if w := send(t, h, tenant, minuteSeries(1, at, 15*time.Second), false); w.Code != http.StatusNoContent {
			t.Fatalf("tenant %s in order: %d %s", tenant, w.Code, w.Body)
		}
		return send(t, h, tenant, minuteSeries(1, at-5*time.Minute.Milliseconds(), 15*time.Second), false).Code
	}
	if code := outOfOrder("late", now); code != http.StatusNoContent {
		t.Fatalf("tenant late, out_of_order_window 10m: a sample 5m late answered %d, want 204", code)
	}
	if code := outOfOrder("other", now); code != http.StatusBadRequest {
		t.Fatalf("tenant other, no window: a sample 5m late answered %d, want 400", code)
	}

	w := send(t, h, "few", minuteSeries(3, now, 15*time.Second), true)
	if w.Code != http.StatusRequestEntityTooLarge || !strings.Contains(w.Body.String(), "max_series_per_tenant") {
		t.Fatalf("tenant few, bound 2: three new series answered %d %s, want 413 naming max_series_per_tenant", w.Code, w.Body)
	}
	if w := send(t, h, "other", minuteSeries(3, now, 15*time.Second), true); w.Code != http.StatusNoContent {
		t.Fatalf("tenant other, no bound: %d %s", w.Code, w.Body)
	}
	if got := harness.Gathered(t, reg, "strata_blockbuilder_max_series_per_tenant", "tenant", "few"); got != 2 {
		t.Fatalf("strata_blockbuilder_max_series_per_tenant{tenant=few} = %v, want 2", got)
	}

	traced := func(tenant string, at int64) int {
		t.Helper()
		req := minuteSeries(1, at, time.Second)
		req.Timeseries[0].Exemplars = []prompb.Exemplar{{Labels: []prompb.Label{{Name: "trace_id", Value: "abc"}}, Value: 1, Timestamp: at}}
		w := send(t, h, tenant, req, true)
		if w.Code != http.StatusNoContent && w.Code != http.StatusOK {
			t.Fatalf("tenant %s with an exemplar: %d %s", tenant, w.Code, w.Body)
		}
		return forwarding.WrittenFromHeaders(w.Header()).Exemplars
	}
	if n := traced("traced", now+60000); n != 1 || storedExemplars(t, b, "traced") != 1 {
		t.Fatalf("tenant traced, max_exemplars 100: %d exemplars written, %d stored; want 1", n, storedExemplars(t, b, "traced"))
	}
	if n := traced("other", now+60000); n != 0 || storedExemplars(t, b, "other") != 0 {
		t.Fatalf("tenant other, no exemplars: %d written, %d stored; want none", n, storedExemplars(t, b, "other"))
	}

	longValue := minuteSeries(1, now, 15*time.Second)
	longValue.Timeseries[0].Labels[1].Value = strings.Repeat("v", 20000)
	if w := send(t, h, "long", longValue, false); w.Code != http.StatusNoContent {
		t.Fatalf("tenant long, max_label_value_length 40000: a 20000-byte value answered %d %s", w.Code, w.Body)
	}
	if w := send(t, h, "other", longValue, false); w.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("tenant other, the default 16384: a 20000-byte value answered %d, want 413", w.Code)
	}

	// Tenant other is open: the new file applies at its next write.
	write("default:\n  out_of_order_window: 1h\n  max_exemplars: 10\n")
	b.limits.Reload()
	if code := outOfOrder("other", now+120000); code != http.StatusNoContent {
		t.Fatalf("tenant other after the file gave every tenant a window: a late sample answered %d, want 204", code)
	}
	if n := traced("other", now+180000); n != 1 || storedExemplars(t, b, "other") != 1 {
		t.Fatalf("tenant other after the file gave it exemplars: %d written, %d stored; want 1", n, storedExemplars(t, b, "other"))
	}
	if w := send(t, h, "few", minuteSeries(3, now+60000, 15*time.Second), true); w.Code != http.StatusNoContent {
		t.Fatalf("tenant few after its bound was removed: %d %s", w.Code, w.Body)
	}

	write("default:\n  out_of_order_window: nope\n")
	b.limits.Reload()
	if code := outOfOrder("late", now+240000); code != http.StatusNoContent {
		t.Fatalf("after a broken file: a late sample answered %d, want the last good file's window kept", code)
	}
	if v := gauge(t, reg, "strata_limits_config_last_reload_successful"); v != 0 {
		t.Fatalf("strata_limits_config_last_reload_successful = %v after a broken file", v)
	}
}

// storedExemplars counts the exemplars in a tenant's exemplar storage.
func storedExemplars(t *testing.T, b *BlockBuilder, tenant string) int {
	t.Helper()
	tv, ok := b.Tenant(tenant)
	if !ok {
		t.Fatalf("tenant %s is not open", tenant)
	}
	q, err := tv.DB.ExemplarQuerier(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	res, err := q.Select(0, time.Now().Add(time.Hour).UnixMilli(), []*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+")})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range res {
		n += len(r.Exemplars)
	}
	return n
}

// TestExemplarRingTakenWithFirstExemplar: a tenant's exemplar ring, some
// 60 bytes an entry allocated whole, is taken with its first exemplar, so
// that tenants that send none cost nothing for it; a restart replays the
// exemplars of a tenant that had some into a ring of the full size, and
// gives back the ring of one whose WAL holds none.
func TestExemplarRingTakenWithFirstExemplar(t *testing.T) {
	dir := t.TempDir()
	open := func() *BlockBuilder {
		return newTestBlockBuilder(t, objstore.NewInMemBucket(), nil, func(c *Config) {
			c.DataDir = dir
			c.MaxExemplars = 100
		})
	}
	b := open()
	h := b.Handler()
	now := time.Now().Add(-time.Minute).UnixMilli()
	// The ring's size, as the TSDB's own metric, which operators see,
	// tells it.
	ring := func(b *BlockBuilder, tenant string) float64 {
		t.Helper()
		return harness.Gathered(t, b.TSDBGatherer(), "prometheus_tsdb_exemplar_max_exemplars", "tenant", tenant)
	}
	for _, tenant := range []string{"plain", "traced"} {
		if w := send(t, h, tenant, minuteSeries(2, now, 15*time.Second), false); w.Code != http.StatusNoContent {
			t.Fatalf("tenant %s: %d %s", tenant, w.Code, w.Body)
		}
		if got := ring(b, tenant); got != 0 {
			t.Fatalf("tenant %s before any exemplar: a ring of %v, want none", tenant, got)
		}
	}
	req := minuteSeries(1, now+60000, time.Second)
	req.Timeseries[0].Exemplars = []prompb.Exemplar{{Labels: []prompb.Label{{Name: "trace_id", Value: "abc"}}, Value: 1, Timestamp: now + 60000}}
	w := send(t, h, "traced", req, true)
	if w.Code != http.StatusNoContent || forwarding.WrittenFromHeaders(w.Header()).Exemplars != 1 {
		t.Fatalf("first exemplar: %d %s, %+v written", w.Code, w.Body, forwarding.WrittenFromHeaders(w.Header()))
	}
	if got, stored := ring(b, "traced"), storedExemplars(t, b, "traced"); got != 100 || stored != 1 {
		t.Fatalf("after its first exemplar: a ring of %v holding %d, want 100 holding 1", got, stored)
	}
	if got := ring(b, "plain"); got != 0 {
		t.Fatalf("tenant plain: a ring of %v after another tenant's exemplar, want none", got)
	}

	// A crash: the TSDBs close without a flush, their WALs stay.
	if err := b.closeAll(b.openTenants()); err != nil {
		t.Fatal(err)
	}
	b = open()
	if got, stored := ring(b, "traced"), storedExemplars(t, b, "traced"); got != 100 || stored != 1 {
		t.Fatalf("traced after a restart: a ring of %v holding %d, want 100 holding the replayed 1", got, stored)
	}
	if got := ring(b, "plain"); got != 0 {
		t.Fatalf("plain after a restart: a ring of %v, want it given back (no exemplar in its WAL)", got)
	}
}
