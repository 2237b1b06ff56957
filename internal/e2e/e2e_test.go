// Package e2e holds end-to-end tests: real strata processes, a real S3
// server and a real Prometheus, talking over loopback.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/thanos-io/objstore"

	"github.com/stratametrics/strata/internal/harness"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// acked records every sample a sender got a 2xx for.
type acked struct {
	mu      sync.Mutex
	samples map[string]map[int64]float64
}

func newAcked() *acked { return &acked{samples: map[string]map[int64]float64{}} }

func (a *acked) add(req *prompb.WriteRequest) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, ts := range req.Timeseries {
		key := labelsKey(ts.Labels)
		m := a.samples[key]
		if m == nil {
			m = map[int64]float64{}
			a.samples[key] = m
		}
		for _, s := range ts.Samples {
			m[s.Timestamp] = s.Value
		}
	}
}

func (a *acked) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, m := range a.samples {
		n += len(m)
	}
	return n
}

// missing lists acknowledged samples the bucket does not hold.
func (a *acked) missing(got map[string]map[int64]float64) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for key, m := range a.samples {
		for ts, v := range m {
			if gv, ok := got[key][ts]; !ok || gv != v {
				out = append(out, fmt.Sprintf("%s@%d=%v (bucket: %v, %v)", key, ts, v, gv, ok))
			}
		}
	}
	return out
}

func labelsKey(ls []prompb.Label) string {
	// Stored series have their labels sorted, whatever order they came in.
	ls = slices.Clone(ls)
	slices.SortFunc(ls, func(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) })
	var b bytes.Buffer
	b.WriteByte('{')
	for i, l := range ls {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s=%q", l.Name, l.Value)
	}
	b.WriteByte('}')
	return b.String()
}

// batch makes one request: n series, one sample each at ts.
func batch(name string, n int, ts int64) *prompb.WriteRequest {
	req := &prompb.WriteRequest{}
	for i := 0; i < n; i++ {
		req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
			Labels:  []prompb.Label{{Name: "__name__", Value: name}, {Name: "series", Value: fmt.Sprintf("s%04d", i)}},
			Samples: []prompb.Sample{{Timestamp: ts, Value: float64(ts%100000) + float64(i)/1000}},
		})
	}
	return req
}

var client = &http.Client{Timeout: 10 * time.Second}

// write sends a 1.0 request and returns the status (0 on transport error).
func write(url, tenant string, req *prompb.WriteRequest) int {
	raw, err := req.Marshal()
	if err != nil {
		panic(err)
	}
	hr, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, url, bytes.NewReader(snappy.Encode(nil, raw)))
	hr.Header.Set("Content-Type", "application/x-protobuf")
	hr.Header.Set("Content-Encoding", "snappy")
	hr.Header.Set("THANOS-TENANT", tenant)
	resp, err := client.Do(hr)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestKillNineLosesNothingAcknowledged: a real block builder killed with
// SIGKILL while writes stream in, then restarted: every sample it
// acknowledged is in the bucket once it has flushed.
func TestKillNineLosesNothingAcknowledged(t *testing.T) {
	s3 := harness.StartS3(t)
	bb := harness.StartBlockBuilder(t, "crash-0", s3.Env(), "STRATA_BLOCK_DURATION=1m")
	ack := newAcked()
	ts := time.Now().Add(-10 * time.Minute).UnixMilli()

	stop := make(chan struct{})
	done := make(chan int)
	go func() {
		failed := 0
		for i := 0; ; i++ {
			select {
			case <-stop:
				done <- failed
				return
			default:
			}
			req := batch("crash_metric", 200, ts+int64(i)*1000)
			if code := write(bb.URL(), "crash", req); code == http.StatusNoContent {
				ack.add(req)
			} else {
				failed++
				time.Sleep(20 * time.Millisecond)
			}
		}
	}()
	waitFor(t, 30*time.Second, func() bool { return ack.count() >= 20000 })
	if err := bb.Kill(); err == nil {
		t.Fatal("block builder exited cleanly on SIGKILL")
	}
	before := ack.count()
	time.Sleep(300 * time.Millisecond)
	bb.Start()
	bb.WaitReady(60 * time.Second)
	waitFor(t, 30*time.Second, func() bool { return ack.count() >= before+20000 })
	close(stop)
	failed := <-done
	t.Logf("%d samples acknowledged, %d writes failed while the block builder was down", ack.count(), failed)

	if err := bb.Stop(); err != nil {
		t.Fatalf("block builder did not flush cleanly: %v", err)
	}
	bkt, err := s3.BucketConfig().Open(context.Background(), quiet, nil, "e2e")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := harness.BucketSamples(t, bkt, "tenant_id", "receive_replica")
	if miss := ack.missing(got["crash"]); len(miss) > 0 {
		t.Fatalf("%d acknowledged samples missing after kill -9 and restart, e.g. %v", len(miss), miss[:min(5, len(miss))])
	}
}

// flushedBucket stops every block builder gracefully, which uploads all
// it holds, and opens the bucket they uploaded to.
func flushedBucket(t *testing.T, s3 *harness.S3, bbs []*harness.Component) objstore.Bucket {
	t.Helper()
	for _, b := range bbs {
		if err := b.Stop(); err != nil {
			t.Fatalf("block builder did not flush cleanly: %v", err)
		}
	}
	bkt, err := s3.BucketConfig().Open(context.Background(), quiet, nil, "e2e")
	if err != nil {
		t.Fatal(err)
	}
	return bkt
}

func waitFor(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
