package harness

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/go-kit/log"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/thanos-io/objstore"

	"github.com/stratametrics/strata/bucket/metadata"
)

// base is the start of the test blocks' time, aligned to two hours.
const base = int64(1_700_006_400_000)

// TestThanosCompactHaltsOnOverlap proves ThanosCompact fails when the
// Compactor refuses a bucket: two blocks of one stream that overlap in
// time halt it unless vertical compaction is on.
func TestThanosCompactHaltsOnOverlap(t *testing.T) {
	s3 := StartS3(t)
	bkt := openTestBucket(t, s3)
	a := uploadTestBlock(t, bkt, "r0", base, base+60_000)
	b := uploadTestBlock(t, bkt, "r0", base+30_000, base+90_000)
	run, err := s3.ThanosCompact(t)
	if err == nil {
		t.Fatalf("the Compactor passed over overlapping blocks %s and %s:\n%s", a, b, run.Log)
	}
	if !strings.Contains(err.Error(), "overlap") || !strings.Contains(err.Error(), a.String()) {
		t.Errorf("the error does not name the overlap of %s and %s: %v", a, b, err)
	}
	t.Logf("refused as it should: %v", err)
}

// TestThanosCompactDeduplicates: two replicas of the same samples pass the
// Compactor with default flags, each sample counted twice; deduplication
// leaves each once.
func TestThanosCompactDeduplicates(t *testing.T) {
	s3 := StartS3(t)
	bkt := openTestBucket(t, s3)
	uploadTestBlock(t, bkt, "r0", base, base+60_000)
	uploadTestBlock(t, bkt, "r1", base, base+60_000)
	const samples = 3 * 60 // series x timestamps of a block

	run, err := s3.ThanosCompact(t)
	if err != nil {
		t.Fatal(err)
	}
	if run.Synced != 2 {
		t.Errorf("the Compactor synced %d blocks, want 2:\n%s", run.Synced, run.Log)
	}
	occ, live := CountLiveSamples(t, bkt, "tenant_id", "receive_replica")
	if got := occ.Total(); got != 2*samples || len(live.Blocks) != 2 {
		t.Fatalf("before deduplication: %d samples in %d blocks, want %d in 2", got, len(live.Blocks), 2*samples)
	}

	if _, err := s3.ThanosCompact(t, "--deduplication.replica-label=receive_replica", "--delete-delay=0s"); err != nil {
		t.Fatal(err)
	}
	occ, live = CountLiveSamples(t, bkt, "tenant_id", "receive_replica")
	if len(live.Blocks) != 1 || live.Blocks[0].Replica != "" || live.Blocks[0].Tenant != "t" {
		t.Fatalf("after deduplication: blocks %+v, want one of tenant t without a replica label", live.Blocks)
	}
	if n, examples := occ.NotIn(1); n > 0 {
		t.Errorf("after deduplication: %d samples not in exactly one block, e.g. %v", n, examples)
	}
	if got := occ.Total(); got != samples {
		t.Errorf("after deduplication: %d samples, want %d", got, samples)
	}
}

func openTestBucket(t *testing.T, s3 *S3) objstore.Bucket {
	t.Helper()
	bkt, err := s3.BucketConfig().Open(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil)), nil, "harness")
	if err != nil {
		t.Fatal(err)
	}
	return bkt
}

// uploadTestBlock writes a block of three series with a sample a second
// in [mint, maxt) and uploads it as a block builder of replica would:
// files first, meta.json with the external labels last.
func uploadTestBlock(t *testing.T, bkt objstore.Bucket, replica string, mint, maxt int64) ulid.ULID {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	w, err := tsdb.NewBlockWriter(slog.New(slog.NewTextHandler(io.Discard, nil)), dir, 2*3600*1000)
	if err != nil {
		t.Fatal(err)
	}
	app := w.Appender(ctx)
	for s := 0; s < 3; s++ {
		lset := labels.FromStrings("__name__", "harness_test", "s", strconv.Itoa(s))
		for ts := mint; ts < maxt; ts += 1000 {
			if _, err := app.Append(0, lset, ts, float64(ts/1000+int64(s))); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	id, err := w.Flush(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	bdir := filepath.Join(dir, id.String())
	meta, err := metadata.ReadMeta(bdir)
	if err != nil {
		t.Fatal(err)
	}
	meta.Thanos = metadata.Thanos{
		Version: 1,
		Labels:  map[string]string{"tenant_id": "t", "receive_replica": replica},
		Source:  metadata.ReceiveSource,
	}
	if err := meta.Write(bdir); err != nil {
		t.Fatal(err)
	}
	nop := log.NewNopLogger()
	if err := objstore.UploadDir(ctx, nop, bkt, filepath.Join(bdir, "chunks"), BlockPath(id, "chunks")); err != nil {
		t.Fatal(err)
	}
	if err := objstore.UploadFile(ctx, nop, bkt, filepath.Join(bdir, "index"), BlockPath(id, "index")); err != nil {
		t.Fatal(err)
	}
	if err := objstore.UploadFile(ctx, nop, bkt, filepath.Join(bdir, metadata.MetaFilename), BlockPath(id, metadata.MetaFilename)); err != nil {
		t.Fatal(err)
	}
	return id
}
