package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/stratametrics/strata/internal/harness"
)

// TestGracefulRestartsInsideABlock: a block builder of three (RF=3, one-
// minute blocks) is restarted with SIGTERM early in a block, in its
// middle and seconds before its end, while a sender writes in real time.
// Its blocks in the bucket must not overlap (an unmodified Thanos
// Compactor halts on overlaps of one stream), and an unmodified Thanos
// Query over a Store Gateway on the bucket and the block builders'
// StoreAPI, deduplicating replicas, returns every acknowledged sample
// exactly once: while the block builders run, and from the bucket alone
// once they have stopped.
func TestGracefulRestartsInsideABlock(t *testing.T) {
	thanos := harness.Tool(t, "thanos")
	s3 := harness.StartS3(t)
	var bbs []*harness.Component
	for i := 0; i < 3; i++ {
		bbs = append(bbs, harness.StartBlockBuilder(t, fmt.Sprintf("blockbuilder-%d", i), s3.Env(), "STRATA_BLOCK_DURATION=1m"))
	}
	router := harness.StartRouter(t, bbs, 3)

	const series = 20
	w := &realTimeWriter{url: router.URL(), acked: newAcked(), stop: make(chan struct{})}
	w.wg.Add(1)
	go w.run(series)
	// SIGTERM at 5 s, 30 s and 55 s into a block of one minute.
	for _, at := range []time.Duration{5 * time.Second, 30 * time.Second, 55 * time.Second} {
		now := time.Now()
		next := now.Truncate(time.Minute).Add(at)
		if !next.After(now) {
			next = next.Add(time.Minute)
		}
		time.Sleep(time.Until(next))
		// The sender waits while the block builder restarts, so that every
		// replica holds every sample: Thanos Query's deduplication follows
		// one replica and skips a point another replica alone holds
		// within its penalty window (seconds), which would hide what this
		// test checks. The quorum rule for writes during restarts is the
		// chaos tests' business.
		w.pause.Lock()
		if err := bbs[0].StopWithin(time.Minute); err != nil {
			t.Fatalf("block builder 0 did not stop cleanly: %v", err)
		}
		t.Logf("block builder 0 stopped %s into a block", time.Since(next.Add(-at)).Truncate(time.Millisecond))
		bbs[0].Start()
		bbs[0].WaitReady(time.Minute)
		w.pause.Unlock()
	}
	time.Sleep(5 * time.Second)
	close(w.stop)
	w.wg.Wait()
	if w.err != nil {
		t.Fatal(w.err)
	}
	t.Logf("%d samples acknowledged", w.acked.count())

	objstore := s3.ThanosObjstoreFile(t)
	storeGRPC := harness.FreeAddr(t)
	storeHTTP := harness.FreeAddr(t)
	store := harness.StartProcess(t, thanos, []string{"store",
		"--data-dir=" + t.TempDir(), "--objstore.config-file=" + objstore,
		"--grpc-address=" + storeGRPC, "--http-address=" + storeHTTP,
		"--sync-block-duration=2s", "--ignore-deletion-marks-delay=0s",
	}, nil)
	store.WaitHTTP("http://"+storeHTTP+"/-/ready", time.Minute)
	queryHTTP := harness.FreeAddr(t)
	args := []string{"query",
		"--http-address=" + queryHTTP, "--grpc-address=" + harness.FreeAddr(t),
		"--query.replica-label=receive_replica", "--endpoint=" + storeGRPC,
	}
	for _, b := range bbs {
		args = append(args, "--endpoint="+b.GRPCAddr)
	}
	query := harness.StartProcess(t, thanos, args, nil)
	query.WaitHTTP("http://"+queryHTTP+"/-/ready", time.Minute)

	end := time.Now()
	checkOnce := func(what string) {
		t.Helper()
		var missing []string
		// Thanos Query learns its endpoints, and the Store Gateway the
		// blocks, in the background: wait until nothing is missing.
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Second) {
			got := rangeSamples(t, queryHTTP, fmt.Sprintf("e2e_restart[%ds]", int(time.Since(w.start).Seconds())+60), end)
			if missing = w.acked.missing(got); len(missing) == 0 || time.Now().After(deadline) {
				break
			}
		}
		if len(missing) > 0 {
			t.Fatalf("%s: %d acknowledged samples missing from Thanos Query's answer, e.g. %s", what, len(missing), missing[0])
		}
		t.Logf("%s: every one of the %d acknowledged samples once", what, w.acked.count())
	}
	checkOnce("block builders and bucket")

	for _, b := range bbs {
		if err := b.StopWithin(time.Minute); err != nil {
			t.Fatalf("block builder did not flush cleanly: %v", err)
		}
	}
	bkt, err := s3.BucketConfig().Open(context.Background(), quiet, nil, "e2e")
	if err != nil {
		t.Fatal(err)
	}
	_, blocks := harness.BucketSamples(t, bkt, "tenant_id", "receive_replica")
	byStream := map[string][]harness.BlockInfo{}
	for _, b := range blocks {
		byStream[b.Tenant+"/"+b.Replica] = append(byStream[b.Tenant+"/"+b.Replica], b)
	}
	for stream, bs := range byStream {
		sort.Slice(bs, func(i, j int) bool { return bs[i].Meta.MinTime < bs[j].Meta.MinTime })
		for i := 1; i < len(bs); i++ {
			if bs[i].Meta.MinTime < bs[i-1].Meta.MaxTime {
				t.Errorf("stream %s: block %s [%d, %d) overlaps block %s [%d, %d)", stream,
					bs[i].Meta.ULID, bs[i].Meta.MinTime, bs[i].Meta.MaxTime, bs[i-1].Meta.ULID, bs[i-1].Meta.MinTime, bs[i-1].Meta.MaxTime)
			}
		}
	}
	t.Logf("%d blocks of %d streams, none overlapping", len(blocks), len(byStream))
	checkOnce("bucket alone")
}

