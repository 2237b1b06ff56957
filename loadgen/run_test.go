package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"

	"github.com/stratametrics/strata/remotewrite"
	"github.com/stratametrics/strata/validation"
)

// receiver is a remote-write endpoint that decodes every request with
// Strata's parser and keeps what it was sent.
type receiver struct {
	t      *testing.T
	tenant string
	// fail, when set, answers a request with a status instead of storing
	// it; the request number counts from 1.
	fail func(n int64) int
	// delay, when set, holds a request before answering, by its first
	// series.
	delay func(first string) time.Duration
	// unsorted expects every series' labels out of order and sorts them,
	// as a receiver that accepts them does.
	unsorted bool
	// tenants, when set, takes any tenant header and records, per
	// tenant, the series sent in its requests.
	tenants map[string]map[string]bool

	requests atomic.Int64
	mu       sync.Mutex
	samples  map[string]map[int64]float64 // series -> ts -> value
	lastTs   map[string]int64
	problems []string
	// maxTs is the newest sample received; samples more than maxBehind
	// older are a problem (a TSDB would refuse them).
	maxTs, maxBehind int64
}

func newReceiver(t *testing.T) (*receiver, string) {
	r := &receiver{t: t, samples: map[string]map[int64]float64{}, lastTs: map[string]int64{}, maxBehind: 1 << 62}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, srv.URL + "/api/v1/receive"
}

