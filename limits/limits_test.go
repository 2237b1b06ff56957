package limits

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratametrics/strata/otlp"
	"github.com/stratametrics/strata/validation"
)

func TestParse(t *testing.T) {
	base := Tenant{Limits: validation.DefaultLimits(), OTLP: otlp.DefaultConfig(), HA: DefaultHA()}
	set, err := Parse([]byte(`
default:
  ingestion_rate: 1000
  max_label_value_length: 2048
tenants:
  team-a:
    ingestion_rate: 5000
    ingestion_burst: 10000
    out_of_order_window: 30m
    max_series_per_tenant: 1000
    max_exemplars: 0
    accept_ha_samples: true
    ha_cluster_label: prometheus
    ha_replica_label: prometheus_replica
    ha_failover_timeout: 1m
  team-b:
    max_series_per_request: 10
    otlp:
      translation_strategy: NoUTF8EscapingWithSuffixes
      promote_resource_attributes: [k8s.namespace.name]
`), base)
	if err != nil {
		t.Fatal(err)
	}
	if d := set.For("other"); d.IngestionRate != 1000 || d.MaxLabelValueLength != 2048 || d.MaxSeriesPerRequest != base.MaxSeriesPerRequest {
		t.Fatalf("default tenant limits %+v", d)
	}
	if a := set.For("team-a"); a.IngestionRate != 5000 || a.IngestionBurst != 10000 || a.MaxLabelValueLength != 2048 ||
		a.OutOfOrderWindow != 30*time.Minute || a.MaxSeriesPerTenant != 1000 || a.MaxExemplars != 0 ||
		a.HA != (HA{Accept: true, ClusterLabel: "prometheus", ReplicaLabel: "prometheus_replica", FailoverTimeout: time.Minute}) {
		t.Fatalf("team-a limits %+v: a tenant's overrides go on top of the file's default", a)
	}
	if b := set.For("team-b"); b.MaxSeriesPerRequest != 10 || b.IngestionRate != 1000 ||
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
		{"tenants:\n  o:\n    out_of_order_window: -1m\n", "out_of_order_window"},
		{"tenants:\n  h:\n    accept_ha_samples: true\n    ha_cluster_label: x\n    ha_replica_label: x\n", "must differ"},
		{"tenants:\n  h:\n    accept_ha_samples: true\n    ha_failover_timeout: 10ms\n", "at least 1s"},
		{"tenants:\n  h:\n    accept_ha_samples: true\n    ha_replica_label: ''\n", "label names"},
		{"tenants:\n  o:\n    max_series_per_tenant: -1\n", "must not be negative"},
		{"default:\n  max_exemplars: -5\n", "must not be negative"},
		{"default:\n  out_of_order_window: soon\n", "soon"},
	} {
		if _, err := Parse([]byte(c.yaml), base); err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%q: error %v, want one saying %q", c.yaml, err, c.says)
		}
	}
	if _, err := Parse(nil, base); err != nil {
		t.Fatalf("an empty file: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"default:\n  ingestion_rate: 1000\n",
		"tenants:\n  a:\n    max_series_per_request: 5\n",
		"default: {max_future_skew: 5m}\ntenants: {b: {ingestion_burst: 3}}\n",
		"",
		"- 1\n- 2\n",
	} {
		f.Add([]byte(s))
	}
	base := Tenant{Limits: validation.DefaultLimits(), OTLP: otlp.DefaultConfig(), HA: DefaultHA()}
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := Parse(data, base)
		if err != nil {
			return
		}
		// Whatever loads must be usable limits.
		for name := range set.tenants {
			if err := set.For(name).Validate(); err != nil {
				t.Fatalf("loaded invalid limits for %q: %v", name, err)
			}
		}
		if err := set.For("anyone").Validate(); err != nil {
			t.Fatalf("loaded invalid default limits: %v", err)
		}
	})
}

// TestCurrentReloads: Run picks a changed file up at its interval, calls
// OnLoad with it, and keeps the last good set over a broken one.
func TestCurrentReloads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "limits.yaml")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("default:\n  ingestion_rate: 1\n")
	var loads atomic.Int32
	base := Tenant{Limits: validation.DefaultLimits(), OTLP: otlp.DefaultConfig(), HA: DefaultHA()}
	c, err := Load(Config{Path: path, Base: base, Interval: 20 * time.Millisecond, OnLoad: func(*Set) { loads.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx, nil)
	wait := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("never %s", what)
			}
		}
	}
	write("default:\n  ingestion_rate: 2\n")
	wait("reloaded", func() bool { return c.Set().For("x").IngestionRate == 2 })
	if loads.Load() != 2 {
		t.Fatalf("OnLoad called %d times, want 2", loads.Load())
	}
	write("default:\n  ingestion_rate: [\n")
	time.Sleep(100 * time.Millisecond)
	if got := c.Set().For("x").IngestionRate; got != 2 {
		t.Fatalf("after a broken file: rate %v, want the last good 2", got)
	}
}
