package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/prompb"

	appbb "github.com/stratametrics/strata/app/blockbuilder"
	"github.com/stratametrics/strata/blockbuilder"
	"github.com/stratametrics/strata/internal/harness"
)

// servedBlockBuilder is a block builder served by appbb.Run in
// this process.
type servedBlockBuilder struct {
	addr    string
	started chan *blockbuilder.BlockBuilder // once it is ready
	done    chan error                      // what appbb.Run returned
}

// serveBlockBuilder runs appbb.Run on loopback listeners, and stops
// it when the test ends. It does not wait for the block builder to be
// ready: see ready.
func serveBlockBuilder(t *testing.T, cfg blockbuilder.Config) *servedBlockBuilder {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	grpcL, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		l.Close()
		t.Fatal(err)
	}
	s := &servedBlockBuilder{addr: l.Addr().String(), started: make(chan *blockbuilder.BlockBuilder, 1), done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	opts := blockBuilderOptions(ctx, slog.New(slog.DiscardHandler))
	next := opts.Started
	opts.Started = func(b *blockbuilder.BlockBuilder) {
		if next != nil {
			next(b)
		}
		s.started <- b
	}
	go func() { s.done <- appbb.Run(ctx, cfg, blockbuilder.DefaultQueryLimits(), l, grpcL, opts) }()
	t.Cleanup(func() {
		cancel()
		if err := <-s.done; err != nil {
			t.Errorf("block builder: %v", err)
		}
	})
	return s
}

// ready waits until the block builder has opened its tenants and takes
// writes, and returns it.
func (s *servedBlockBuilder) ready(t *testing.T) *blockbuilder.BlockBuilder {
	t.Helper()
	select {
	case b := <-s.started:
		return b
	case err := <-s.done:
		s.done <- err // for the cleanup
		t.Fatalf("block builder did not start: %v", err)
		return nil
	}
}

// testBlockBuilderConfig is a block builder on a filesystem bucket with
// one-minute blocks.
func testBlockBuilderConfig(t *testing.T) blockbuilder.Config {
	cfg := blockbuilder.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Bucket.Dir = t.TempDir()
	cfg.ReplicaName = "cmd-test"
	cfg.BlockDuration = time.Minute
	return cfg
}

// writeSeries sends n series of one sample at ts for tenant over HTTP and
// returns the answer.
func writeSeries(t *testing.T, addr, tenant, name string, n int, ts time.Time) *http.Response {
	t.Helper()
	req := &prompb.WriteRequest{}
	for i := range n {
		req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
			Labels:  []prompb.Label{{Name: "__name__", Value: name}, {Name: "instance", Value: fmt.Sprintf("host-%d", i)}},
			Samples: []prompb.Sample{{Value: float64(i), Timestamp: ts.UnixMilli()}},
		})
	}
	resp, _ := harness.PostWrite(t, nil, "http://"+addr+"/api/v1/receive", http.Header{"THANOS-TENANT": {tenant}}, req)
	return resp
}

// scrape reads the block builder's /metrics.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	code, _, body := get(t, "http://"+addr+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return mfs
}

// tenantValue is the value of a metric's series of one tenant (summed
// over its other labels), and whether there is one.
func tenantValue(mfs map[string]*dto.MetricFamily, name, tenant string) (float64, bool) {
	var v float64
	found := false
	for _, m := range mfs[name].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "tenant" && l.GetValue() == tenant {
				found = true
				v += m.GetGauge().GetValue() + m.GetCounter().GetValue() + m.GetUntyped().GetValue()
			}
		}
	}
	return v, found
}

// TestBlockBuilderTSDBMetricsPerTenant: the block builder's /metrics
// carries each open tenant's own Prometheus TSDB metrics, told apart by a
// tenant label: head series, samples appended, WAL size, and the blocks
// cut (compactions, blocks loaded) once the heads are flushed.
func TestBlockBuilderTSDBMetricsPerTenant(t *testing.T) {
	s := serveBlockBuilder(t, testBlockBuilderConfig(t))
	b := s.ready(t)
	now := time.Now()
	for tenant, series := range map[string]int{"team-a": 3, "team-b": 5} {
		if resp := writeSeries(t, s.addr, tenant, "tsdb_metrics_test", series, now); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("write for %s: %s", tenant, resp.Status)
		}
	}

	mfs := scrape(t, s.addr)
	for _, tc := range []struct {
		metric, tenant string
		want           func(float64) bool
		what           string
	}{
		{"prometheus_tsdb_head_series", "team-a", func(v float64) bool { return v == 3 }, "3"},
		{"prometheus_tsdb_head_series", "team-b", func(v float64) bool { return v == 5 }, "5"},
		{"prometheus_tsdb_head_samples_appended_total", "team-a", func(v float64) bool { return v == 3 }, "3"},
		{"prometheus_tsdb_head_samples_appended_total", "team-b", func(v float64) bool { return v == 5 }, "5"},
		{"prometheus_tsdb_wal_storage_size_bytes", "team-a", func(v float64) bool { return v > 0 }, "> 0"},
		{"prometheus_tsdb_wal_storage_size_bytes", "team-b", func(v float64) bool { return v > 0 }, "> 0"},
		{"prometheus_tsdb_compactions_total", "team-a", func(v float64) bool { return v == 0 }, "0 before the flush"},
	} {
		if v, ok := tenantValue(mfs, tc.metric, tc.tenant); !ok || !tc.want(v) {
			t.Errorf("%s{tenant=%q} = %v (present %v), want %s", tc.metric, tc.tenant, v, ok, tc.what)
		}
	}
	// Every TSDB series names its tenant: one without would clash with
	// another tenant's.
	for name, mf := range mfs {
		if !strings.HasPrefix(name, "prometheus_tsdb_") {
			continue
		}
		for _, m := range mf.GetMetric() {
			if _, ok := labelValue(m, "tenant"); !ok {
				t.Errorf("%s has a series without a tenant label: %v", name, m.GetLabel())
			}
		}
	}

	if err := b.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	mfs = scrape(t, s.addr)
	for _, tenant := range []string{"team-a", "team-b"} {
		for _, metric := range []string{"prometheus_tsdb_compactions_total", "prometheus_tsdb_blocks_loaded"} {
			if v, ok := tenantValue(mfs, metric, tenant); !ok || v < 1 {
				t.Errorf("%s{tenant=%q} = %v (present %v) after the flush, want at least 1", metric, tenant, v, ok)
			}
		}
		if v, ok := tenantValue(mfs, "strata_shipper_uploads_total", tenant); !ok || v < 1 {
			t.Errorf("strata_shipper_uploads_total{tenant=%q} = %v (present %v) after the flush, want at least 1", tenant, v, ok)
		}
	}
}

func labelValue(m *dto.Metric, name string) (string, bool) {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue(), true
		}
	}
	return "", false
}
