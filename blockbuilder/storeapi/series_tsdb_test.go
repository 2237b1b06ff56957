// Series over plain TSDBs, without a block builder: its benchmark and the
// deadline tests.
package storeapi_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/stratametrics/strata/blockbuilder"
	"github.com/stratametrics/strata/blockbuilder/storeapi"
)

// fixedTenants serves given tenant views.
type fixedTenants []blockbuilder.TenantView

func (f fixedTenants) Tenants() []blockbuilder.TenantView { return f }

// benchTenant is a TSDB head of series x samples (15s apart), as a block
// builder holds between two uploads.
func benchTenant(b testing.TB, id string, series, samples int) blockbuilder.TenantView {
	b.Helper()
	db, err := tsdb.Open(b.TempDir(), quietLogger(), nil, tsdb.DefaultOptions(), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	app := db.Appender(context.Background())
	for s := 0; s < series; s++ {
		ls := labels.FromStrings("__name__", "bench_metric", "instance", fmt.Sprintf("host-%05d", s), "job", "bench")
		for i := 0; i < samples; i++ {
			if _, err := app.Append(0, ls, int64(i)*15000, float64(i*s)); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		b.Fatal(err)
	}
	return blockbuilder.TenantView{ID: id, DB: db,
		ExternalLabels: labels.FromStrings("receive_replica", "bb-0", "tenant_id", id)}
}

// BenchmarkSeries measures a Series call that streams every series of two
// tenants with their chunks: reading, ordering and encoding, the work of
// the block builder per query.
func BenchmarkSeries(b *testing.B) {
	const series, samples = 5000, 240
	tenants := fixedTenants{benchTenant(b, "team-a", series, samples), benchTenant(b, "team-b", series, samples)}
	srv, err := storeapi.New(tenants, storeapi.Options{Limits: blockbuilder.QueryLimits{}})
	if err != nil {
		b.Fatal(err)
	}
	req := &storeapi.SeriesRequest{
		MinTime: 0, MaxTime: samples * 15000,
		Matchers: []storeapi.LabelMatcher{{Type: storeapi.MatchEQ, Name: "__name__", Value: "bench_metric"}},
	}
	var frames, bytes int
	send := func(m storeapi.Message) error {
		frames++
		bytes += len(m.AppendMarshal(nil))
		return nil
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		frames, bytes = 0, 0
		if err := srv.Series(context.Background(), req, send); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if frames != 2*series {
		b.Fatalf("%d frames, want %d", frames, 2*series)
	}
	b.ReportMetric(float64(2*series*b.N)/b.Elapsed().Seconds(), "series/s")
	b.ReportMetric(float64(bytes), "bytes/call")
}

// BenchmarkSeriesResponseMarshal measures the encoding of one frame: a
// series with labels and four 1 KiB chunks.
func BenchmarkSeriesResponseMarshal(b *testing.B) {
	s := &storeapi.Series{Labels: []storeapi.Label{
		{Name: "__name__", Value: "http_requests_total"}, {Name: "instance", Value: "host-00001:9100"},
		{Name: "job", Value: "node"}, {Name: "receive_replica", Value: "bb-0"}, {Name: "tenant_id", Value: "team-a"},
	}}
	for i := int64(0); i < 4; i++ {
		s.Chunks = append(s.Chunks, storeapi.AggrChunk{MinTime: i * 1800000, MaxTime: (i+1)*1800000 - 1, Raw: &storeapi.Chunk{Data: make([]byte, 1024)}})
	}
	resp := &storeapi.SeriesResponse{Series: s}
	b.ReportAllocs()
	var buf []byte
	for range b.N {
		buf = resp.AppendMarshal(buf[:0])
	}
	b.SetBytes(int64(len(buf)))
}

// TestSeriesHonoursDeadlines: a Series call stops with the client's
// deadline or cancellation, or the configured timeout, and says which.
func TestSeriesHonoursDeadlines(t *testing.T) {
	tenants := fixedTenants{benchTenant(t, "team-a", 50, 10)}
	req := &storeapi.SeriesRequest{MaxTime: 1 << 40, Matchers: []storeapi.LabelMatcher{{Name: "job", Value: "bench"}}}
	discard := func(storeapi.Message) error { return nil }

	srv, err := storeapi.New(tenants, storeapi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Series(context.Background(), req, discard); err != nil {
		t.Fatalf("without a deadline: %v", err)
	}
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	if err := srv.Series(expired, req, discard); status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("past the client's deadline: %v, want DeadlineExceeded", err)
	}
	canceled, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if err := srv.Series(canceled, req, discard); status.Code(err) != codes.Canceled {
		t.Errorf("canceled by the client: %v, want Canceled", err)
	}
	short, err := storeapi.New(tenants, storeapi.Options{Limits: blockbuilder.QueryLimits{Timeout: time.Nanosecond}})
	if err != nil {
		t.Fatal(err)
	}
	if err := short.Series(context.Background(), req, discard); status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("past STRATA_QUERY_TIMEOUT: %v, want DeadlineExceeded", err)
	}
}
