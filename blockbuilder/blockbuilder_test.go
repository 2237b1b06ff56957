package blockbuilder

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/thanos-io/objstore"
	"github.com/thanos-io/objstore/providers/filesystem"

	"github.com/stratametrics/strata/blockbuilder/shipper"
	"github.com/stratametrics/strata/internal/forwarding"
	"github.com/stratametrics/strata/internal/harness"
	"github.com/stratametrics/strata/remotewrite"
)

func testLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newTestBlockBuilder opens a block builder with one-minute blocks on bkt.
// newS3BlockBuilder starts a real S3 server and a block builder that
// uploads to it.
func newS3BlockBuilder(t *testing.T, reg prometheus.Registerer) (*harness.S3, objstore.Bucket, *BlockBuilder) {
	t.Helper()
	s3 := harness.StartS3(t)
	bkt, err := s3.BucketConfig().Open(context.Background(), testLogger(), nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	return s3, bkt, newTestBlockBuilder(t, bkt, reg, nil)
}

func newTestBlockBuilder(t *testing.T, bkt objstore.Bucket, reg prometheus.Registerer, tweak func(*Config)) *BlockBuilder {
	t.Helper()
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.ReplicaName = "bb-test"
	cfg.BlockDuration = time.Minute
	cfg.LocalRetention = time.Hour
	cfg.Bucket.Dir = t.TempDir() // satisfies Validate; the bucket used is bkt
	cfg.ExternalLabels = map[string]string{"cluster": "test"}
	if tweak != nil {
		tweak(&cfg)
	}
	b, err := New(cfg, bkt, testLogger(), reg)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Open(); err != nil {
		t.Fatal(err)
	}
	// Close the TSDBs before their directories are removed.
	t.Cleanup(func() { _ = b.shutdown() })
	return b
}

// minuteSeries makes one request with n series sampled every 15s from
// start over d.
func minuteSeries(n int, start int64, d time.Duration) *prompb.WriteRequest {
	req := &prompb.WriteRequest{}
	for i := 0; i < n; i++ {
		ts := prompb.TimeSeries{Labels: []prompb.Label{
			{Name: "__name__", Value: "bb_test_metric"},
			{Name: "pod", Value: fmt.Sprintf("pod-%03d", i)},
		}}
		for t := start; t < start+d.Milliseconds(); t += 15000 {
			ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: t, Value: float64(t/1000 + int64(i))})
		}
		req.Timeseries = append(req.Timeseries, ts)
	}
	return req
}

func send(t *testing.T, h http.Handler, tenant string, req *prompb.WriteRequest, forwarded bool) *httptest.ResponseRecorder {
	t.Helper()
	raw, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	hr := httptest.NewRequest(http.MethodPost, "/api/v1/receive", bytes.NewReader(snappy.Encode(nil, raw)))
	hr.Header.Set("Content-Type", "application/x-protobuf")
	hr.Header.Set("Content-Encoding", "snappy")
	hr.Header.Set("THANOS-TENANT", tenant)
	if forwarded {
		hr.Header.Set(forwarding.HeaderForwarded, "1")
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, hr)
	return w
}

func expected(reqs ...*prompb.WriteRequest) map[string]map[int64]float64 {
	out := map[string]map[int64]float64{}
	for _, r := range reqs {
		for _, ts := range r.Timeseries {
			key := fmt.Sprintf(`{__name__=%q, pod=%q}`, ts.Labels[0].Value, ts.Labels[1].Value)
			if out[key] == nil {
				out[key] = map[int64]float64{}
			}
			for _, s := range ts.Samples {
				out[key][s.Timestamp] = s.Value
			}
		}
	}
	return out
}

func compareSamples(t *testing.T, got map[string]map[int64]float64, want map[string]map[int64]float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d series in the bucket, want %d", len(got), len(want))
	}
	for k, ws := range want {
		gs := got[k]
		if len(gs) != len(ws) {
			t.Fatalf("series %s: %d samples in the bucket, want %d", k, len(gs), len(ws))
		}
		for ts, v := range ws {
			if gv, ok := gs[ts]; !ok || gv != v {
				t.Fatalf("series %s at %d: got %v (present %v), want %v", k, ts, gv, ok, v)
			}
		}
	}
}

