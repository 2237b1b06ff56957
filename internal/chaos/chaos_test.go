// Package chaos holds the reliability tests: a real cluster (S3 server,
// block builders, routers as processes) under continuous load from the
// load generator, while something breaks. Every sample the sender got a
// 2xx for is recorded and must be in the uploaded blocks at the end, and
// the bucket must be one the real Thanos Compactor takes as it is, and
// after whose deduplication every sample is there exactly once (see
// checkBucket).
//
// `make test` runs them short; `make chaos` sets STRATA_CHAOS_SCALE to run
// each fault for longer.
package chaos

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratametrics/strata/internal/harness"
	"github.com/stratametrics/strata/loadgen"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// scale stretches every fault and pause; 1 in `make test`.
func scale() time.Duration {
	if s, err := strconv.ParseFloat(os.Getenv("STRATA_CHAOS_SCALE"), 64); err == nil && s > 0 {
		return time.Duration(s * float64(time.Second))
	}
	return time.Second
}

// seconds is n seconds, scaled.
func seconds(n float64) time.Duration { return time.Duration(n * float64(scale())) }

// ledger records every acknowledged sample of one tenant.
type ledger struct {
	tenant  string
	mu      sync.Mutex
	samples map[loadgen.SeriesID]map[int64]float64
}

func newLedger(tenant string) *ledger {
	return &ledger{tenant: tenant, samples: map[loadgen.SeriesID]map[int64]float64{}}
}

func (l *ledger) ack(id loadgen.SeriesID, ts int64, v float64) {
	l.mu.Lock()
	m := l.samples[id]
	if m == nil {
		m = map[int64]float64{}
		l.samples[id] = m
	}
	m[ts] = v
	l.mu.Unlock()
}

func (l *ledger) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range l.samples {
		n += len(m)
	}
	return n
}

// check compares the ledger with the samples of its tenant in the
// bucket's live blocks (what: when): every acknowledged sample must be
// there with its value, and with once, in one block only.
func (l *ledger) check(t *testing.T, got harness.Occurrences, once bool, what string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	missing, repeated, total := 0, 0, 0
	var examples []string
	for id, m := range l.samples {
		key := id.String()
		for ts, v := range m {
			total++
			o, ok := got[l.tenant][key][ts]
			switch {
			case !ok || !(o.Value == v || math.IsNaN(o.Value) && math.IsNaN(v)):
				missing++
			case once && o.N != 1:
				repeated++
			default:
				continue
			}
			if len(examples) < 5 {
				examples = append(examples, fmt.Sprintf("%s@%d=%v (bucket: %v in %d blocks)", key, ts, v, o.Value, o.N))
			}
		}
	}
	if total == 0 {
		t.Fatalf("tenant %s: nothing was acknowledged", l.tenant)
	}
	if missing+repeated > 0 {
		t.Fatalf("%s: tenant %s: of %d acknowledged samples %d are not in the bucket and %d are in more than one block, e.g. %s",
			what, l.tenant, total, missing, repeated, strings.Join(examples, "; "))
	}
	t.Logf("%s: tenant %s: all %d acknowledged samples are in the bucket", what, l.tenant, total)
}

// cluster is S3, block builders and routers as processes.
type cluster struct {
	t       *testing.T
	s3      *harness.S3
	bbs     []*harness.Component
	routers []*harness.Component
	ringDir string
	// bbEnv are settings of this test's block builders besides bbEnv.
	bbEnv []string
}

// flushGrace bounds a block builder's flush and upload at shutdown.
const flushGrace = 2 * time.Minute

// blockDuration is the block builders' block: one minute, so that
// blocks are cut and uploaded while the test runs.
const blockDuration = time.Minute

// bbEnv are the block builders' settings.
var bbEnv = []string{"STRATA_BLOCK_DURATION=" + blockDuration.String(), "STRATA_UPLOAD_INTERVAL=1s"}

// startCluster starts S3 and n block builders with the extra settings
// env.
func startCluster(t *testing.T, n int, env ...string) *cluster {
	c := &cluster{t: t, s3: harness.StartS3(t), bbEnv: env}
	for i := 0; i < n; i++ {
		c.addBlockBuilder()
	}
	return c
}

func (c *cluster) addBlockBuilder() *harness.Component {
	b := harness.StartBlockBuilder(c.t, fmt.Sprintf("blockbuilder-%d", len(c.bbs)), c.s3.Env(), slices.Concat(bbEnv, c.bbEnv)...)
	c.bbs = append(c.bbs, b)
	return b
}

// startRouter starts a router reading a hashrings file that lists the
// given block builders.
func (c *cluster) startRouter(bbs []*harness.Component) *harness.Component {
	if c.ringDir == "" {
		c.ringDir = c.t.TempDir()
		c.writeRing(bbs)
	}
	r := harness.StartRouterEnv(c.t,
		"STRATA_HASHRINGS_FILE="+filepath.Join(c.ringDir, "hashrings.json"),
		"STRATA_HASHRING_RELOAD_INTERVAL=200ms",
		"STRATA_REPLICATION_FACTOR=3",
		"STRATA_ENDPOINT_BACKOFF=100ms",
		"STRATA_ENDPOINT_MAX_BACKOFF=1s",
	)
	c.routers = append(c.routers, r)
	return r
}