func (r *receiver) problem(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.problems = append(r.problems, fmt.Sprintf(format, args...))
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	n := r.requests.Add(1)
	now := time.Now().UnixMilli()
	if r.fail != nil {
		if status := r.fail(n); status != 0 {
			http.Error(w, fmt.Sprintf("request %d refused on purpose", n), status)
			return
		}
	}
	v, err := remotewrite.Negotiate(req.Header)
	if err != nil {
		r.problem("negotiate: %v", err)
		http.Error(w, err.Error(), http.StatusUnsupportedMediaType)
		return
	}
	tenant := req.Header.Get("THANOS-TENANT")
	if r.tenants == nil && tenant != r.tenant {
		r.problem("tenant header %q, want %q", tenant, r.tenant)
	}
	body, _ := io.ReadAll(req.Body)
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		r.problem("snappy: %v", err)
		http.Error(w, err.Error(), 400)
		return
	}
	var rq remotewrite.Request
	if err := rq.Parse(v, raw); err != nil {
		r.problem("parse: %v", err)
		http.Error(w, err.Error(), 400)
		return
	}
	limits := validation.DefaultLimits()
	limits.MaxFutureSkew = 0
	var s remotewrite.Series
	if r.delay != nil && rq.NumSeries() > 0 && rq.Series(0, &s) == nil {
		time.Sleep(r.delay(validation.FormatLabels(s.Labels, 1<<20)))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := 0; i < rq.NumSeries(); i++ {
		if err := rq.Series(i, &s); err != nil {
			r.problems = append(r.problems, err.Error())
			continue
		}
		if r.unsorted {
			if slices.IsSortedFunc(s.Labels, byName) {
				r.problems = append(r.problems, fmt.Sprintf("%s: labels sorted, want them out of order", validation.FormatLabels(s.Labels, 1<<20)))
			}
			slices.SortFunc(s.Labels, byName)
		}
		if err := limits.CheckSeries(v, &s, now); err != nil {
			r.problems = append(r.problems, err.Error())
			continue
		}
		key := validation.FormatLabels(s.Labels, 1<<20)
		if r.tenants != nil {
			if r.tenants[tenant] == nil {
				r.tenants[tenant] = map[string]bool{}
			}
			r.tenants[tenant][key] = true
		}
		if r.samples[key] == nil {
			r.samples[key] = map[int64]float64{}
		}
		for _, smp := range s.Samples {
			if smp.Timestamp < r.maxTs-r.maxBehind {
				r.problems = append(r.problems, fmt.Sprintf("%s: sample at %d, %d ms behind the newest", key, smp.Timestamp, r.maxTs-smp.Timestamp))
			}
			r.maxTs = max(r.maxTs, smp.Timestamp)
			if smp.Timestamp <= r.lastTs[key] {
				r.problems = append(r.problems, fmt.Sprintf("%s: sample at %d after %d", key, smp.Timestamp, r.lastTs[key]))
			}
			r.lastTs[key] = smp.Timestamp
			r.samples[key][smp.Timestamp] = smp.Value
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func byName(a, b remotewrite.Label) int { return bytes.Compare(a.Name, b.Name) }

func (r *receiver) check() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, p := range r.problems {
		if i == 10 {
			r.t.Errorf("... and %d more", len(r.problems)-10)
			break
		}
		r.t.Error(p)
	}
}

// formatID renders a series as the receiver keys it.
func formatID(id SeriesID) string {
	var ls []remotewrite.Label
	for _, l := range id.Labels() {
		ls = append(ls, remotewrite.Label{Name: []byte(l.Name), Value: []byte(l.Value)})
	}
	return validation.FormatLabels(ls, 1<<20)
}

// ackLog collects acknowledged samples.
type ackLog struct {
	mu sync.Mutex
	m  map[string]map[int64]float64
	n  int
}

func (a *ackLog) add(id SeriesID, ts int64, v float64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m = map[string]map[int64]float64{}
	}
	k := formatID(id)
	if a.m[k] == nil {
		a.m[k] = map[int64]float64{}
	}
	a.m[k][ts] = v
	a.n++
}

func testConfig(url string) Config {
	cfg := DefaultConfig()
	cfg.URL = url
	cfg.Duration = 0
	cfg.MinBackoff = time.Millisecond
	cfg.MaxBackoff = 10 * time.Millisecond
	return cfg
}

// TestRunDeliversWhatItAcks sends a bounded number of rounds of both
// versions, with churn, and checks that the receiver got exactly the
// acknowledged samples, in order per series; with unsorted labels too,
// which a receiver that sorts them stores as the same series.
func TestRunDeliversWhatItAcks(t *testing.T) {
	for _, tc := range []struct {
		proto    Protocol
		unsorted bool
	}{{1, false}, {2, false}, {1, true}, {2, true}} {
		name := fmt.Sprintf("protocol %d", tc.proto)
		if tc.unsorted {
			name += " unsorted labels"
		}
		t.Run(name, func(t *testing.T) {
			rcv, url := newReceiver(t)
			rcv.tenant = "team-a"
			rcv.unsorted = tc.unsorted
			var acks ackLog
			cfg := testConfig(url)
			cfg.Protocol = tc.proto
			cfg.UnsortedLabels = tc.unsorted
			cfg.Tenant = "team-a"
			cfg.Series = 1000
			cfg.SamplesPerRequest = 300
			cfg.SamplesPerSeries = 2
			cfg.Concurrency = 3
			cfg.Rounds = 6
			cfg.WarmupRounds = 1
			cfg.Churn = 0.5 // half the series per minute: a few hundred new ones over 3 minutes of samples
			cfg.Acked = acks.add
			rep, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			rcv.check()
			want := int64(cfg.Series * cfg.SamplesPerSeries * cfg.Rounds)
			if rep.AckedSamples != want || int64(acks.n) != want {
				t.Fatalf("acknowledged %d samples (%d by callback), want %d", rep.AckedSamples, acks.n, want)
			}
			if rep.Samples <= 0 || rep.Samples >= want {
				t.Errorf("measured %d samples: the warm-up round should be left out of %d", rep.Samples, want)
			}
			if len(rep.Errors) != 0 || rep.DroppedSamples != 0 || rep.Retries != 0 {
				t.Errorf("errors %v, dropped %d, retries %d; want none", rep.Errors, rep.DroppedSamples, rep.Retries)
			}
			rcv.mu.Lock()
			defer rcv.mu.Unlock()
			if len(rcv.samples) <= cfg.Series {
				t.Errorf("%d distinct series received: churn should have made more than %d", len(rcv.samples), cfg.Series)
			}
			if len(acks.m) != len(rcv.samples) {
				t.Fatalf("%d series acknowledged, %d received", len(acks.m), len(rcv.samples))
			}
			for k, want := range acks.m {
				got := rcv.samples[k]
				if len(got) != len(want) {
					t.Fatalf("series %s: received %d samples, acknowledged %d", k, len(got), len(want))
				}
				for ts, v := range want {
					if got[ts] != v {
						t.Fatalf("series %s at %d: received %v, acknowledged %v", k, ts, got[ts], v)
					}
				}
			}
		})
	}
}

// TestRunTenants splits the series over tenants: each request carries
// one tenant's series, every tenant gets its share, and no series is sent
// for two tenants.
func TestRunTenants(t *testing.T) {
	rcv, url := newReceiver(t)
	rcv.tenants = map[string]map[string]bool{}
	cfg := testConfig(url)
	cfg.Tenant = "team"
	cfg.Tenants = 7
	cfg.Series = 1000 // not a multiple of 7: shares of 142 and 143
	cfg.SamplesPerRequest = 100
	cfg.Concurrency = 3
	cfg.Rounds = 2
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	rcv.check()
	if want := int64(cfg.Series * cfg.Rounds); rep.AckedSamples != want {
		t.Fatalf("acknowledged %d samples, want %d", rep.AckedSamples, want)
	}
	if rep.Tenants != cfg.Tenants {
		t.Errorf("report says %d tenants, want %d", rep.Tenants, cfg.Tenants)
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if len(rcv.tenants) != cfg.Tenants {
		t.Fatalf("series came for tenants %v, want %d tenants", slices.Sorted(maps.Keys(rcv.tenants)), cfg.Tenants)
	}
	owner := map[string]string{}
	for i := 0; i < cfg.Tenants; i++ {
		name := fmt.Sprintf("team-%d", i)
		got := rcv.tenants[name]
		if n := len(got); n != 142 && n != 143 {
			t.Errorf("tenant %s got %d series, want 142 or 143", name, n)
		}
		for k := range got {
			if o, ok := owner[k]; ok {
				t.Errorf("series %s sent for %s and %s", k, o, name)
			}
			owner[k] = name
		}
	}
	if len(owner) != cfg.Series {
		t.Errorf("%d series in all, want %d", len(owner), cfg.Series)
	}
}

// TestRunRetries checks Prometheus' behaviour: 5xx and 429 are retried
// until acknowledged, other 4xx are dropped and counted.
func TestRunRetries(t *testing.T) {
	rcv, url := newReceiver(t)
	rcv.fail = func(n int64) int {
		switch n {
		case 1, 2:
			return http.StatusServiceUnavailable
		case 3:
			return http.StatusTooManyRequests
		case 5:
			return http.StatusBadRequest
		}
		return 0
	}
	cfg := testConfig(url)
	cfg.Series = 100
	cfg.SamplesPerRequest = 50
	cfg.Concurrency = 1
	cfg.Rounds = 2
	var acks ackLog
	cfg.Acked = acks.add
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	rcv.check()
	if rep.Errors["503"] != 2 || rep.Errors["429"] != 1 || rep.Errors["400"] != 1 {
		t.Errorf("errors %v, want 503: 2, 429: 1, 400: 1", rep.Errors)
	}
	if rep.Retries != 3 {
		t.Errorf("%d retries, want 3", rep.Retries)
	}
	if rep.DroppedSamples != 50 || rep.AckedSamples != 150 || acks.n != 150 {
		t.Errorf("dropped %d, acknowledged %d (%d by callback); want 50 and 150", rep.DroppedSamples, rep.AckedSamples, acks.n)
	}
	if !strings.Contains(rep.ErrorExamples["400"], "refused on purpose") {
		t.Errorf("400 example %q does not quote the answer", rep.ErrorExamples["400"])
	}
}

// TestRunAbandonsOnCancel checks that a run against a receiver that never
// takes the write ends when its context does, counting what it could not
// deliver as abandoned.
func TestRunAbandonsOnCancel(t *testing.T) {
	rcv, url := newReceiver(t)
	rcv.fail = func(int64) int { return http.StatusServiceUnavailable }
	cfg := testConfig(url)
	cfg.Series = 10
	cfg.Rounds = 1
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for rcv.requests.Load() < 5 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.AbandonedSamples != 10 || rep.AckedSamples != 0 {
		t.Errorf("abandoned %d, acknowledged %d; want 10 and 0", rep.AbandonedSamples, rep.AckedSamples)
	}
}

// TestRunRealTime checks that samples never come from the future: with no
// backfill each round waits for its timestamp.
func TestRunRealTime(t *testing.T) {
	rcv, url := newReceiver(t) // refuses samples later than its clock
	cfg := testConfig(url)
	cfg.Series = 20
	cfg.Interval = 20 * time.Millisecond
	cfg.Backfill = 0
	cfg.Rounds = 4
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	rcv.check()
	if rep.AckedSamples != 80 {
		t.Errorf("acknowledged %d samples, want 80", rep.AckedSamples)
	}
}

func TestRunReportsProcesses(t *testing.T) {
	_, url := newReceiver(t)
	cfg := testConfig(url)
	cfg.Series = 4000
	cfg.Rounds = 3
	cfg.Pids = []int{os.Getpid()}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Processes) != 1 || rep.Processes[0].Error != "" || rep.Processes[0].PeakRSSBytes <= 0 {
		t.Fatalf("processes %+v: want this one with its memory", rep.Processes)
	}
	var b strings.Builder
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"samples/s", "latency", fmt.Sprintf("pid %d", os.Getpid()), "generator"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}

	cfg.Pids = []int{1 << 30}
	if _, err := Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "pid") {
		t.Errorf("a pid that does not exist: err %v, want one naming the pid", err)
	}
}

