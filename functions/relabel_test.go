package functions_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	remoteapi "github.com/prometheus/client_golang/exp/api/remote"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/stratametrics/strata/functions"
)

const relabelLimits = `
tenants:
  relabeled:
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: drop_me_.*
        action: drop
      - regex: pod_uid
        action: labeldrop
      - source_labels: [job]
        target_label: team
        replacement: platform-$1
  broken:
    metric_relabel_configs:
      - source_labels: [job]
        regex: test
        target_label: team
        replacement: a
      - regex: __name__
        action: labeldrop
`

// relabelSeriesV1 makes n series to keep (with a pod_uid label to drop)
// and n to drop, one sample each at ts.
func relabelSeriesV1(n int, ts int64) *prompb.WriteRequest {
	req := &prompb.WriteRequest{}
	for i := 0; i < n; i++ {
		for _, name := range []string{"kept_metric", "drop_me_metric"} {
			req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
				Labels: []prompb.Label{
					{Name: "__name__", Value: name},
					{Name: "instance", Value: fmt.Sprintf("host-%d", i)},
					{Name: "job", Value: "test"},
					{Name: "pod_uid", Value: fmt.Sprintf("uid-%d", ts)},
				},
				Samples: []prompb.Sample{{Value: float64(i), Timestamp: ts}},
			})
		}
	}
	return req
}

func relabelSeriesV2(n int, ts int64) *writev2.Request {
	st := writev2.NewSymbolTable()
	req := &writev2.Request{}
	for i := 0; i < n; i++ {
		for _, name := range []string{"kept_v2", "drop_me_v2"} {
			req.Timeseries = append(req.Timeseries, writev2.TimeSeries{
				LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", name, "instance", fmt.Sprintf("host-%d", i), "job", "test", "pod_uid", "x"), nil),
				Samples:    []writev2.Sample{{Value: float64(i), Timestamp: ts}},
			})
		}
	}
	req.Symbols = st.Symbols()
	return req
}

func TestRelabelAtIngest(t *testing.T) {
	for _, known := range []int{functions.DefaultConfig().KnownSeries, 0} {
		t.Run(fmt.Sprintf("known series %d", known), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "limits.yaml")
			if err := os.WriteFile(path, []byte(relabelLimits), 0o600); err != nil {
				t.Fatal(err)
			}
			c := startCluster(t, 3, 2, func(cfg *functions.Config) {
				cfg.LimitsFile = path
				cfg.KnownSeries = known
			})
			now := time.Now().UnixMilli()
			v2 := promClient(t, c.routerURL, "relabeled", remoteapi.WriteV2MessageType)
			// Three rounds: the outcome of the rules is remembered after
			// the first.
			for round := int64(0); round < 3; round++ {
				ts := now + round*1000
				for _, tenant := range []string{"relabeled", "plain"} {
					if resp, body := post(t, c.routerURL, encodeV1(t, relabelSeriesV1(10, ts)), v1Headers(tenant)); resp.StatusCode != 204 {
						t.Fatalf("round %d, tenant %s, 1.0: got %d %q", round, tenant, resp.StatusCode, body)
					}
				}
				// Prometheus' own client: it counts what the answer does not
				// say was written as failed.
				stats, err := v2.Store(context.Background(), encodeV2(t, relabelSeriesV2(10, ts)), 0)
				if err != nil {
					t.Fatalf("round %d, 2.0: %v", round, err)
				}
				if !stats.Confirmed || stats.Samples != 20 {
					t.Fatalf("round %d, 2.0: written stats %+v, want all 20 samples confirmed: the dropped ones were accepted", round, stats)
				}
				// The second rule of "broken" leaves series without a
				// metric name: each is refused, naming the rule.
				resp, body := post(t, c.routerURL, encodeV1(t, relabelSeriesV1(2, ts)), v1Headers("broken"))
				if resp.StatusCode != 400 || !strings.Contains(body, "metric_relabel_configs rule 2 (action labeldrop)") || !strings.Contains(body, "no metric name") {
					t.Fatalf("round %d, broken rules: got %d %q, want 400 naming rule 2", round, resp.StatusCode, body)
				}
			}
			c.flush()
			got, _ := c.bucketSamples()
			var relabeled []string
			for s, samples := range got["relabeled"] {
				relabeled = append(relabeled, s)
				if len(samples) != 3 {
					t.Errorf("%s: %d samples, want 3", s, len(samples))
				}
			}
			slices.Sort(relabeled)
			if len(relabeled) != 20 {
				t.Fatalf("tenant relabeled: %d series, want 20: %v", len(relabeled), relabeled)
			}
			for _, s := range relabeled {
				if strings.Contains(s, "drop_me") || strings.Contains(s, "pod_uid") || !strings.Contains(s, `team="platform-test"`) {
					t.Fatalf("tenant relabeled holds %s: want no drop_me series, no pod_uid, team added", s)
				}
			}
			if n := len(got["plain"]); n != 60 {
				t.Fatalf("tenant plain: %d series, want its 20 series of each of 3 pod_uid values untouched", n)
			}
			if _, ok := got["broken"]; ok {
				t.Fatalf("tenant broken stored series: %v", got["broken"])
			}
			dropped := map[string]float64{}
			for _, m := range c.routerMetric("strata_router_relabel_dropped_total") {
				if labelOf(m, "tenant") == "relabeled" {
					dropped[labelOf(m, "type")] = m.GetCounter().GetValue()
				}
			}
			if dropped["series"] != 60 || dropped["sample"] != 60 {
				t.Fatalf("strata_router_relabel_dropped_total = %v, want 60 series and 60 samples", dropped)
			}
		})
	}
}
