package functions

import (
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stratametrics/strata/internal/forwarding"
	"github.com/stratametrics/strata/internal/harness"
)

// TestTenantMetricsAreSwept: a tenant's series go once it has sent
// nothing for a while, which frees its place for another tenant.
func TestTenantMetricsAreSwept(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newMetrics(reg, 1)
	now := time.Now()
	ok := outcome{written: forwarding.Written{Samples: 5}}
	m.observe("a", ok, time.Millisecond, now)
	m.observe("b", ok, time.Millisecond, now)
	if got := tenantsOf(t, reg); !slices.Equal(got, []string{"a", "unknown"}) {
		t.Fatalf("series by tenant %v, want a and unknown (b over the bound of 1)", got)
	}
	m.observe("a", ok, time.Millisecond, now.Add(time.Minute))
	m.sweep(now.Add(30 * time.Second))
	if got := tenantsOf(t, reg); !slices.Contains(got, "a") {
		t.Fatalf("tenant a, active, lost its series: %v", got)
	}
	m.sweep(now.Add(2 * time.Minute))
	if got := tenantsOf(t, reg); slices.Contains(got, "a") {
		t.Fatalf("tenant a, idle, kept its series: %v", got)
	}
	m.observe("b", ok, time.Millisecond, now.Add(3*time.Minute))
	if got := tenantsOf(t, reg); !slices.Contains(got, "b") {
		t.Fatalf("tenant b got no series of its own once a was swept: %v", got)
	}
}

// tenantsOf lists the tenants with series in the router's request and
// written counters.
func tenantsOf(t *testing.T, g prometheus.Gatherer) []string {
	t.Helper()
	return harness.LabelValues(t, g, "tenant", "strata_router_requests_total", "strata_router_written_total")
}