// realTimeWriter writes one sample of each series every half second,
// stamped with the time of sending, retrying each request until it is
// acknowledged, as Prometheus does.
type realTimeWriter struct {
	url   string
	acked *acked
	stop  chan struct{}
	pause sync.Mutex // held, the writer sends nothing
	wg    sync.WaitGroup
	start time.Time
	err   error
}

func (w *realTimeWriter) run(series int) {
	defer w.wg.Done()
	w.start = time.Now()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-tick.C:
		}
		req := &prompb.WriteRequest{}
		ts := time.Now().UnixMilli()
		for i := 0; i < series; i++ {
			req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
				Labels:  []prompb.Label{{Name: "__name__", Value: "e2e_restart"}, {Name: "n", Value: strconv.Itoa(i)}},
				Samples: []prompb.Sample{{Timestamp: ts, Value: float64(ts%100000) + float64(i)}},
			})
		}
		if err := w.send(req, ts); err != nil {
			w.err = err
			return
		}
	}
}

// send writes one request until it is acknowledged, holding pause so that
// a pause begins only between requests.
func (w *realTimeWriter) send(req *prompb.WriteRequest, ts int64) error {
	w.pause.Lock()
	defer w.pause.Unlock()
	for attempt := 0; ; attempt++ {
		code := write(w.url, "e2e", req)
		if code/100 == 2 {
			w.acked.add(req)
			return nil
		}
		if code/100 == 4 || attempt > 100 {
			return fmt.Errorf("write at %d answered %d after %d attempts", ts, code, attempt+1)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// rangeSamples runs a range-vector instant query on Thanos Query (with
// deduplication) and returns the samples of each series, failing the test
// on a series or a sample returned twice.
func rangeSamples(t *testing.T, addr, query string, at time.Time) map[string]map[int64]float64 {
	t.Helper()
	u := "http://" + addr + "/api/v1/query?" + url.Values{
		"query": {query}, "time": {strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64)}, "dedup": {"true"},
	}.Encode()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var ans struct {
		Status string `json:"status"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Values [][2]any          `json:"values"` // [seconds, "value"]
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &ans); err != nil || ans.Status != "success" {
		t.Fatalf("query %s: %v %s", query, err, body)
	}
	out := map[string]map[int64]float64{}
	for _, r := range ans.Data.Result {
		key := fmt.Sprintf("{__name__=%q, n=%q}", r.Metric["__name__"], r.Metric["n"])
		if len(r.Metric) != 3 || r.Metric["tenant_id"] != "e2e" {
			t.Fatalf("unexpected series %v (want __name__, n and tenant_id only: replicas deduplicated)", r.Metric)
		}
		if _, dup := out[key]; dup {
			t.Fatalf("series %s returned twice", key)
		}
		m := map[int64]float64{}
		for _, p := range r.Values {
			ts := int64(math.Round(p[0].(float64) * 1000))
			v, err := strconv.ParseFloat(p[1].(string), 64)
			if err != nil {
				t.Fatalf("series %s: value %v", key, p[1])
			}
			if _, dup := m[ts]; dup {
				t.Fatalf("series %s has a sample twice at %d", key, ts)
			}
			m[ts] = v
		}
		out[key] = m
	}
	return out
}