// TestUploadToS3 writes through the real HTTP handler, cuts one-minute
// blocks, uploads them to a real S3 server and reads every sample back
// from the uploaded blocks; meta.json must be what Thanos writes.
func TestUploadToS3(t *testing.T) {
	_, bkt, b := newS3BlockBuilder(t, nil)
	start := alignDown(time.Now().Add(-20*time.Minute).UnixMilli(), time.Minute.Milliseconds())
	req := minuteSeries(20, start, 5*time.Minute)
	if w := send(t, b.Handler(), "team-a", req, false); w.Code != http.StatusNoContent {
		t.Fatalf("write: %d %s", w.Code, w.Body)
	}
	// Five minutes of data: cut finishes the ranges the head has moved
	// 1.5 blocks past, and uploads them; the rest stays in the head.
	b.maintain(context.Background())
	_, infos := harness.BucketSamples(t, bkt, "tenant_id", "receive_replica")
	if len(infos) == 0 || len(infos) >= 5 {
		t.Fatalf("%d blocks uploaded by the regular cut, want some but not all five minutes", len(infos))
	}
	// Shutdown flushes the rest.
	if err := b.shutdown(); err != nil {
		t.Fatal(err)
	}
	got, infos := harness.BucketSamples(t, bkt, "tenant_id", "receive_replica")
	compareSamples(t, got["team-a"], expected(req))
	if len(infos) != 5 {
		t.Fatalf("%d blocks, want one per minute: 5", len(infos))
	}
	for _, info := range infos {
		m := info.Meta
		if m.MinTime%time.Minute.Milliseconds() != 0 || m.MaxTime-m.MinTime > time.Minute.Milliseconds() {
			t.Fatalf("block %s [%d, %d) is not aligned to the one-minute range", m.ULID, m.MinTime, m.MaxTime)
		}
		checkThanosMeta(t, bkt, m.ULID.String())
	}
}

// checkThanosMeta reads a meta.json as plain JSON and checks it field by
// field against the schema Thanos writes (pkg/block/metadata).
func checkThanosMeta(t *testing.T, bkt objstore.Bucket, id string) {
	t.Helper()
	r, err := bkt.Get(context.Background(), id+"/meta.json")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var m map[string]any
	if err := json.NewDecoder(r).Decode(&m); err != nil {
		t.Fatal(err)
	}
	if m["ulid"] != id || m["version"] != float64(1) {
		t.Fatalf("meta.json ulid %v version %v", m["ulid"], m["version"])
	}
	for _, k := range []string{"minTime", "maxTime", "stats", "compaction", "thanos"} {
		if _, ok := m[k]; !ok {
			t.Fatalf("meta.json has no %q: %v", k, m)
		}
	}
	if lvl := m["compaction"].(map[string]any)["level"]; lvl != float64(1) {
		t.Fatalf("compaction level %v, want 1", lvl)
	}
	th := m["thanos"].(map[string]any)
	if th["version"] != float64(1) || th["source"] != "receive" {
		t.Fatalf("thanos section %v", th)
	}
	if res := th["downsample"].(map[string]any)["resolution"]; res != float64(0) {
		t.Fatalf("downsample resolution %v", res)
	}
	want := map[string]any{"tenant_id": "team-a", "receive_replica": "bb-test", "cluster": "test"}
	if got := th["labels"].(map[string]any); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("thanos labels %v, want %v", got, want)
	}
	files := th["files"].([]any)
	seen := map[string]bool{}
	for _, f := range files {
		fm := f.(map[string]any)
		name := fm["rel_path"].(string)
		seen[name] = true
		if name == "meta.json" {
			continue
		}
		attrs, err := bkt.Attributes(context.Background(), id+"/"+name)
		if err != nil {
			t.Fatalf("file %s listed in meta.json: %v", name, err)
		}
		if float64(attrs.Size) != fm["size_bytes"] {
			t.Fatalf("file %s: %d bytes in the bucket, meta.json says %v", name, attrs.Size, fm["size_bytes"])
		}
	}
	if !seen["index"] || !seen["chunks/000001"] {
		t.Fatalf("meta.json files %v lack index or chunks", seen)
	}
}

