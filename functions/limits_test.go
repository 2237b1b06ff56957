package functions

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/stratametrics/strata/limits"
)

// TestLimitsReload: a changed file applies without a restart; a broken one
// keeps the previous limits and shows in the metric.
func TestLimitsReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "limits.yaml")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("tenants:\n  a:\n    ingestion_rate: 10\n")
	cfg := DefaultConfig()
	cfg.LimitsFile = path
	reg := prometheus.NewRegistry()
	l, err := newTenantLimits(&cfg, quiet(), reg)
	if err != nil {
		t.Fatal(err)
	}
	seed, tl := l.knownSeed("a")
	if got := tl.IngestionRate; got != 10 {
		t.Fatalf("rate %v", got)
	}
	write("tenants:\n  a:\n    ingestion_rate: 20\n")
	l.reload()
	reloaded, tl := l.knownSeed("a")
	if got := tl.IngestionRate; got != 20 {
		t.Fatalf("after reload: rate %v, want 20", got)
	}
	// Series known under the old limits are checked again under the new.
	if reloaded == seed {
		t.Fatal("the known-series seed did not change with the limits")
	}
	write("tenants:\n  a:\n    ingestion_rate: 30\n    metric_relabel_configs: [{regex: '[', action: labeldrop}]\n")
	l.reload()
	if _, tl := l.knownSeed("a"); tl.IngestionRate != 20 || tl.MetricRelabelConfigs != nil {
		t.Fatalf("after a file with a bad relabel rule: %+v, want the previous limits whole", tl)
	}
	write("tenants:\n  a:\n    ingestion_rate: nope\n")
	l.reload()
	kept, tl := l.knownSeed("a")
	if got := tl.IngestionRate; got != 20 {
		t.Fatalf("after a broken file: rate %v, want the previous 20", got)
	}
	if kept != reloaded {
		t.Fatal("a broken limits file changed the known-series seed")
	}
	if v := gathered(t, reg, "strata_limits_config_last_reload_successful"); v != 0 {
		t.Fatalf("last reload successful = %v after a broken file", v)
	}
}

func TestRateLimit(t *testing.T) {
	cfg := DefaultConfig()
	l, err := newTenantLimits(&cfg, quiet(), nil)
	if err != nil {
		t.Fatal(err)
	}
	tl := &limits.Tenant{Limits: cfg.Limits, IngestionRate: 100, IngestionBurst: 150}
	now := time.Now()
	if !l.allow("a", tl, 150, now) {
		t.Fatal("the burst was refused")
	}
	if l.allow("a", tl, 10, now) {
		t.Fatal("over the rate was allowed")
	}
	if !l.allow("a", tl, 10, now.Add(200*time.Millisecond)) {
		t.Fatal("the rate did not refill")
	}
	if !l.allow("b", tl, 150, now) {
		t.Fatal("tenants share a rate")
	}
	l.limiters.sweep(now.Add(time.Hour), nil)
	if n := l.limiters.len(); n != 0 {
		t.Fatalf("%d idle limiters kept", n)
	}
}

// TestRateLimitersAreBounded: past the bound on tenants with a rate of
// their own, new tenants share one rate, and get their own again once
// idle tenants are forgotten.
func TestRateLimitersAreBounded(t *testing.T) {
	cfg := DefaultConfig()
	l, err := newTenantLimits(&cfg, quiet(), nil)
	if err != nil {
		t.Fatal(err)
	}
	l.limiters = newRecentTenants[*rate.Limiter](2)
	tl := &limits.Tenant{Limits: cfg.Limits, IngestionRate: 100, IngestionBurst: 150}
	now := time.Now()
	for _, tenant := range []string{"a", "b", "c"} {
		if !l.allow(tenant, tl, 150, now) {
			t.Fatalf("tenant %s: its first burst was refused", tenant)
		}
	}
	if n := l.limiters.len(); n != 2 {
		t.Fatalf("%d rate limiters held, want the bound of 2", n)
	}
	if l.allow("d", tl, 150, now) {
		t.Fatal("tenants over the bound do not share a rate: d had a burst of its own after c used the shared one")
	}
	later := now.Add(time.Minute)
	l.allow("a", tl, 1, later)
	l.limiters.sweep(later, nil)
	if !l.allow("d", tl, 150, later) {
		t.Fatal("d got no rate of its own once b was forgotten")
	}
	if n := l.limiters.len(); n != 2 {
		t.Fatalf("%d rate limiters held after the sweep, want a and d", n)
	}
}

// gathered is the value of a metric without labels in reg.
func gathered(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.Metric) == 1 {
			if g := mf.Metric[0].GetGauge(); g != nil {
				return g.GetValue()
			}
			return mf.Metric[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