// writeRing replaces the hashrings file atomically, as a ConfigMap update
// does.
func (c *cluster) writeRing(bbs []*harness.Component) {
	var eps []string
	for _, b := range bbs {
		eps = append(eps, strconv.Quote(b.Addr))
	}
	data := fmt.Sprintf(`[{"hashring": "default", "endpoints": [%s]}]`, strings.Join(eps, ", "))
	tmp := filepath.Join(c.ringDir, ".hashrings.json.tmp")
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		c.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(c.ringDir, "hashrings.json")); err != nil {
		c.t.Fatal(err)
	}
}

// load runs the load generator against url until stop is closed.
type load struct {
	ledger  *ledger
	answers *answers
	stop    context.CancelFunc
	done    chan struct{}
	report  loadgen.Report
	err     error
}

func startLoad(t *testing.T, url string) *load {
	l := &load{ledger: newLedger("chaos"), answers: &answers{byStatus: map[int]string{}}, done: make(chan struct{})}
	cfg := loadgen.DefaultConfig()
	cfg.URL = url
	cfg.Tenant = l.ledger.tenant
	cfg.Series = 1000
	cfg.SamplesPerRequest = 500
	// Four senders, kept within two rounds of each other by the load
	// generator, as Prometheus' shards follow one WAL.
	cfg.Concurrency = 4
	cfg.Duration = 0
	cfg.Rounds = math.MaxInt32
	// Sample time runs ahead of the clock, from an hour ago, at one
	// second per round: one-minute blocks are cut and uploaded every few
	// seconds of the test, and the load lasts several minutes.
	cfg.Interval = time.Second
	cfg.Backfill = time.Hour
	cfg.Timeout = 10 * time.Second
	cfg.MaxBackoff = time.Second
	cfg.Acked = l.ledger.ack
	cfg.Client = &http.Client{Timeout: cfg.Timeout, Transport: &answerWatch{
		next: &http.Transport{MaxIdleConnsPerHost: cfg.Concurrency, DisableCompression: true},
		log:  l.answers,
	}}
	ctx, cancel := context.WithCancel(context.Background())
	l.stop = cancel
	go func() {
		defer close(l.done)
		l.report, l.err = loadgen.Run(ctx, cfg)
	}()
	t.Cleanup(func() { cancel(); <-l.done })
	waitFor(t, 30*time.Second, "load to start", func() bool { return l.ledger.count() > 0 })
	return l
}

// answers keeps the first error answer of each status the load got, so a
// test can wait for the load itself to meet a fault.
type answers struct {
	mu       sync.Mutex
	byStatus map[int]string
}

func (a *answers) first(status int) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	msg, ok := a.byStatus[status]
	return msg, ok
}

// answerWatch is the load's transport: it records error answers into log.
type answerWatch struct {
	next http.RoundTripper
	log  *answers
}

func (w *answerWatch) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := w.next.RoundTrip(req)
	if err != nil || resp.StatusCode < 400 {
		return resp, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	w.log.mu.Lock()
	if _, ok := w.log.byStatus[resp.StatusCode]; !ok {
		w.log.byStatus[resp.StatusCode] = strings.TrimSpace(string(body))
	}
	w.log.mu.Unlock()
	return resp, nil
}

// finish stops the load and returns its report.
func (l *load) finish(t *testing.T) loadgen.Report {
	t.Helper()
	l.stop()
	<-l.done
	if l.err != nil && l.err != context.Canceled {
		t.Logf("load generator: %v", l.err)
	}
	t.Logf("load: %d samples acknowledged, %d dropped (4xx), %d abandoned, %d retries, errors %v", l.report.AckedSamples, l.report.DroppedSamples, l.report.AbandonedSamples, l.report.Retries, l.report.Errors)
	return l.report
}

// flushAndCheck stops every block builder gracefully (each flushes and
// uploads), then checks the bucket and the ledgers against it
// (checkBucket).
func (c *cluster) flushAndCheck(t *testing.T, ledgers ...*ledger) {
	t.Helper()
	for _, b := range c.bbs {
		if err := b.StopWithin(flushGrace); err != nil {
			t.Fatalf("block builder %s did not flush cleanly: %v", b.Addr, err)
		}
	}
	c.checkBucket(t, ledgers...)
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// progress waits until n more samples are acknowledged: the cluster takes
// writes.
func progress(t *testing.T, l *load, n int, what string) {
	t.Helper()
	start := l.ledger.count()
	deadline := time.Now().Add(60 * time.Second)
	for l.ledger.count() < start+n {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %d samples acknowledged in 60s, want %d", what, l.ledger.count()-start, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func noFailures(t *testing.T, rep loadgen.Report) {
	t.Helper()
	// Abandoned samples are the request in flight when the test stopped
	// the load: never acknowledged, so not counted against the cluster.
	if rep.DroppedSamples > 0 {
		t.Fatalf("the sender lost writes: %d samples dropped on 4xx; errors %v %v", rep.DroppedSamples, rep.Errors, rep.ErrorExamples)
	}
}
