package blockbuilder

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/thanos-io/objstore"

	"github.com/stratametrics/strata/internal/harness"
	"github.com/stratametrics/strata/remotewrite"
)

// TestMaxTenants: a write that would open a tenant over STRATA_MAX_TENANTS
// is told to retry, with a message naming the limit; the tenant opens once
// idle ones have closed; refused tenants and closed ones leave no series
// in the metrics; tenants found on disk open whatever their number.
func TestMaxTenants(t *testing.T) {
	dir := t.TempDir()
	bkt := objstore.NewInMemBucket()
	reg := prometheus.NewRegistry()
	b := newTestBlockBuilder(t, bkt, reg, func(c *Config) {
		c.DataDir = dir
		c.MaxTenants = 2
		c.TenantIdleTimeout = time.Millisecond
	})
	now := time.Now().UnixMilli()
	for _, tenant := range []string{"a", "b"} {
		if w := send(t, b.Handler(), tenant, minuteSeries(3, now, 15*time.Second), false); w.Code != http.StatusNoContent {
			t.Fatalf("tenant %s: %d %s", tenant, w.Code, w.Body)
		}
	}
	w := send(t, b.Handler(), "c", minuteSeries(3, now, 15*time.Second), false)
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Fatalf("third tenant over a limit of two: %d (Retry-After %q) %s, want 503 with Retry-After", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	for _, want := range []string{"tenant c", "STRATA_MAX_TENANTS"} {
		if !strings.Contains(w.Body.String(), want) {
			t.Fatalf("refusal %q does not say %q", w.Body, want)
		}
	}
	if got := harness.LabelValues(t, reg, "tenant", "strata_blockbuilder_write_requests_total"); !slices.Equal(got, []string{"a", "b", "unknown"}) {
		t.Fatalf("write requests by tenant %v, want a, b and unknown (the refused c)", got)
	}
	if got := gauge(t, reg, "strata_blockbuilder_max_tenants"); got != 2 {
		t.Fatalf("strata_blockbuilder_max_tenants %v, want 2", got)
	}

	// Both go idle and close: c opens, and a and b leave the metrics.
	time.Sleep(5 * time.Millisecond)
	b.maintain(context.Background())
	if n := gauge(t, reg, "strata_blockbuilder_open_tenants"); n != 0 {
		t.Fatalf("%v tenants open after they went idle, want 0", n)
	}
	if w := send(t, b.Handler(), "c", minuteSeries(3, now, 15*time.Second), false); w.Code != http.StatusNoContent {
		t.Fatalf("tenant c once the others closed: %d %s", w.Code, w.Body)
	}
	for _, name := range []string{"strata_blockbuilder_write_requests_total", "strata_blockbuilder_appended_total"} {
		if got := harness.LabelValues(t, reg, "tenant", name); slices.Contains(got, "a") || slices.Contains(got, "b") {
			t.Fatalf("%s still has closed tenants: %v", name, got)
		}
	}
	if err := b.shutdown(); err != nil {
		t.Fatal(err)
	}

	// A restart opens every tenant on disk, over the limit, so none of
	// their data waits for a write; new tenants are still refused.
	b2 := newTestBlockBuilder(t, bkt, nil, func(c *Config) {
		c.DataDir = dir
		c.MaxTenants = 1
	})
	if open := len(b2.openTenants()); open != 3 {
		t.Fatalf("%d tenants opened from disk, want 3", open)
	}
	if w := send(t, b2.Handler(), "a", minuteSeries(3, now+60000, 15*time.Second), false); w.Code != http.StatusNoContent {
		t.Fatalf("tenant a, open from disk: %d %s", w.Code, w.Body)
	}
	if w := send(t, b2.Handler(), "d", minuteSeries(3, now, 15*time.Second), false); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("new tenant d over the limit: %d %s, want 503", w.Code, w.Body)
	}
}

// TestMaxSeriesPerTenant: past the bound, a tenant's new series are
// refused as over a limit (413, which senders drop) while its series in
// the head, and other tenants, keep being written.
func TestMaxSeriesPerTenant(t *testing.T) {
	reg := prometheus.NewRegistry()
	b := newTestBlockBuilder(t, objstore.NewInMemBucket(), reg, func(c *Config) { c.MaxSeriesPerTenant = 3 })
	now := time.Now().Add(-time.Minute).UnixMilli()
	written := func(w *httptest.ResponseRecorder) string { return w.Header().Get(remotewrite.HeaderSamplesWritten) }

	// Forwarded, so that the written headers come whatever the version.
	w := send(t, b.Handler(), "a", minuteSeries(5, now, 30*time.Second), true) // two samples a series
	if w.Code != http.StatusRequestEntityTooLarge || written(w) != "6" {
		t.Fatalf("five new series over a bound of three: %d, %s samples written, %s; want 413 with 6 written", w.Code, written(w), w.Body)
	}
	for _, want := range []string{"STRATA_MAX_SERIES_PER_TENANT", "2 series rejected", "series 3:", "series 4:"} {
		if !strings.Contains(w.Body.String(), want) {
			t.Fatalf("refusal %q does not say %q", w.Body, want)
		}
	}
	// The three in the head go on; the two others are refused again.
	w = send(t, b.Handler(), "a", minuteSeries(5, now+30000, 30*time.Second), true)
	if w.Code != http.StatusRequestEntityTooLarge || written(w) != "6" {
		t.Fatalf("the same five later: %d, %s written, %s; want 413 with 6 written", w.Code, written(w), w.Body)
	}
	if w := send(t, b.Handler(), "a", minuteSeries(3, now+60000, 30*time.Second), false); w.Code != http.StatusNoContent {
		t.Fatalf("only the three series in the head: %d %s", w.Code, w.Body)
	}
	if w := send(t, b.Handler(), "b", minuteSeries(3, now, 30*time.Second), false); w.Code != http.StatusNoContent {
		t.Fatalf("another tenant: %d %s", w.Code, w.Body)
	}
	if got := gauge(t, reg, "strata_blockbuilder_rejected_series_total"); got != 4 {
		t.Fatalf("%v rejected series counted, want 4", got)
	}
}