// TestS3OutageKeepsBlocks stops the S3 server: blocks are cut and stay
// on disk, the backlog shows in the metrics, and everything is uploaded
// once it is back.
func TestS3OutageKeepsBlocks(t *testing.T) {
	reg := prometheus.NewRegistry()
	s3, bkt, b := newS3BlockBuilder(t, reg)
	clock := useTestClock(b)
	start := alignDown(time.Now().Add(-30*time.Minute).UnixMilli(), time.Minute.Milliseconds())

	s3.Stop()
	req := minuteSeries(10, start, 4*time.Minute)
	if w := send(t, b.Handler(), "team-a", req, false); w.Code != http.StatusNoContent {
		t.Fatalf("write during outage: %d %s", w.Code, w.Body)
	}
	b.maintain(context.Background())
	if n := gauge(t, reg, "strata_shipper_pending_blocks"); n < 1 {
		t.Fatalf("pending blocks %v during the outage, want at least 1", n)
	}
	if n := gauge(t, reg, "strata_shipper_upload_failures_total"); n < 1 {
		t.Fatalf("upload failures %v during the outage, want at least 1", n)
	}
	tdb, _ := b.Tenant("team-a")
	if len(tdb.DB.Blocks()) == 0 {
		t.Fatal("no block kept on disk during the outage")
	}

	s3.Start()
	clock.Set(b.shipper(t, "team-a").RetryAt()) // the backoff after the failure
	b.maintain(context.Background())
	if n := gauge(t, reg, "strata_shipper_pending_blocks"); n != 0 {
		t.Fatalf("pending blocks %v after the outage, want 0", n)
	}
	if err := b.shutdown(); err != nil {
		t.Fatal(err)
	}
	got, infos := harness.BucketSamples(t, bkt, "tenant_id", "receive_replica")
	compareSamples(t, got["team-a"], expected(req))
	ids := map[string]bool{}
	for _, i := range infos {
		if ids[i.Meta.ULID.String()] {
			t.Fatalf("block %s uploaded twice", i.Meta.ULID)
		}
		ids[i.Meta.ULID.String()] = true
	}
}

// gauge sums a metric's values over all its series.
func gauge(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var v float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.Metric {
			switch {
			case m.Gauge != nil:
				v += m.Gauge.GetValue()
			case m.Counter != nil:
				v += m.Counter.GetValue()
			}
		}
	}
	return v
}

// TestConflictsPerSeries: out-of-order samples are refused series by
// series; plain senders get 400 text (as from Prometheus), the router
// gets JSON naming them as conflicts.
func TestConflictsPerSeries(t *testing.T) {
	bkt, _ := filesystem.NewBucket(t.TempDir())
	b := newTestBlockBuilder(t, bkt, nil, nil)
	now := time.Now().UnixMilli()
	first := minuteSeries(3, now, 15*time.Second)
	if w := send(t, b.Handler(), "a", first, false); w.Code != http.StatusNoContent {
		t.Fatalf("first: %d %s", w.Code, w.Body)
	}
	// Series 1 goes back in time, the others move on.
	second := minuteSeries(3, now+15000, 15*time.Second)
	second.Timeseries[1].Samples[0].Timestamp = now - 60000
	w := send(t, b.Handler(), "a", second, true)
	if w.Code != http.StatusBadRequest {
		t.Fatalf("got %d %s, want 400", w.Code, w.Body)
	}
	var wr forwarding.WriteResponse
	if err := json.Unmarshal(w.Body.Bytes(), &wr); err != nil {
		t.Fatalf("forwarded conflict answer is not JSON: %v: %s", err, w.Body)
	}
	if len(wr.Rejected) != 1 || wr.Rejected[0].Series != 1 || wr.Rejected[0].Kind != forwarding.KindConflict || wr.Rejected[0].Samples != 1 {
		t.Fatalf("rejections %+v, want series 1 refused as a conflict", wr.Rejected)
	}
	if wr.Written.Samples != 2 || w.Header().Get(remotewrite.HeaderSamplesWritten) != "2" {
		t.Fatalf("written %+v / header %q, want 2", wr.Written, w.Header().Get(remotewrite.HeaderSamplesWritten))
	}
	second.Timeseries[0].Samples[0].Timestamp = now - 60000
	if w := send(t, b.Handler(), "a", second, false); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "out of") {
		t.Fatalf("plain sender: %d %s", w.Code, w.Body)
	}
}

