package blockbuilder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/prompb"
	"github.com/thanos-io/objstore"

	"github.com/stratametrics/strata/internal/harness"
)

// outageBucket fails the uploads for which down (while set) says so, as a
// bucket that is away does.
type outageBucket struct {
	objstore.Bucket
	mu   sync.Mutex
	down func(name string) bool
}

var errBucketDown = errors.New("bucket down")

func (o *outageBucket) Upload(ctx context.Context, name string, r io.Reader, opts ...objstore.ObjectUploadOption) error {
	o.mu.Lock()
	down := o.down
	o.mu.Unlock()
	if down != nil && down(name) {
		return errBucketDown
	}
	return o.Bucket.Upload(ctx, name, r, opts...)
}

func (o *outageBucket) setDown(down func(name string) bool) {
	o.mu.Lock()
	o.down = down
	o.mu.Unlock()
}

func always(string) bool { return true }

// blocksOnDisk lists the block directories of a tenant's TSDB.
func blocksOnDisk(t *testing.T, dataDir, tenant string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dataDir, tenant))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if _, err := ulid.ParseStrict(e.Name()); err == nil && e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out
}

// writeTenants writes three minutes of five series to each tenant, long
// enough ago that the flush cuts them into three blocks each.
func writeTenants(t *testing.T, b *BlockBuilder, tenants ...string) map[string]*prompb.WriteRequest {
	t.Helper()
	start := alignDown(time.Now().Add(-30*time.Minute).UnixMilli(), time.Minute.Milliseconds())
	sent := map[string]*prompb.WriteRequest{}
	for _, tenant := range tenants {
		req := minuteSeries(5, start, 3*time.Minute)
		if w := send(t, b.Handler(), tenant, req, false); w.Code != http.StatusNoContent {
			t.Fatalf("write to %s: %d %s", tenant, w.Code, w.Body)
		}
		sent[tenant] = req
	}
	return sent
}

// TestShutdownRetriesUploads: a block builder stopped while the bucket
// refuses one tenant's blocks keeps retrying that tenant, and only that
// one, until the bucket takes them; then Run returns nil (the process
// exits 0) with every sample of every tenant in the bucket.
func TestShutdownRetriesUploads(t *testing.T) {
	mem := objstore.NewInMemBucket()
	bkt := &outageBucket{Bucket: mem}
	b := newTestBlockBuilder(t, bkt, nil, func(c *Config) { c.FlushTimeout = 10 * time.Minute })
	var logs harness.LogBuffer
	b.logger = slog.New(slog.NewTextHandler(&logs, nil))
	sent := writeTenants(t, b, "a", "b", "c")
	// Blocks of tenant b fail, whichever they are: the flush cuts them.
	bkt.setDown(func(name string) bool {
		_, err := os.Stat(filepath.Join(b.cfg.DataDir, "b", path.Dir(name)))
		return err == nil
	})

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	cancel()

	const retryMsg = `msg="upload at shutdown failed; retrying until the flush timeout"`
	deadline := time.Now().Add(2 * time.Minute)
	for strings.Count(logs.String(), retryMsg) < 2 {
		select {
		case err := <-done:
			t.Fatalf("Run returned %v while the bucket refused tenant b's blocks\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no two upload retries at shutdown\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	bkt.setDown(nil)
	if err := <-done; err != nil {
		t.Fatalf("Run after the bucket took every block: %v\n%s", err, logs.String())
	}

	for _, line := range strings.Split(logs.String(), "\n") {
		if !strings.Contains(line, retryMsg) {
			continue
		}
		// a and c were uploaded in the first round and not tried again.
		for _, want := range []string{"tenants=1 ", "blocks=3 ", "time_left=", "tenant b", "bucket down"} {
			if !strings.Contains(line, want) {
				t.Errorf("retry warning %q lacks %q", line, want)
			}
		}
	}
	got, _ := harness.BucketSamples(t, mem, "tenant_id", "receive_replica")
	for tenant, req := range sent {
		compareSamples(t, got[tenant], expected(req))
	}
	if !strings.Contains(logs.String(), "flushed and uploaded everything") {
		t.Errorf("no final success line\n%s", logs.String())
	}
}

// TestShutdownGivesUpAtFlushTimeout: with the bucket away for longer than
// the flush timeout, shutdown fails (the process exits 1) once it has
// passed, leaving the flushed blocks on disk; a block builder started on
// the same data directory with the bucket back uploads them all.
func TestShutdownGivesUpAtFlushTimeout(t *testing.T) {
	mem := objstore.NewInMemBucket()
	dir := t.TempDir()
	b := newTestBlockBuilder(t, &outageBucket{Bucket: mem, down: always}, nil, func(c *Config) {
		c.DataDir = dir
		c.FlushTimeout = 3 * time.Second
	})
	sent := writeTenants(t, b, "a", "b")
	err := b.shutdown()
	if err == nil || !strings.Contains(err.Error(), "not uploaded within STRATA_FLUSH_TIMEOUT") {
		t.Fatalf("shutdown with the bucket away past the flush timeout: %v, want it to say blocks were not uploaded", err)
	}
	for tenant := range sent {
		if n := len(blocksOnDisk(t, dir, tenant)); n != 3 {
			t.Fatalf("tenant %s: %d blocks on disk after the failed flush, want its head's 3", tenant, n)
		}
	}
	if names := bucketNames(t, mem); len(names) != 0 {
		t.Fatalf("objects %v in a bucket that refused every upload", names)
	}

	next := newTestBlockBuilder(t, mem, nil, func(c *Config) { c.DataDir = dir })
	if err := next.shutdown(); err != nil {
		t.Fatal(err)
	}
	got, _ := harness.BucketSamples(t, mem, "tenant_id", "receive_replica")
	for tenant, req := range sent {
		compareSamples(t, got[tenant], expected(req))
	}
}

func bucketNames(t *testing.T, bkt objstore.Bucket) []string {
	t.Helper()
	var names []string
	if err := bkt.Iter(context.Background(), "", func(name string) error {
		names = append(names, name)
		return nil
	}, objstore.WithRecursiveIter()); err != nil {
		t.Fatal(err)
	}
	return names
}

// TestShutdownManyTenants: a shutdown with hundreds of open tenants
// flushes and uploads every one of them.
func TestShutdownManyTenants(t *testing.T) {
	const tenants = 500
	mem := objstore.NewInMemBucket()
	b := newTestBlockBuilder(t, mem, nil, func(c *Config) {
		c.MaxExemplars = 0
		c.HeadStripeSize = 16
	})
	now := time.Now().UnixMilli()
	sent := map[string]*prompb.WriteRequest{}
	for i := range tenants {
		tenant := fmt.Sprintf("t%03d", i)
		req := minuteSeries(2, now, 30*time.Second)
		if w := send(t, b.Handler(), tenant, req, false); w.Code != http.StatusNoContent {
			t.Fatalf("write to %s: %d %s", tenant, w.Code, w.Body)
		}
		sent[tenant] = req
	}
	begin := time.Now()
	if err := b.shutdown(); err != nil {
		t.Fatal(err)
	}
	t.Logf("shutdown of %d tenants took %v", tenants, time.Since(begin))
	got, _ := harness.BucketSamples(t, mem, "tenant_id", "receive_replica")
	if len(got) != tenants {
		t.Fatalf("%d tenants in the bucket, want %d", len(got), tenants)
	}
	for tenant, req := range sent {
		compareSamples(t, got[tenant], expected(req))
	}
}
