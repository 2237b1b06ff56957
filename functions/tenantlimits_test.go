package functions_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stratametrics/strata/blockbuilder"
	"github.com/stratametrics/strata/functions"
)

// TestTenantLimitsHoldEndToEnd: a tenant's own request limits, from the
// limits file routers and block builders share, hold on both: a label
// value the tenant may send is stored, not refused by the block builders'
// defaults after the router took it; another tenant is refused.
func TestTenantLimitsHoldEndToEnd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "limits.yaml")
	if err := os.WriteFile(path, []byte("tenants:\n  wide:\n    max_label_value_length: 40000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := startClusterWith(t, 3, 3, clusterOptions{
		router:       func(cfg *functions.Config) { cfg.LimitsFile = path },
		blockBuilder: func(_ int, cfg *blockbuilder.Config) { cfg.LimitsFile = path },
	})
	req := seriesV1("wide", 2, time.Now().UnixMilli())
	long := strings.Repeat("v", 20000)
	req.Timeseries[0].Labels[1].Value = long
	if resp, body := post(t, c.routerURL, encodeV1(t, req), v1Headers("wide")); resp.StatusCode != 204 {
		t.Fatalf("tenant wide, max_label_value_length 40000: a 20000-byte value answered %d %q, want 204", resp.StatusCode, body)
	}
	if resp, body := post(t, c.routerURL, encodeV1(t, req), v1Headers("narrow")); resp.StatusCode != 413 || !strings.Contains(body, "16384") {
		t.Fatalf("tenant narrow, the default 16384: got %d %q, want 413 naming the limit", resp.StatusCode, body)
	}
	c.flush()
	got, _ := c.bucketSamples()
	if n := len(got["wide"]); n != 2 {
		t.Fatalf("tenant wide: %d series stored, want 2", n)
	}
	found := false
	for s := range got["wide"] {
		found = found || strings.Contains(s, long)
	}
	if !found {
		t.Fatal("tenant wide: the series with the long label value is not in the bucket")
	}
}