// TestIdleTenantIsFlushedAndClosed: memory follows the active tenants.
func TestIdleTenantIsFlushedAndClosed(t *testing.T) {
	dir := t.TempDir()
	bkt, _ := filesystem.NewBucket(dir)
	b := newTestBlockBuilder(t, bkt, nil, func(c *Config) { c.TenantIdleTimeout = time.Millisecond })
	req := minuteSeries(5, time.Now().Add(-time.Minute).UnixMilli(), 30*time.Second)
	if w := send(t, b.Handler(), "idle", req, false); w.Code != http.StatusNoContent {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	time.Sleep(5 * time.Millisecond)
	b.maintain(context.Background())
	if _, ok := b.Tenant("idle"); ok {
		t.Fatal("idle tenant still open")
	}
	got, _ := harness.BucketSamples(t, bkt, "tenant_id", "receive_replica")
	compareSamples(t, got["idle"], expected(req))
	// A new write reopens it.
	later := minuteSeries(5, time.Now().UnixMilli(), 15*time.Second)
	if w := send(t, b.Handler(), "idle", later, false); w.Code != http.StatusNoContent {
		t.Fatalf("write after close: %d %s", w.Code, w.Body)
	}
	if _, ok := b.Tenant("idle"); !ok {
		t.Fatal("tenant not reopened")
	}
}

// TestBlocksStayUntilUploaded: local retention never deletes a block the
// bucket does not have.
func TestBlocksStayUntilUploaded(t *testing.T) {
	failing := &failingBucket{Bucket: objstore.NewInMemBucket()}
	failing.fail.Store(true)
	b := newTestBlockBuilder(t, failing, nil, func(c *Config) {
		c.LocalRetention = time.Minute
		c.UploadInterval = 50 * time.Millisecond
	})
	req := minuteSeries(5, alignDown(time.Now().Add(-3*time.Hour).UnixMilli(), 60000), 5*time.Minute)
	if w := send(t, b.Handler(), "ret", req, false); w.Code != http.StatusNoContent {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if err := b.Flush(context.Background()); err == nil {
		t.Fatal("flush with a failing bucket reported no error")
	}
	tv, _ := b.Tenant("ret")
	time.Sleep(300 * time.Millisecond) // several block reloads, each applying retention
	entries, _ := os.ReadDir(filepath.Join(b.cfg.DataDir, "ret"))
	blocks := 0
	for _, e := range entries {
		if len(e.Name()) == 26 {
			blocks++
		}
	}
	if blocks != 5 {
		t.Fatalf("%d blocks on disk, want all 5: none is uploaded", blocks)
	}
	failing.fail.Store(false)
	if err := b.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The newest block stays: its end bounds the head after a restart.
	deadline := time.Now().Add(30 * time.Second)
	for len(tv.DB.Blocks()) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d blocks still loaded after upload past retention, want only the newest", len(tv.DB.Blocks()))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got, want := tv.DB.Blocks()[0].Meta().MaxTime, req.Timeseries[0].Samples[len(req.Timeseries[0].Samples)-1].Timestamp+1; got != want {
		t.Fatalf("the block left ends at %d, want the newest's end %d", got, want)
	}
}

// failingBucket fails every upload while fail is set, and counts uploads
// tried.
type failingBucket struct {
	objstore.Bucket
	fail    atomic.Bool
	uploads atomic.Int64
}

func (f *failingBucket) Upload(ctx context.Context, name string, r io.Reader, opts ...objstore.ObjectUploadOption) error {
	f.uploads.Add(1)
	if f.fail.Load() {
		return errors.New("injected upload failure")
	}
	return f.Bucket.Upload(ctx, name, r, opts...)
}

// TestExemplarDropsAreReported: exemplars the TSDB refuses do not fail a
// write, but they are not counted as written, and a forwarded write names
// the series that lost them so the router can count per series. A write
// that stored everything stays a 204 without a body.
func TestExemplarDropsAreReported(t *testing.T) {
	now := time.Now().UnixMilli()
	// Exemplar label sets are limited to 128 characters; the TSDB refuses
	// longer ones whatever the series' history.
	tooLong := strings.Repeat("t", 130)
	withExemplars := func(ts int64, traces ...[]string) *prompb.WriteRequest {
		req := minuteSeries(len(traces), ts, time.Second)
		for i, ids := range traces {
			for k, id := range ids {
				req.Timeseries[i].Exemplars = append(req.Timeseries[i].Exemplars, prompb.Exemplar{
					Labels: []prompb.Label{{Name: "trace_id", Value: id}}, Value: float64(k), Timestamp: ts - int64(len(ids)-k),
				})
			}
		}
		return req
	}
	answer := func(t *testing.T, w *httptest.ResponseRecorder) forwarding.WriteResponse {
		t.Helper()
		var wr forwarding.WriteResponse
		if err := json.Unmarshal(w.Body.Bytes(), &wr); err != nil {
			t.Fatalf("answer %d is not JSON: %v: %q", w.Code, err, w.Body)
		}
		return wr
	}
	written := func(t *testing.T, w *httptest.ResponseRecorder, samples, exemplars int) {
		t.Helper()
		got := forwarding.WrittenFromHeaders(w.Header())
		if got.Samples != samples || got.Exemplars != exemplars {
			t.Fatalf("written headers %+v, want %d samples and %d exemplars", got, samples, exemplars)
		}
	}

	t.Run("refused by the TSDB", func(t *testing.T) {
		bkt, _ := filesystem.NewBucket(t.TempDir())
		h := newTestBlockBuilder(t, bkt, nil, nil).Handler()

		w := send(t, h, "a", withExemplars(now, []string{"a1", "a2"}, []string{"b1"}), true)
		if w.Code != http.StatusNoContent || w.Body.Len() != 0 {
			t.Fatalf("everything stored: got %d %q, want 204 without a body", w.Code, w.Body)
		}
		written(t, w, 2, 3)

		// Series 1's second exemplar is too long; series 0's are fine.
		req := withExemplars(now+1000, []string{"a3"}, []string{"b2", tooLong})
		w = send(t, h, "a", req, true)
		if w.Code != http.StatusOK {
			t.Fatalf("forwarded write that lost an exemplar: got %d %q, want 200", w.Code, w.Body)
		}
		written(t, w, 2, 2)
		wr := answer(t, w)
		if len(wr.DroppedExemplars) != 1 || wr.DroppedExemplars[0] != (forwarding.ExemplarDrop{Series: 1, Exemplars: 1}) {
			t.Fatalf("dropped exemplars %+v, want series 1 lost 1", wr.DroppedExemplars)
		}
		if wr.Written.Exemplars != 2 || len(wr.Rejected) != 0 {
			t.Fatalf("answer %+v, want 2 exemplars written and no rejection", wr)
		}

		// A plain 1.0 sender gets a 204, without written headers: they
		// belong to 2.0 answers.
		req = withExemplars(now+2000, []string{"a4", tooLong}, []string{"b3"})
		w = send(t, h, "a", req, false)
		if w.Code != http.StatusNoContent || w.Body.Len() != 0 {
			t.Fatalf("plain write: got %d %q, want 204 without a body", w.Code, w.Body)
		}
		if h := w.Header().Get(remotewrite.HeaderSamplesWritten); h != "" {
			t.Fatalf("plain 1.0 write answered with %s: %s", remotewrite.HeaderSamplesWritten, h)
		}

		// Series 0's sample goes back in time and is refused; its exemplar
		// is newer than its last one and is stored. Series 1's exemplar is
		// older than its last one and is dropped.
		req = withExemplars(now+3000, []string{"a5"}, []string{"b4"})
		req.Timeseries[0].Samples[0].Timestamp = now - 60000
		req.Timeseries[1].Exemplars[0].Timestamp = now - 60000
		w = send(t, h, "a", req, true)
		if w.Code != http.StatusBadRequest {
			t.Fatalf("out-of-order sample: got %d %q, want 400", w.Code, w.Body)
		}
		written(t, w, 1, 1)
		wr = answer(t, w)
		if len(wr.Rejected) != 1 || wr.Rejected[0].Series != 0 || wr.Rejected[0].Samples != 1 || wr.Rejected[0].Exemplars != 0 {
			t.Fatalf("rejections %+v, want series 0 refused 1 sample and keeping its exemplar", wr.Rejected)
		}
		if len(wr.DroppedExemplars) != 1 || wr.DroppedExemplars[0] != (forwarding.ExemplarDrop{Series: 1, Exemplars: 1}) {
			t.Fatalf("dropped exemplars %+v, want series 1 lost 1", wr.DroppedExemplars)
		}
	})

	t.Run("exemplar storage off", func(t *testing.T) {
		bkt, _ := filesystem.NewBucket(t.TempDir())
		reg := prometheus.NewRegistry()
		h := newTestBlockBuilder(t, bkt, reg, func(c *Config) { c.MaxExemplars = 0 }).Handler()
		w := send(t, h, "a", withExemplars(now, []string{"a1", "a2"}, nil), true)
		if w.Code != http.StatusOK {
			t.Fatalf("forwarded write: got %d %q, want 200", w.Code, w.Body)
		}
		written(t, w, 2, 0)
		w = send(t, h, "a", withExemplars(now+1000, []string{"a3"}, []string{"b1"}), true)
		if w.Code != http.StatusOK {
			t.Fatalf("forwarded write: got %d %q, want 200", w.Code, w.Body)
		}
		written(t, w, 2, 0)
		want := []forwarding.ExemplarDrop{{Series: 0, Exemplars: 1}, {Series: 1, Exemplars: 1}}
		if got := answer(t, w).DroppedExemplars; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("dropped exemplars %+v, want %+v", got, want)
		}
		if n := gauge(t, reg, "strata_blockbuilder_exemplars_dropped_total"); n != 4 {
			t.Fatalf("exemplars dropped metric %v, want 4", n)
		}
	})
}

