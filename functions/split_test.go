package functions_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/stratametrics/strata/functions"
	"github.com/stratametrics/strata/remotewrite"
)

// TestSplitTenantLabel: with STRATA_SPLIT_TENANT_LABEL, each series goes
// to the tenant its label names, stored without the label, with that
// tenant's credentials and limits; series without it keep the header's
// tenant; a series naming an invalid tenant is refused by name, the rest
// of its request stored.
func TestSplitTenantLabel(t *testing.T) {
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte("secret team-a,team-b,team-d\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// team-d keeps one series per request: a part is written with its
	// own tenant's limits.
	lim := filepath.Join(dir, "limits.yaml")
	if err := os.WriteFile(lim, []byte("tenants:\n  team-d:\n    max_series_per_request: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := startCluster(t, 3, 2, func(cfg *functions.Config) {
		cfg.SplitTenantLabel = "tenant"
		cfg.BearerTokenFile = tokens
		cfg.LimitsFile = lim
	})
	headers := func(h map[string]string) map[string]string {
		h["Authorization"] = "Bearer secret"
		return h
	}
	now := time.Now().UnixMilli()
	// label names series i's tenant, "" none.
	v1 := func(ts int64, tenants ...string) *prompb.WriteRequest {
		req := seriesV1("split", len(tenants), ts)
		for i, tn := range tenants {
			if tn != "" {
				req.Timeseries[i].Labels = append(req.Timeseries[i].Labels, prompb.Label{Name: "tenant", Value: tn})
			}
		}
		return req
	}

	if resp, body := post(t, c.routerURL, encodeV1(t, v1(now, "", "team-b", "team-b", "")), headers(v1Headers("team-a"))); resp.StatusCode != 204 {
		t.Fatalf("a request for team-a and team-b: %d %q, want 204", resp.StatusCode, body)
	}
	resp, body := post(t, c.routerURL, encodeV1(t, v1(now+1000, "", "../x", "team-b")), headers(v1Headers("team-a")))
	if resp.StatusCode != 400 || !strings.Contains(body, "label tenant") || !strings.Contains(body, "1 series name no valid tenant") {
		t.Fatalf("a series naming tenant ../x: %d %q, want 400 naming the label", resp.StatusCode, body)
	}
	resp, body = post(t, c.routerURL, encodeV1(t, v1(now+2000, "", "team-c")), headers(v1Headers("team-a")))
	if resp.StatusCode != 403 || !strings.Contains(body, "tenant team-c") {
		t.Fatalf("a series naming team-c, which the token may not write: %d %q, want 403", resp.StatusCode, body)
	}
	resp, body = post(t, c.routerURL, encodeV1(t, v1(now+3000, "", "team-d", "team-d")), headers(v1Headers("team-a")))
	if resp.StatusCode != 413 || !strings.Contains(body, "tenant team-d") {
		t.Fatalf("two series for team-d, whose limit is one a request: %d %q, want 413", resp.StatusCode, body)
	}
	// 2.0: the written headers count every tenant's samples.
	req2 := seriesV2("split2", 3, now+4000)
	req2.Symbols = append(req2.Symbols, "tenant", "team-b")
	n := uint32(len(req2.Symbols))
	req2.Timeseries[1].LabelsRefs = append(req2.Timeseries[1].LabelsRefs, n-2, n-1)
	resp, body = post(t, c.routerURL, encodeV2(t, req2), headers(v2Headers("team-a")))
	if resp.StatusCode != 204 || resp.Header.Get(remotewrite.HeaderSamplesWritten) != "3" {
		t.Fatalf("2.0 request for team-a and team-b: %d %q, %s samples written; want 204 and 3", resp.StatusCode, body, resp.Header.Get(remotewrite.HeaderSamplesWritten))
	}

	c.flush()
	got, _ := c.bucketSamples()
	names := func(tenant string) []string {
		var out []string
		for s, samples := range got[tenant] {
			if strings.Contains(s, "tenant=") {
				t.Errorf("tenant %s holds %s: the split label must not be stored", tenant, s)
			}
			for range samples {
				out = append(out, s)
			}
		}
		slices.Sort(out)
		return out
	}
	a, b := names("team-a"), names("team-b")
	// team-a: series 0 and 3 of the first request, series 0 of the next
	// three, and series 0 and 2 of the 2.0 one.
	if len(a) != 2+3+2 {
		t.Errorf("team-a: %d samples, want 7: %v", len(a), a)
	}
	// team-b: series 1 and 2 of the first, 2 of the second, 1 of the 2.0.
	if len(b) != 4 {
		t.Errorf("team-b: %d samples, want 4: %v", len(b), b)
	}
	for _, tenant := range []string{"team-c", "team-d", "..", "../x"} {
		if len(got[tenant]) > 0 {
			t.Errorf("tenant %s stored %v", tenant, got[tenant])
		}
	}
}
