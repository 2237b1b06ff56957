package shipper

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/thanos-io/objstore"

	"github.com/stratametrics/strata/internal/harness"
)

// hangingBucket is a bucket whose existence checks hang, as an S3
// endpoint that accepts connections and never answers does, until the
// caller's context ends or the test releases them.
type hangingBucket struct {
	objstore.Bucket
	release chan struct{}
}

func (b *hangingBucket) Exists(ctx context.Context, name string) (bool, error) {
	select {
	case <-ctx.Done():
		return false, ctx.Err()
	case <-b.release:
		return b.Bucket.Exists(ctx, name)
	}
}

// jsonLog collects a logger's records for a test.
type jsonLog struct{ harness.LogBuffer }

// records returns the records with message msg.
func (l *jsonLog) records(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(l.Bytes()))
	for sc.Scan() {
		var r map[string]any
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if r["msg"] == msg {
			out = append(out, r)
		}
	}
	return out
}

const slowMsg = "block upload slow; the bucket may be hanging"

func newSlowShipper(t *testing.T, bkt objstore.Bucket, m *Metrics) (*testTSDB, *Shipper, *jsonLog) {
	t.Helper()
	db := newTSDB(t)
	db.addBlocks(1)
	logs := &jsonLog{}
	s, err := New(Options{
		Dir: db.dir, Bucket: bkt, Labels: extLabels, Tenant: tenant, Metrics: m,
		Logger:            slog.New(slog.NewJSONHandler(logs, nil)),
		SlowUploadWarning: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return db, s, logs
}

// TestSlowUploadWarnsUntilContextEnds: an upload hanging in its existence
// check is logged as slow, naming the block and the tenant, until the
// caller's context ends it; then the warnings stop and the upload in
// progress gauge is back to 0.
func TestSlowUploadWarnsUntilContextEnds(t *testing.T) {
	m := NewMetrics(nil)
	bkt := &hangingBucket{Bucket: objstore.NewInMemBucket(), release: make(chan struct{})}
	db, s, logs := newSlowShipper(t, bkt, m)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := s.Sync(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Sync to a hanging bucket: %v, want the context's deadline", err)
	}
	warned := logs.records(t, slowMsg)
	if len(warned) < 2 {
		t.Fatalf("%d slow upload warnings during a 500ms hang with a 20ms period, want several", len(warned))
	}
	for _, r := range warned {
		if r["block"] != db.blocks()[0].ULID.String() || r["tenant"] != tenant || r["elapsed"] == nil {
			t.Fatalf("warning %v does not name the block, the tenant and the time elapsed", r)
		}
	}
	if got := testutil.ToFloat64(m.inProgress.WithLabelValues(tenant)); got != 0 {
		t.Fatalf("upload in progress since %v after the upload ended, want 0", got)
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(logs.records(t, slowMsg)); n != len(warned) {
		t.Fatalf("%d slow upload warnings after the upload ended, were %d", n, len(warned))
	}
}

// TestSlowUploadDurationCoversCheck: an upload whose existence check hangs
// for a while, then succeeds, reports (in its log line) a duration that
// includes the hang, and shows in the upload in progress gauge while it
// hangs.
func TestSlowUploadDurationCoversCheck(t *testing.T) {
	m := NewMetrics(nil)
	bkt := &hangingBucket{Bucket: objstore.NewInMemBucket(), release: make(chan struct{})}
	_, s, logs := newSlowShipper(t, bkt, m)
	before := time.Now()
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := s.Sync(context.Background())
		done <- result{n, err}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for len(logs.records(t, slowMsg)) < 3 {
		if time.Now().After(deadline) {
			t.Fatal("no slow upload warnings for a hanging existence check")
		}
		time.Sleep(10 * time.Millisecond)
	}
	since := testutil.ToFloat64(m.inProgress.WithLabelValues(tenant))
	if start := float64(before.UnixNano()) / 1e9; since < start || since > float64(time.Now().UnixNano())/1e9 {
		t.Fatalf("upload in progress since %v while it hangs, want the upload's start (after %v)", since, start)
	}
	close(bkt.release)
	if r := <-done; r.err != nil || r.n != 1 {
		t.Fatalf("Sync once the bucket answers = %d, %v; want 1 block uploaded", r.n, r.err)
	}
	// slog's JSON handler writes durations as nanoseconds.
	warned := logs.records(t, slowMsg)
	hung := time.Duration(warned[len(warned)-1]["elapsed"].(float64))
	up := logs.records(t, "uploaded block")
	if len(up) != 1 {
		t.Fatalf("%d uploaded block lines, want 1", len(up))
	}
	if d := time.Duration(up[0]["duration"].(float64)); d < hung {
		t.Fatalf("upload logged as taking %v, but it had hung for %v in its existence check", d, hung)
	}
	if got := testutil.ToFloat64(m.inProgress.WithLabelValues(tenant)); got != 0 {
		t.Fatalf("upload in progress since %v after the upload, want 0", got)
	}
}