// testClock is the block builder's clock in tests where time must pass
// without waiting for it: it moves only when told.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

// useTestClock makes a clock starting now the clock of b and of the
// tenants it opens from then on.
func useTestClock(b *BlockBuilder) *testClock {
	c := &testClock{now: time.Now()}
	b.now = c.Now
	return c
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Set moves the clock to t, never back.
func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	if t.After(c.now) {
		c.now = t
	}
	c.mu.Unlock()
}

// shipper is the shipper of an open tenant.
func (b *BlockBuilder) shipper(t *testing.T, tenant string) *shipper.Shipper {
	t.Helper()
	for _, tdb := range b.openTenants() {
		if tdb.id == tenant {
			return tdb.ship
		}
	}
	t.Fatalf("tenant %s is not open", tenant)
	return nil
}

// dbSamples reads every float sample of a TSDB, head and blocks, as a
// query does, keyed like expected.
func dbSamples(t *testing.T, db *tsdb.DB) map[string]map[int64]float64 {
	t.Helper()
	q, err := db.Querier(math.MinInt64, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	return harness.QuerierSamples(t, q)
}

// TestIdleTenantUploadsAfterOutage: a tenant that goes idle while S3 is
// down is not closed with its blocks unshipped. It stays open, its blocks
// queryable and its backlog in the metrics, and its uploads are retried:
// once S3 is back its blocks arrive, with no new write and no restart,
// and only then is it closed.
func TestIdleTenantUploadsAfterOutage(t *testing.T) {
	reg := prometheus.NewRegistry()
	s3, bkt, b := newS3BlockBuilder(t, reg)
	clock := useTestClock(b)
	req := minuteSeries(5, alignDown(time.Now().Add(-10*time.Minute).UnixMilli(), time.Minute.Milliseconds()), 3*time.Minute)
	if w := send(t, b.Handler(), "idle", req, false); w.Code != http.StatusNoContent {
		t.Fatalf("write: %d %s", w.Code, w.Body)
	}

	s3.Stop()
	clock.Add(b.cfg.TenantIdleTimeout + time.Minute)
	for try := 1; try <= 2; try++ {
		b.maintain(context.Background())
		tv, ok := b.Tenant("idle")
		if !ok {
			t.Fatalf("try %d: idle tenant closed while its blocks are not uploaded", try)
		}
		blocks := len(tv.DB.Blocks())
		if blocks != 3 {
			t.Fatalf("try %d: %d blocks on disk, want the head flushed into 3", try, blocks)
		}
		if n := gauge(t, reg, "strata_shipper_pending_blocks"); n != float64(blocks) {
			t.Fatalf("try %d: pending blocks %v, want %d", try, n, blocks)
		}
		if n := gauge(t, reg, "strata_shipper_upload_failures_total"); n != float64(try) {
			t.Fatalf("try %d: upload failures %v, want %d", try, n, try)
		}
		if n := gauge(t, reg, "strata_blockbuilder_open_tenants"); n != 1 {
			t.Fatalf("try %d: open tenants %v, want 1", try, n)
		}
		compareSamples(t, dbSamples(t, tv.DB), expected(req))
		clock.Set(b.shipper(t, "idle").RetryAt())
	}

	s3.Start()
	b.maintain(context.Background())
	if _, ok := b.Tenant("idle"); ok {
		t.Fatal("idle tenant still open after its blocks were uploaded")
	}
	if n := gauge(t, reg, "strata_shipper_pending_blocks"); n != 0 {
		t.Fatalf("pending blocks %v after the outage, want 0", n)
	}
	if n := gauge(t, reg, "strata_blockbuilder_open_tenants"); n != 0 {
		t.Fatalf("open tenants %v after the close, want 0", n)
	}
	got, infos := harness.BucketSamples(t, bkt, "tenant_id", "receive_replica")
	compareSamples(t, got["idle"], expected(req))
	if len(infos) != 3 {
		t.Fatalf("%d blocks in the bucket, want 3", len(infos))
	}
}

// TestFailedUploadsBackOff: while the bucket fails, a tenant's uploads are
// tried on the shipper's backoff (doubling from STRATA_UPLOAD_INTERVAL,
// capped, with jitter), not on every tick; blocks cut meanwhile still show
// in the backlog; and one success brings the next failure's wait back to
// the interval.
func TestFailedUploadsBackOff(t *testing.T) {
	failing := &failingBucket{Bucket: objstore.NewInMemBucket()}
	failing.fail.Store(true)
	reg := prometheus.NewRegistry()
	b := newTestBlockBuilder(t, failing, reg, nil)
	clock := useTestClock(b)
	interval := b.cfg.UploadInterval
	start := alignDown(time.Now().Add(-30*time.Minute).UnixMilli(), time.Minute.Milliseconds())
	if w := send(t, b.Handler(), "a", minuteSeries(5, start, 5*time.Minute), false); w.Code != http.StatusNoContent {
		t.Fatalf("write: %d %s", w.Code, w.Body)
	}

	// tick is one turn of Run's loop; it tells whether an upload was tried.
	tick := func() bool {
		clock.Add(interval)
		before := failing.uploads.Load()
		b.maintain(context.Background())
		return failing.uploads.Load() != before
	}
	// untilTried ticks until an upload is tried, which must be at the first
	// tick at or after the shipper's wait of about wait (±10%) from the
	// last try: within [0.9 wait, 1.1 wait + interval).
	last := clock.Now()
	untilTried := func(what string, wait time.Duration) {
		t.Helper()
		for !tick() {
			if gap := clock.Now().Sub(last); gap >= wait+wait/10+interval {
				t.Fatalf("%s: no upload tried %v after the last, want one after %v ±10%%", what, gap, wait)
			}
		}
		if gap := clock.Now().Sub(last); gap < wait-wait/10 {
			t.Fatalf("%s: upload tried %v after the last, before its wait of %v -10%%", what, gap, wait)
		}
		last = clock.Now()
	}
	b.maintain(context.Background())
	if n := failing.uploads.Load(); n != 1 {
		t.Fatalf("%d uploads tried by the first tick, want 1", n)
	}
	for i, wait := range []time.Duration{interval, 2 * interval, 4 * interval, 8 * interval, 5 * time.Minute, 5 * time.Minute} {
		untilTried(fmt.Sprintf("failure %d", i+1), wait)
	}

	// Blocks cut while waiting are in the backlog at once.
	tv, _ := b.Tenant("a")
	before := len(tv.DB.Blocks())
	if w := send(t, b.Handler(), "a", minuteSeries(5, start+5*time.Minute.Milliseconds(), 3*time.Minute), false); w.Code != http.StatusNoContent {
		t.Fatalf("write: %d %s", w.Code, w.Body)
	}
	if tick() {
		t.Fatal("upload tried one interval after a failure whose wait is 5m")
	}
	if after := len(tv.DB.Blocks()); after <= before {
		t.Fatalf("test bug: the tick cut no block (%d before, %d after)", before, after)
	} else if n := gauge(t, reg, "strata_shipper_pending_blocks"); n != float64(after) {
		t.Fatalf("pending blocks %v while backing off, want the %d on disk", n, after)
	}

	// Success resets the backoff: the next failure waits one interval.
	failing.fail.Store(false)
	untilTried("upload after the bucket healed", 5*time.Minute)
	if n := gauge(t, reg, "strata_shipper_pending_blocks"); n != 0 {
		t.Fatalf("pending blocks %v after the bucket healed, want 0", n)
	}
	failing.fail.Store(true)
	if w := send(t, b.Handler(), "a", minuteSeries(5, start+8*time.Minute.Milliseconds(), 3*time.Minute), false); w.Code != http.StatusNoContent {
		t.Fatalf("write: %d %s", w.Code, w.Body)
	}
	if !tick() {
		t.Fatal("no upload tried for a new block at the first tick after a success")
	}
	last = clock.Now()
	untilTried("first failure after a success", interval)
	// The graceful stop at cleanup retries until the bucket takes the
	// blocks: heal it, or the stop waits out the flush timeout.
	failing.fail.Store(false)
}

// TestOutOfOrderWindow: with STRATA_OUT_OF_ORDER_WINDOW set, a sample
// older than its series' newest is stored and uploaded when it is inside
// the window, and refused as a conflict (400) outside it; without a window
// every out-of-order sample is refused.
func TestOutOfOrderWindow(t *testing.T) {
	for _, tc := range []struct {
		name   string
		window time.Duration
		age    time.Duration // how much older than the series' newest sample
		want   int
	}{
		{"inside the window", 10 * time.Minute, 5 * time.Minute, http.StatusNoContent},
		{"outside the window", 10 * time.Minute, 20 * time.Minute, http.StatusBadRequest},
		{"no window", 0, 5 * time.Minute, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bkt, err := filesystem.NewBucket(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			b := newTestBlockBuilder(t, bkt, nil, func(c *Config) { c.OutOfOrderWindow = tc.window })
			now := time.Now().UnixMilli()
			newest := minuteSeries(1, now, 15*time.Second)
			if w := send(t, b.Handler(), "ooo", newest, false); w.Code != http.StatusNoContent {
				t.Fatalf("in-order write: %d %s", w.Code, w.Body)
			}
			late := minuteSeries(1, now-tc.age.Milliseconds(), 15*time.Second)
			late.Timeseries[0].Samples[0].Value = -1
			w := send(t, b.Handler(), "ooo", late, true)
			if w.Code != tc.want {
				t.Fatalf("sample %v older than the newest, window %v: %d %s, want %d", tc.age, tc.window, w.Code, w.Body, tc.want)
			}
			want := expected(newest)
			if tc.want == http.StatusNoContent {
				want = expected(newest, late)
			} else {
				var wr forwarding.WriteResponse
				if err := json.Unmarshal(w.Body.Bytes(), &wr); err != nil {
					t.Fatalf("forwarded conflict answer is not JSON: %v: %s", err, w.Body)
				}
				if len(wr.Rejected) != 1 || wr.Rejected[0].Kind != forwarding.KindConflict || wr.Rejected[0].Samples != 1 {
					t.Fatalf("rejections %+v, want the sample refused as a conflict", wr.Rejected)
				}
			}
			// What was accepted is queryable at once, and uploaded.
			tv, _ := b.Tenant("ooo")
			compareSamples(t, dbSamples(t, tv.DB), want)
			if err := b.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			got, _ := harness.BucketSamples(t, bkt, "tenant_id", "receive_replica")
			compareSamples(t, got["ooo"], want)
		})
	}
}

// TestShipperLogsNameTenantOnce: the shipper's log lines carry the tenant
// once, as log processors that turn attributes into fields expect.
func TestShipperLogsNameTenantOnce(t *testing.T) {
	bkt, err := filesystem.NewBucket(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b := newTestBlockBuilder(t, bkt, nil, nil)
	var logs harness.LogBuffer
	b.logger = slog.New(slog.NewTextHandler(&logs, nil)) // before the tenant opens
	if w := send(t, b.Handler(), "team-a", minuteSeries(1, time.Now().UnixMilli(), 15*time.Second), false); w.Code != http.StatusNoContent {
		t.Fatalf("write: %d %s", w.Code, w.Body)
	}
	if err := b.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, line := range strings.Split(logs.String(), "\n") {
		if !strings.Contains(line, `msg="uploaded block"`) {
			continue
		}
		found = true
		if n := strings.Count(line, "tenant="); n != 1 {
			t.Errorf("tenant named %d times in %q", n, line)
		}
	}
	if !found {
		t.Fatalf("no upload logged:\n%s", logs.String())
	}
}
