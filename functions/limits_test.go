package functions

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/stratametrics/strata/otlp"
	"github.com/stratametrics/strata/validation"
)

func TestParseLimits(t *testing.T) {
	base := TenantLimits{Limits: validation.DefaultLimits(), OTLP: otlp.DefaultConfig()}
	set, err := ParseLimits([]byte(`
default:
  ingestion_rate: 1000
  max_label_value_length: 2048
tenants:
  team-a:
    ingestion_rate: 5000
    ingestion_burst: 10000
  team-b:
    max_series_per_request: 10
    otlp:
      translation_strategy: NoUTF8EscapingWithSuffixes
      promote_resource_attributes: [k8s.namespace.name]
`), base)
	if err != nil {
		t.Fatal(err)
	}
	if d := set.forTenant("other"); d.IngestionRate != 1000 || d.MaxLabelValueLength != 2048 || d.MaxSeriesPerRequest != base.MaxSeriesPerRequest {
		t.Fatalf("default tenant limits %+v", d)
	}
	if a := set.forTenant("team-a"); a.IngestionRate != 5000 || a.IngestionBurst != 10000 || a.MaxLabelValueLength != 2048 {
		t.Fatalf("team-a limits %+v: a tenant's overrides go on top of the file's default", a)
	}
	if b := set.forTenant("team-b"); b.MaxSeriesPerRequest != 10 || b.IngestionRate != 1000 ||
		b.OTLP.TranslationStrategy != "NoUTF8EscapingWithSuffixes" || len(b.OTLP.PromoteResourceAttributes) != 1 || b.OTLP.LookbackDelta != 5*time.Minute {
		t.Fatalf("team-b limits %+v", b)
	}

	for _, c := range []struct{ yaml, says string }{
		{"default:\n  max_label_lenght: 10\n", "max_label_lenght"},
		{"tenants:\n  team-a:\n    ingestion_rate: -1\n", "must not be negative"},
		{"tenants:\n  ../x:\n    ingestion_rate: 1\n", "tenant"},
		{"default:\n  max_series_per_request: 0\n", "must be positive"},
		{"tenants:\n  big:\n    max_decoded_bytes: 2147483648\n", "at most 1073741824 (1 GiB)"},
		{"defaults: {}\n", "defaults"},
		{"default: [1, 2]\n", "default"},
		{"tenants:\n  o:\n    otlp: {translation_strategy: Escaped}\n", "translation_strategy"},
		{"default:\n  otlp: {promote_all_resource_attributes: true, promote_resource_attributes: [a]}\n", "cannot both be set"},
		{"tenants:\n  r:\n    metric_relabel_configs: [{regex: '(unclosed', action: drop, source_labels: [job]}]\n", "(unclosed"},
		{"tenants:\n  r:\n    metric_relabel_configs: [{action: keep}, {action: replace, target_label: ''}]\n", "metric_relabel_configs rule 2"},
		{"tenants:\n  r:\n    metric_relabel_configs: [{action: drop, sourcelabels: [job]}]\n", "sourcelabels"},
		{"tenants:\n  r:\n    metric_relabel_configs: [{action: hashmod, target_label: s}]\n", "modulus"},
	} {
		if _, err := ParseLimits([]byte(c.yaml), base); err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%q: error %v, want one saying %q", c.yaml, err, c.says)
		}
	}
	if _, err := ParseLimits(nil, base); err != nil {
		t.Fatalf("an empty file: %v", err)
	}
}

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
	l, err := newLimits(&cfg, quiet(), reg)
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
	l, err := newLimits(&cfg, quiet(), nil)
	if err != nil {
		t.Fatal(err)
	}
	tl := &TenantLimits{Limits: cfg.Limits, IngestionRate: 100, IngestionBurst: 150}
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
	l, err := newLimits(&cfg, quiet(), nil)
	if err != nil {
		t.Fatal(err)
	}
	l.limiters = newRecentTenants[*rate.Limiter](2)
	tl := &TenantLimits{Limits: cfg.Limits, IngestionRate: 100, IngestionBurst: 150}
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

func FuzzParseLimits(f *testing.F) {
	for _, s := range []string{
		"default:\n  ingestion_rate: 1000\n",
		"tenants:\n  a:\n    max_series_per_request: 5\n",
		"default: {max_future_skew: 5m}\ntenants: {b: {ingestion_burst: 3}}\n",
		"",
		"- 1\n- 2\n",
	} {
		f.Add([]byte(s))
	}
	base := TenantLimits{Limits: validation.DefaultLimits(), OTLP: otlp.DefaultConfig()}
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := ParseLimits(data, base)
		if err != nil {
			return
		}
		// Whatever loads must be usable limits.
		for name := range set.tenants {
			if err := set.forTenant(name).validate(); err != nil {
				t.Fatalf("loaded invalid limits for %q: %v", name, err)
			}
		}
		if err := set.forTenant("anyone").validate(); err != nil {
			t.Fatalf("loaded invalid default limits: %v", err)
		}
	})
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