func TestProcessCPU(t *testing.T) {
	before, err := ProcessCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	x := uint64(1)
	for end := time.Now().Add(50 * time.Millisecond); time.Now().Before(end); {
		x = mix(x)
	}
	after, err := ProcessCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after <= before || x == 0 {
		t.Errorf("CPU time went from %v to %v while spinning", before, after)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		tweak func(*Config)
		want  string
	}{
		{"no url", func(c *Config) { c.URL = "" }, "url"},
		{"bad scheme", func(c *Config) { c.URL = "ftp://x/y" }, "url"},
		{"protocol", func(c *Config) { c.Protocol = 3 }, "protocol"},
		{"series", func(c *Config) { c.Series = 0 }, "series"},
		{"samples", func(c *Config) { c.SamplesPerRequest, c.SamplesPerSeries = 2, 3 }, "samples-per-request"},
		{"endless", func(c *Config) { c.Duration, c.Rounds = 0, 0 }, "must end"},
		{"tenant", func(c *Config) { c.Tenant = "../x" }, "tenant"},
		{"churn", func(c *Config) { c.Churn = -1 }, "churn"},
		{"tenants without prefix", func(c *Config) { c.Tenants = 2 }, "set tenant"},
		{"more tenants than series", func(c *Config) { c.Tenant, c.Series, c.Tenants = "t", 3, 4 }, "tenants must be"},
		{"pid", func(c *Config) { c.Pids = []int{0} }, "pid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.URL = "http://127.0.0.1:1/api/v1/receive"
			tc.tweak(&cfg)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want one mentioning %q", err, tc.want)
			}
		})
	}
	cfg := DefaultConfig()
	cfg.URL = "http://127.0.0.1:1/api/v1/receive"
	if err := cfg.Validate(); err != nil {
		t.Errorf("defaults refused: %v", err)
	}
}

// TestRunKeepsSendersTogether slows down one sender's requests and checks
// that the others wait for it: no sample arrives more than maxLead rounds
// behind the newest, as a TSDB's appendable window requires when sample
// time runs faster than the clock.
func TestRunKeepsSendersTogether(t *testing.T) {
	rcv, url := newReceiver(t)
	slow := formatID(SeriesID{Slot: 0})
	rcv.delay = func(first string) time.Duration {
		if first == slow {
			return 5 * time.Millisecond
		}
		return 0
	}
	cfg := testConfig(url)
	rcv.maxBehind = maxLead * cfg.Interval.Milliseconds()
	cfg.Series = 400
	cfg.SamplesPerRequest = 50
	cfg.Concurrency = 4
	cfg.Rounds = 12
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	rcv.check()
	if rep.AckedSamples != 400*12 {
		t.Errorf("acknowledged %d samples, want %d", rep.AckedSamples, 400*12)
	}
}
