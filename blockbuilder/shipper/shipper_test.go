package shipper

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/thanos-io/objstore"

	"github.com/stratametrics/strata/bucket"
	"github.com/stratametrics/strata/bucket/metadata"
	"github.com/stratametrics/strata/internal/harness"
)

const (
	tenant     = "team-a"
	blockRange = int64(time.Minute / time.Millisecond)
	// t0 is minute-aligned, so blocks are [t0+i*blockRange, t0+(i+1)*blockRange).
	t0        = int64(1_732_500_000_000)
	step      = int64(5_000)
	numSeries = 3
)

var extLabels = map[string]string{"tenant_id": tenant, "receive_replica": "bb-0"}

type sample struct {
	t int64
	v float64
}

// testTSDB is a real Prometheus TSDB cut into one-minute blocks.
type testTSDB struct {
	t   *testing.T
	dir string
	db  *tsdb.DB
	// next is the first minute without data yet.
	next int64
	// want holds every sample appended, by series.
	want map[string][]sample
}

func newTSDB(t *testing.T) *testTSDB {
	t.Helper()
	dir := t.TempDir()
	opts := tsdb.DefaultOptions()
	opts.MinBlockDuration = blockRange
	opts.MaxBlockDuration = blockRange
	db, err := tsdb.Open(dir, slog.New(slog.DiscardHandler), nil, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Blocks are cut by addBlocks only, so tests know which exist.
	db.DisableCompactions()
	t.Cleanup(func() { db.Close() })
	return &testTSDB{t: t, dir: dir, db: db, want: map[string][]sample{}}
}

// addBlocks appends n minutes of samples and cuts each minute into a block.
func (d *testTSDB) addBlocks(n int) {
	d.t.Helper()
	ctx := context.Background()
	start, end := t0+d.next*blockRange, t0+(d.next+int64(n))*blockRange
	app := d.db.Appender(ctx)
	for s := range numSeries {
		lset := labels.FromStrings("__name__", "test_metric", "series", fmt.Sprint(s))
		for ts := start; ts < end; ts += step {
			v := float64(s*1000) + float64(ts-t0)/1000
			if _, err := app.Append(0, lset, ts, v); err != nil {
				d.t.Fatal(err)
			}
			d.want[lset.String()] = append(d.want[lset.String()], sample{ts, v})
		}
	}
	if err := app.Commit(); err != nil {
		d.t.Fatal(err)
	}
	for i := range int64(n) {
		mint := start + i*blockRange
		if err := d.db.CompactHead(tsdb.NewRangeHead(d.db.Head(), mint, mint+blockRange-1)); err != nil {
			d.t.Fatal(err)
		}
	}
	d.next += int64(n)
}

// blocks returns the metas of the blocks on disk, oldest first.
func (d *testTSDB) blocks() []tsdb.BlockMeta {
	var metas []tsdb.BlockMeta
	for _, b := range d.db.Blocks() {
		metas = append(metas, b.Meta())
	}
	return metas
}

// wantIn returns the samples appended in [mint, maxt).
func (d *testTSDB) wantIn(mint, maxt int64) map[string][]sample {
	out := map[string][]sample{}
	for s, samples := range d.want {
		for _, smp := range samples {
			if smp.t >= mint && smp.t < maxt {
				out[s] = append(out[s], smp)
			}
		}
	}
	return out
}

// recordingBucket records every Upload and Exists, and can fail uploads.
type recordingBucket struct {
	objstore.Bucket
	mu      sync.Mutex
	uploads []string
	exists  int
	// fail, when set, decides whether an upload of name fails.
	fail func(name string) error
}

func (b *recordingBucket) Upload(ctx context.Context, name string, r io.Reader, opts ...objstore.ObjectUploadOption) error {
	b.mu.Lock()
	fail := b.fail
	b.mu.Unlock()
	if fail != nil {
		if err := fail(name); err != nil {
			return err
		}
	}
	if err := b.Bucket.Upload(ctx, name, r, opts...); err != nil {
		return err
	}
	b.mu.Lock()
	b.uploads = append(b.uploads, name)
	b.mu.Unlock()
	return nil
}

func (b *recordingBucket) Exists(ctx context.Context, name string) (bool, error) {
	b.mu.Lock()
	b.exists++
	b.mu.Unlock()
	return b.Bucket.Exists(ctx, name)
}

func (b *recordingBucket) setFail(f func(string) error) {
	b.mu.Lock()
	b.fail = f
	b.mu.Unlock()
}

func (b *recordingBucket) reset() (uploads []string, exists int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	uploads, exists = b.uploads, b.exists
	b.uploads, b.exists = nil, 0
	return uploads, exists
}

func fsBucket(t *testing.T) *recordingBucket {
	t.Helper()
	bkt, err := bucket.Config{Dir: t.TempDir()}.Open(context.Background(), nil, nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	return &recordingBucket{Bucket: bkt}
}

func s3Bucket(t *testing.T) (*recordingBucket, *harness.S3) {
	t.Helper()
	s3 := harness.StartS3(t)
	bkt, err := s3.BucketConfig().Open(context.Background(), nil, nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	return &recordingBucket{Bucket: bkt}, s3
}

func newShipper(t *testing.T, dir string, bkt objstore.Bucket, m *Metrics) *Shipper {
	t.Helper()
	s, err := New(Options{
		Dir:     dir,
		Bucket:  bkt,
		Labels:  extLabels,
		Logger:  slog.New(slog.NewTextHandler(t.Output(), nil)),
		Metrics: m,
		Tenant:  tenant,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func syncOK(t *testing.T, s *Shipper, want int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := s.Sync(ctx)
	if err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if n != want {
		t.Fatalf("Sync uploaded %d blocks, want %d", n, want)
	}
}

// checkShipped downloads every block of db from the bucket, opens it with
// Prometheus and compares every sample, and checks its meta.json.
func checkShipped(t *testing.T, bkt objstore.Bucket, db *testTSDB) {
	t.Helper()
	ctx := context.Background()
	for _, local := range db.blocks() {
		id := local.ULID
		dst := filepath.Join(t.TempDir(), id.String())
		download(t, bkt, id, dst)

		// meta.json: Prometheus' part unchanged, the thanos section filled.
		m, err := metadata.ReadMetaFromBucket(ctx, bkt, id)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(m.BlockMeta, local) {
			t.Errorf("block %s: meta %+v, want %+v", id, m.BlockMeta, local)
		}
		th := m.Thanos
		if th.Version != 1 || th.Source != "receive" || th.Downsample.Resolution != 0 || !reflect.DeepEqual(th.Labels, extLabels) {
			t.Errorf("block %s: thanos section %+v", id, th)
		}
		if !reflect.DeepEqual(th.SegmentFiles, []string{"000001"}) {
			t.Errorf("block %s: segment_files %v", id, th.SegmentFiles)
		}
		var rels []string
		for _, f := range th.Files {
			rels = append(rels, f.RelPath)
			if f.RelPath == metadata.MetaFilename {
				if f.SizeBytes != 0 {
					t.Errorf("block %s: meta.json has a size", id)
				}
				continue
			}
			fi, err := os.Stat(filepath.Join(db.dir, id.String(), f.RelPath))
			if err != nil {
				t.Fatal(err)
			}
			attrs, err := bkt.Attributes(ctx, path.Join(id.String(), f.RelPath))
			if err != nil {
				t.Fatal(err)
			}
			if f.SizeBytes != fi.Size() || attrs.Size != fi.Size() {
				t.Errorf("block %s: %s size_bytes %d, local %d, in bucket %d", id, f.RelPath, f.SizeBytes, fi.Size(), attrs.Size)
			}
		}
		if want := []string{"chunks/000001", "index", "meta.json", "tombstones"}; !slices.Equal(rels, want) {
			t.Errorf("block %s: files %v, want %v", id, rels, want)
		}

		// The data, sample by sample.
		b, err := tsdb.OpenBlock(slog.New(slog.DiscardHandler), dst, nil, nil)
		if err != nil {
			t.Fatalf("open downloaded block %s: %v", id, err)
		}
		got := readAll(t, b)
		b.Close()
		want := db.wantIn(local.MinTime, local.MaxTime)
		if len(want) != numSeries {
			t.Fatalf("test bug: block %s should hold %d series, want has %d", id, numSeries, len(want))
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("block %s: samples differ\ngot  %v\nwant %v", id, got, want)
		}
	}
}

func download(t *testing.T, bkt objstore.Bucket, id ulid.ULID, dst string) {
	t.Helper()
	ctx := context.Background()
	err := bkt.Iter(ctx, id.String()+"/", func(name string) error {
		rc, err := bkt.Get(ctx, name)
		if err != nil {
			return err
		}
		defer rc.Close()
		file := filepath.Join(dst, strings.TrimPrefix(name, id.String()+"/"))
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			return err
		}
		f, err := os.Create(file)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(f, rc)
		return err
	}, objstore.WithRecursiveIter())
	if err != nil {
		t.Fatalf("download block %s: %v", id, err)
	}
}

func readAll(t *testing.T, b *tsdb.Block) map[string][]sample {
	t.Helper()
	q, err := tsdb.NewBlockQuerier(b, math.MinInt64, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	out := map[string][]sample{}
	ss := q.Select(context.Background(), true, nil, labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+"))
	for ss.Next() {
		s := ss.At()
		it := s.Iterator(nil)
		for it.Next() == chunkenc.ValFloat {
			ts, v := it.At()
			out[s.Labels().String()] = append(out[s.Labels().String()], sample{ts, v})
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := ss.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkOrder checks that blocks went up oldest first, each whole before
// the next, chunks then index then tombstones, and meta.json last.
func checkOrder(t *testing.T, uploads []string, db *testTSDB) {
	t.Helper()
	var want []string
	for _, m := range db.blocks() {
		id := m.ULID.String()
		want = append(want, id+"/chunks/000001", id+"/index", id+"/tombstones", id+"/meta.json")
	}
	if !slices.Equal(uploads, want) {
		t.Fatalf("upload order\ngot  %q\nwant %q", uploads, want)
	}
}

func TestSyncFilesystem(t *testing.T) {
	db := newTSDB(t)
	db.addBlocks(3)
	bkt := fsBucket(t)
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	s := newShipper(t, db.dir, bkt, m)
	if got := len(s.Pending()); got != 3 {
		t.Fatalf("Pending() = %d blocks, want 3", got)
	}

	syncOK(t, s, 3)
	uploads, _ := bkt.reset()
	checkOrder(t, uploads, db)
	checkShipped(t, bkt, db)

	for _, b := range db.blocks() {
		if !s.IsUploaded(b.ULID) {
			t.Errorf("IsUploaded(%s) = false after Sync", b.ULID)
		}
	}
	if p := s.Pending(); len(p) != 0 {
		t.Errorf("Pending() = %v after Sync", p)
	}
	if got := testutil.ToFloat64(m.uploads.WithLabelValues(tenant, "success")); got != 3 {
		t.Errorf("uploads_total{result=success} = %v, want 3", got)
	}
	if got := testutil.ToFloat64(m.bytes.WithLabelValues(tenant)); got < 3*1000 {
		t.Errorf("uploaded_bytes_total = %v, implausibly small", got)
	}
	if got := testutil.ToFloat64(m.lastSuccess.WithLabelValues(tenant)); time.Since(time.Unix(int64(got), 0)) > time.Minute {
		t.Errorf("last_successful_upload_timestamp_seconds = %v", got)
	}

	// Nothing new: nothing uploaded, not even checked in the bucket.
	syncOK(t, s, 0)
	if uploads, exists := bkt.reset(); len(uploads) != 0 || exists != 0 {
		t.Fatalf("idle Sync made %d uploads, %d existence checks", len(uploads), exists)
	}
}

func TestSyncS3(t *testing.T) {
	db := newTSDB(t)
	db.addBlocks(2)
	bkt, _ := s3Bucket(t)
	s := newShipper(t, db.dir, bkt, nil)
	syncOK(t, s, 2)
	uploads, _ := bkt.reset()
	checkOrder(t, uploads, db)
	checkShipped(t, bkt, db)
}

func TestLedgerSurvivesRestart(t *testing.T) {
	db := newTSDB(t)
	db.addBlocks(2)
	bkt := fsBucket(t)
	syncOK(t, newShipper(t, db.dir, bkt, nil), 2)
	bkt.reset()

	// A new shipper on the same directory, as after a restart.
	s := newShipper(t, db.dir, bkt, nil)
	for _, b := range db.blocks() {
		if !s.IsUploaded(b.ULID) {
			t.Fatalf("IsUploaded(%s) = false before the first Sync of a restarted shipper", b.ULID)
		}
	}
	syncOK(t, s, 0)
	if uploads, exists := bkt.reset(); len(uploads) != 0 || exists != 0 {
		t.Fatalf("restarted shipper made %d uploads, %d existence checks", len(uploads), exists)
	}

	// A new block is uploaded, and only it.
	db.addBlocks(1)
	syncOK(t, s, 1)
	uploads, _ := bkt.reset()
	newest := db.blocks()[2].ULID.String()
	for _, u := range uploads {
		if !strings.HasPrefix(u, newest+"/") {
			t.Fatalf("uploaded %s, want only block %s", u, newest)
		}
	}
	checkShipped(t, bkt, db)
}

func TestCrashMidUpload(t *testing.T) {
	db := newTSDB(t)
	db.addBlocks(2)
	bkt := fsBucket(t)
	first, second := db.blocks()[0].ULID, db.blocks()[1].ULID

	// The first block's index fails: its chunks are in the bucket, its
	// meta.json is not.
	bkt.setFail(func(name string) error {
		if name == first.String()+"/index" {
			return errors.New("connection reset")
		}
		return nil
	})
	s := newShipper(t, db.dir, bkt, nil)
	n, err := s.Sync(context.Background())
	if err == nil || n != 0 {
		t.Fatalf("Sync = %d, %v; want 0 and an error", n, err)
	}
	if !strings.Contains(err.Error(), "upload block "+first.String()) || !strings.Contains(err.Error(), "index") {
		t.Fatalf("error %q does not name the block and file", err)
	}
	ctx := context.Background()
	if ok, _ := bkt.Exists(ctx, first.String()+"/chunks/000001"); !ok {
		t.Fatal("test bug: chunks should have been uploaded before index")
	}
	if ok, _ := bkt.Exists(ctx, first.String()+"/meta.json"); ok {
		t.Fatal("meta.json uploaded for a block whose index failed")
	}
	if _, err := metadata.ReadMetaFromBucket(ctx, bkt, first); !errors.Is(err, metadata.ErrNotFound) {
		t.Fatalf("partial block readable: %v", err)
	}
	if s.IsUploaded(first) || s.IsUploaded(second) {
		t.Fatal("IsUploaded true after a failed upload")
	}
	// Oldest first: the second block waits for the first.
	if p := s.Pending(); !slices.Equal(p, []ulid.ULID{first, second}) {
		t.Fatalf("Pending() = %v, want [%s %s]", p, first, second)
	}
	if s.ConsecutiveFailures() != 1 {
		t.Fatalf("ConsecutiveFailures() = %d", s.ConsecutiveFailures())
	}
	bkt.reset()

	// Restart with the bucket healthy: the block goes up again, whole.
	bkt.setFail(nil)
	s = newShipper(t, db.dir, bkt, nil)
	syncOK(t, s, 2)
	uploads, _ := bkt.reset()
	checkOrder(t, uploads, db)
	checkShipped(t, bkt, db)
	if s.ConsecutiveFailures() != 0 {
		t.Fatalf("ConsecutiveFailures() = %d after success", s.ConsecutiveFailures())
	}
}

// meta.json reached the bucket but the ledger was not written (crash in
// between): the next run records the block without uploading it again.
func TestLedgerLostAfterUpload(t *testing.T) {
	db := newTSDB(t)
	db.addBlocks(2)
	bkt := fsBucket(t)
	syncOK(t, newShipper(t, db.dir, bkt, nil), 2)
	bkt.reset()
	if err := os.Remove(filepath.Join(db.dir, LedgerFilename)); err != nil {
		t.Fatal(err)
	}

	s := newShipper(t, db.dir, bkt, nil)
	syncOK(t, s, 0)
	uploads, exists := bkt.reset()
	if len(uploads) != 0 || exists != 2 {
		t.Fatalf("made %d uploads and %d existence checks, want 0 and 2", len(uploads), exists)
	}
	for _, b := range db.blocks() {
		if !s.IsUploaded(b.ULID) {
			t.Fatalf("IsUploaded(%s) = false", b.ULID)
		}
	}
	// The ledger is back.
	uploaded, err := readLedger(db.dir)
	if err != nil || len(uploaded) != 2 {
		t.Fatalf("ledger after rebuild: %v, %v", uploaded, err)
	}

	// A corrupt ledger is rebuilt the same way.
	os.WriteFile(filepath.Join(db.dir, LedgerFilename), []byte("{not json"), 0o644)
	s = newShipper(t, db.dir, bkt, nil)
	syncOK(t, s, 0)
	if uploads, _ := bkt.reset(); len(uploads) != 0 {
		t.Fatalf("corrupt ledger caused %d uploads", len(uploads))
	}
}

// Only finished blocks are shipped: not the WAL, the head chunks,
// Prometheus' temporary directories, a block without meta.json, nor the
// blocks Thanos' shipper skips.
func TestScanSkips(t *testing.T) {
	db := newTSDB(t)
	db.addBlocks(1)
	real := db.blocks()[0]
	ids := []ulid.ULID{ulid.Make(), ulid.Make(), ulid.Make()}
	mkBlock := func(id ulid.ULID, m *metadata.Meta) {
		dir := filepath.Join(db.dir, id.String())
		os.MkdirAll(filepath.Join(dir, "chunks"), 0o755)
		if m != nil {
			if err := m.Write(dir); err != nil {
				t.Fatal(err)
			}
		}
	}
	empty := &metadata.Meta{BlockMeta: tsdb.BlockMeta{ULID: ids[0], Version: 1, Compaction: tsdb.BlockMetaCompaction{Level: 1}}}
	compacted := &metadata.Meta{BlockMeta: tsdb.BlockMeta{ULID: ids[1], Version: 1, Stats: tsdb.BlockStats{NumSamples: 10}, Compaction: tsdb.BlockMetaCompaction{Level: 2}}}
	mkBlock(ids[0], empty)
	mkBlock(ids[1], compacted)
	mkBlock(ids[2], nil) // no meta.json
	for _, name := range []string{ids[0].String() + ".tmp-for-creation", ids[1].String() + ".tmp-for-deletion", "foo.tmp"} {
		os.MkdirAll(filepath.Join(db.dir, name), 0o755)
	}

	bkt := fsBucket(t)
	s := newShipper(t, db.dir, bkt, nil)
	if p := s.Pending(); !slices.Equal(p, []ulid.ULID{real.ULID}) {
		t.Fatalf("Pending() = %v, want only %s", p, real.ULID)
	}
	syncOK(t, s, 1)
	uploads, _ := bkt.reset()
	for _, u := range uploads {
		if !strings.HasPrefix(u, real.ULID.String()+"/") {
			t.Fatalf("uploaded %s", u)
		}
	}
	for _, id := range ids {
		if s.IsUploaded(id) {
			t.Errorf("IsUploaded(%s) = true for a skipped block", id)
		}
	}
}

func TestS3Outage(t *testing.T) {
	db := newTSDB(t)
	db.addBlocks(2)
	bkt, s3 := s3Bucket(t)
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	s := newShipper(t, db.dir, bkt, m)

	s3.Stop()
	// The S3 client retries a refused connection; the deadline ends that.
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	n, err := s.Sync(ctx)
	cancel()
	if err == nil || n != 0 {
		t.Fatalf("Sync during outage = %d, %v; want 0 and an error", n, err)
	}
	first := db.blocks()[0].ULID
	if !strings.Contains(err.Error(), first.String()) {
		t.Errorf("error %q does not name block %s", err, first)
	}
	// The backlog shows.
	db.addBlocks(1) // and grows during the outage
	s.Pending()
	if got := testutil.ToFloat64(m.pending.WithLabelValues(tenant)); got != 3 {
		t.Errorf("pending_blocks = %v, want 3", got)
	}
	if age := oldestAge(t, reg); age <= 0 {
		t.Errorf("oldest_pending_block_age_seconds = %v, want > 0", age)
	}
	if got := testutil.ToFloat64(m.failures.WithLabelValues(tenant)); got != 1 {
		t.Errorf("upload_failures_total = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.uploads.WithLabelValues(tenant, "failure")); got != 1 {
		t.Errorf("uploads_total{result=failure} = %v, want 1", got)
	}

	s3.Start()
	syncOK(t, s, 3)
	checkShipped(t, bkt, db)
	// Each block exactly once after recovery.
	uploads, _ := bkt.reset()
	metas := map[string]int{}
	for _, u := range uploads {
		if strings.HasSuffix(u, "/meta.json") {
			metas[u]++
		}
	}
	if len(metas) != 3 {
		t.Errorf("meta.json uploads %v, want 3 blocks", metas)
	}
	for k, c := range metas {
		if c != 1 {
			t.Errorf("%s uploaded %d times", k, c)
		}
	}
	if got := testutil.ToFloat64(m.pending.WithLabelValues(tenant)); got != 0 {
		t.Errorf("pending_blocks = %v after recovery", got)
	}
	if age := oldestAge(t, reg); age != 0 {
		t.Errorf("oldest_pending_block_age_seconds = %v after recovery", age)
	}
	if got := testutil.ToFloat64(m.uploads.WithLabelValues(tenant, "success")); got != 3 {
		t.Errorf("uploads_total{result=success} = %v, want 3", got)
	}
	syncOK(t, s, 0)
}

func oldestAge(t *testing.T, g prometheus.Gatherer) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "strata_shipper_oldest_pending_block_age_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "tenant" && l.GetValue() == tenant {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatal("no strata_shipper_oldest_pending_block_age_seconds for the tenant")
	return 0
}

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// RetryAt backs off exponentially from the end of each failed Sync, is
// capped, and is cleared by a Sync that succeeds.
func TestRetryAtBacksOff(t *testing.T) {
	db := newTSDB(t)
	db.addBlocks(1)
	bkt := fsBucket(t)
	bkt.setFail(func(string) error { return errors.New("bucket down") })
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	const interval = 30 * time.Second
	s, err := New(Options{Dir: db.dir, Bucket: bkt, Labels: extLabels, Tenant: tenant, RetryInterval: interval, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if !s.RetryAt().IsZero() {
		t.Fatalf("RetryAt() = %v before any Sync, want the zero time", s.RetryAt())
	}
	// The wait after each failure in a row: doubling, then capped.
	for i, want := range []time.Duration{interval, 2 * interval, 4 * interval, 8 * interval, MaxBackoff, MaxBackoff} {
		clock.Add(time.Hour) // any time later: the wait counts from the failure
		if _, err := s.Sync(context.Background()); err == nil {
			t.Fatal("Sync to a failing bucket succeeded")
		}
		got := s.RetryAt().Sub(clock.Now())
		if got < want-want/10 || got > want+want/10 {
			t.Fatalf("after failure %d: RetryAt() is %v after it, want %v ±10%%", i+1, got, want)
		}
	}
	bkt.setFail(nil)
	syncOK(t, s, 1)
	if !s.RetryAt().IsZero() {
		t.Fatalf("RetryAt() = %v after a Sync that succeeded, want the zero time", s.RetryAt())
	}
	// The next failure starts from the first wait again.
	db.addBlocks(1)
	bkt.setFail(func(string) error { return errors.New("bucket down") })
	if _, err := s.Sync(context.Background()); err == nil {
		t.Fatal("Sync to a failing bucket succeeded")
	}
	if got := s.RetryAt().Sub(clock.Now()); got < interval-interval/10 || got > interval+interval/10 {
		t.Fatalf("first failure after a success: RetryAt() is %v after it, want %v ±10%%", got, interval)
	}
}

// A RetryInterval longer than MaxBackoff is the wait after every failure:
// the cap never shortens the interval the caller asked for.
func TestRetryAtLongInterval(t *testing.T) {
	db := newTSDB(t)
	db.addBlocks(1)
	bkt := fsBucket(t)
	bkt.setFail(func(string) error { return errors.New("bucket down") })
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	const interval = 2 * MaxBackoff
	s, err := New(Options{Dir: db.dir, Bucket: bkt, Labels: extLabels, Tenant: tenant, RetryInterval: interval, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if _, err := s.Sync(context.Background()); err == nil {
			t.Fatal("Sync to a failing bucket succeeded")
		}
		if got := s.RetryAt().Sub(clock.Now()); got < interval-interval/10 || got > interval+interval/10 {
			t.Fatalf("after failure %d: RetryAt() is %v after it, want %v ±10%%", i+1, got, interval)
		}
	}
}

func TestNewValidates(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o644)
	bkt := objstore.NewInMemBucket()
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"no dir", Options{Bucket: bkt, Labels: extLabels}, "Dir is required"},
		{"missing dir", Options{Dir: filepath.Join(dir, "nope"), Bucket: bkt, Labels: extLabels}, "no such file"},
		{"dir is a file", Options{Dir: file, Bucket: bkt, Labels: extLabels}, "not a directory"},
		{"no bucket", Options{Dir: dir, Labels: extLabels}, "Bucket is required"},
		{"no labels", Options{Dir: dir, Bucket: bkt}, "Labels are required"},
		{"negative retry interval", Options{Dir: dir, Bucket: bkt, Labels: extLabels, RetryInterval: -time.Second}, "RetryInterval must not be negative"},
		{"negative slow upload warning", Options{Dir: dir, Bucket: bkt, Labels: extLabels, SlowUploadWarning: -time.Second}, "SlowUploadWarning must not be negative"},
	} {
		if _, err := New(tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: New = %v, want error containing %q", tc.name, err, tc.want)
		}
	}
}

// One Metrics serves every tenant; Close drops a tenant's series.
func TestMetricsPerTenant(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	bkt := objstore.NewInMemBucket()
	a, b := newTSDB(t), newTSDB(t)
	a.addBlocks(1)
	b.addBlocks(2)
	sa, err := New(Options{Dir: a.dir, Bucket: bkt, Labels: map[string]string{"tenant_id": "a"}, Metrics: m, Tenant: "a"})
	if err != nil {
		t.Fatal(err)
	}
	sb, err := New(Options{Dir: b.dir, Bucket: bkt, Labels: map[string]string{"tenant_id": "b"}, Metrics: m, Tenant: "b"})
	if err != nil {
		t.Fatal(err)
	}
	if ga, gb := testutil.ToFloat64(m.pending.WithLabelValues("a")), testutil.ToFloat64(m.pending.WithLabelValues("b")); ga != 1 || gb != 2 {
		t.Fatalf("pending a=%v b=%v, want 1 and 2 (published by New)", ga, gb)
	}
	syncOK(t, sa, 1)
	sb.Close()
	if n := testutil.CollectAndCount(m.pending); n != 1 {
		t.Fatalf("pending series after Close of b: %d, want 1", n)
	}
}
