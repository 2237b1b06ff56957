package loadgen

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stratametrics/strata/internal/backoff"
	"github.com/stratametrics/strata/remotewrite"
	"github.com/stratametrics/strata/writeerr"
)

// Run sends load as cfg says until the duration (after the warm-up) has
// passed or every sender has sent its rounds, then reports. Cancelling ctx
// stops at once: requests in flight or waiting for a retry are counted as
// abandoned, neither acknowledged nor dropped.
func Run(ctx context.Context, cfg Config) (Report, error) {
	if err := cfg.Validate(); err != nil {
		return Report{}, err
	}
	r := newRunner(cfg)
	for _, pid := range cfg.Pids {
		if _, err := ProcessCPU(pid); err != nil {
			return Report{}, err
		}
	}
	return r.run(ctx)
}

// runner is one run's shared state; each sender is a worker.
type runner struct {
	cfg        Config
	url        string
	client     *http.Client
	now        func() time.Time
	startMs    int64
	intervalMs int64
	perReq     int     // series in a full request
	chunks     []chunk // the requests of a round

	// stop is closed when the measured duration has passed: senders finish
	// the request in hand and return.
	stop      chan struct{}
	measuring atomic.Bool
	// cold counts senders still warming up; warm is closed when it hits 0.
	cold atomic.Int64
	warm chan struct{}

	pace *pace

	acked, dropped, abandoned, retries atomic.Int64
	winSamples, winRequests, winBytes  atomic.Int64

	mu       sync.Mutex
	errors   map[string]int64
	examples map[string]string
}

// chunk is one request of a round: n series from slot first, of one
// tenant.
type chunk struct {
	first, n int
	tenant   string
}

type worker struct {
	id     int
	chunks []int
	tmpls  []*template
	lat    []time.Duration
}

func newRunner(cfg Config) *runner {
	r := &runner{
		cfg:        cfg,
		url:        cfg.target(),
		client:     cfg.Client,
		now:        cfg.Now,
		intervalMs: cfg.Interval.Milliseconds(),
		perReq:     cfg.seriesPerRequest(),
		stop:       make(chan struct{}),
		warm:       make(chan struct{}),
		errors:     map[string]int64{},
		examples:   map[string]string{},
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.client == nil {
		r.client = &http.Client{
			Timeout: cfg.Timeout,
			Transport: &http.Transport{
				DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
				MaxIdleConnsPerHost: cfg.Concurrency,
				IdleConnTimeout:     90 * time.Second,
				// Bodies are compressed already, and answers small.
				DisableCompression: true,
			},
		}
	}
	for t := 0; t < max(cfg.Tenants, 1); t++ {
		first, end := cfg.tenantSlots(t)
		for ; first < end; first += r.perReq {
			r.chunks = append(r.chunks, chunk{first: first, n: min(r.perReq, end-first), tenant: cfg.tenantName(t)})
		}
	}
	// Start on a scrape boundary, far enough back to send faster than
	// real time for a while.
	start := r.now().Add(-cfg.Backfill).UnixMilli()
	r.startMs = start - start%r.intervalMs
	return r
}

func (r *runner) run(ctx context.Context) (Report, error) {
	n := min(r.cfg.Concurrency, len(r.chunks))
	workers := make([]*worker, n)
	for c := range r.chunks {
		w := workers[c%n]
		if w == nil {
			w = &worker{id: c % n}
			workers[c%n] = w
		}
		w.chunks = append(w.chunks, c)
	}
	r.cold.Store(int64(n))
	r.pace = newPace(n)
	defer r.pace.close()
	go func() {
		select {
		case <-r.stop:
		case <-ctx.Done():
		case <-r.pace.closed:
		}
		r.pace.quit()
	}()
	var wg sync.WaitGroup
	for _, w := range workers {
		w.tmpls = make([]*template, len(w.chunks))
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.work(ctx, w)
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	select {
	case <-r.warm:
	case <-done:
	case <-ctx.Done():
	}
	before, err := r.snapshot()
	if err != nil {
		close(r.stop)
		<-done
		return Report{}, err
	}
	r.measuring.Store(true)
	if r.cfg.OnMeasure != nil {
		r.cfg.OnMeasure()
	}
	var timeout <-chan time.Time
	if r.cfg.Duration > 0 {
		timer := time.NewTimer(r.cfg.Duration)
		defer timer.Stop()
		timeout = timer.C
	}
	select {
	case <-timeout:
		close(r.stop)
	case <-done:
	case <-ctx.Done():
	}
	r.measuring.Store(false)
	after, _ := r.snapshot()
	<-done

	var lat []time.Duration
	for _, w := range workers {
		lat = append(lat, w.lat...)
	}
	return r.report(before, after, lat), nil
}

// work is one sender: round after round, each of its requests in turn.
func (r *runner) work(ctx context.Context, w *worker) {
	var warmOnce sync.Once
	warmed := func() {
		warmOnce.Do(func() {
			if r.cold.Add(-1) == 0 {
				close(r.warm)
			}
		})
	}
	defer warmed()
	defer r.pace.exit(w.id)
	per := int64(r.cfg.SamplesPerSeries)
	for round := 0; r.cfg.Rounds == 0 || round < r.cfg.Rounds; round++ {
		if round == r.cfg.WarmupRounds {
			warmed()
		}
		if !r.pace.wait(round) {
			return
		}
		k0 := int64(round) * per
		// Never send a sample from the future: wait for the clock.
		last := r.startMs + (k0+per-1)*r.intervalMs
		if wait := time.Duration(last-r.now().UnixMilli()) * time.Millisecond; wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-r.stop:
				t.Stop()
				return
			case <-ctx.Done():
				t.Stop()
				return
			}
		}
		replaced := replacements(r.cfg.Churn, r.cfg.Series, k0*r.intervalMs)
		for i, c := range w.chunks {
			if r.stopped(ctx) {
				return
			}
			t := r.template(w, i, c, replaced)
			t.patch(k0, r.startMs, r.intervalMs)
			r.send(ctx, w, t, r.chunks[c].tenant, k0)
		}
		r.pace.finish(w.id, round)
	}
}

// maxLead is how many rounds a sender may run ahead of the slowest one.
const maxLead = 2

// pace keeps the senders within maxLead rounds of each other. Sample time
// is shared, as it is between a Prometheus' shards: a receiver refuses
// samples far older than its newest (a TSDB takes them at most half a
// block behind), which a sender left behind would otherwise send when time
// runs faster than the clock.
type pace struct {
	mu       sync.Mutex
	cond     *sync.Cond
	done     []int  // rounds each sender has completed
	gone     []bool // sender has returned
	quitting bool
	closed   chan struct{}
}

func newPace(n int) *pace {
	p := &pace{done: make([]int, n), gone: make([]bool, n), closed: make(chan struct{})}
	p.cond = sync.NewCond(&p.mu)
	return p
}

// wait blocks until round may start; false when the run is ending.
func (p *pace) wait(round int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for !p.quitting && !p.allowed(round) {
		p.cond.Wait()
	}
	return !p.quitting
}

func (p *pace) allowed(round int) bool {
	for i, d := range p.done {
		if !p.gone[i] && d < round-maxLead {
			return false
		}
	}
	return true
}

func (p *pace) finish(w, round int) {
	p.mu.Lock()
	p.done[w] = round + 1
	p.mu.Unlock()
	p.cond.Broadcast()
}

func (p *pace) exit(w int) {
	p.mu.Lock()
	p.gone[w] = true
	p.mu.Unlock()
	p.cond.Broadcast()
}

func (p *pace) quit() {
	p.mu.Lock()
	p.quitting = true
	p.mu.Unlock()
	p.cond.Broadcast()
}

func (p *pace) close() { close(p.closed) }

func (r *runner) stopped(ctx context.Context) bool {
	select {
	case <-r.stop:
		return true
	case <-ctx.Done():
		return true
	default:
		return false
	}
}

// template returns the template of chunk c, rebuilt when churn replaced
// any of its series.
func (r *runner) template(w *worker, i, c int, replaced int64) *template {
	first, n := r.chunks[c].first, r.chunks[c].n
	t := w.tmpls[i]
	if t != nil && r.cfg.Churn == 0 {
		return t
	}
	gens := make([]int, n)
	for j := range gens {
		gens[j] = generation(first+j, replaced, r.cfg.Series)
	}
	if t != nil && slices.Equal(t.gens, gens) {
		return t
	}
	if r.cfg.Protocol == OTLP {
		t = buildOTLPTemplate(first, gens, r.cfg.SamplesPerSeries, r.cfg.UnsortedLabels, r.cfg.OTLPInstance, r.cfg.OTLPGzip)
	} else {
		t = buildTemplate(r.cfg.version(), first, gens, r.cfg.SamplesPerSeries, r.cfg.UnsortedLabels)
	}
	w.tmpls[i] = t
	return t
}

// PartialKey counts, in Report.Errors, the OTLP answers that took a
// request but refused some of its points (partial success); those points
// are dropped.
const PartialKey = "partial"

// send posts one request until it is acknowledged, dropped (4xx but 429),
// or abandoned (the run ends while retrying), backing off between tries.
func (r *runner) send(ctx context.Context, w *worker, t *template, tenant string, k0 int64) {
	samples := int64(t.n * t.perSeries)
	for attempt := 1; ; attempt++ {
		start := time.Now()
		status, retryAfter, rejected, msg, err := r.post(ctx, t.body, tenant)
		measuring := r.measuring.Load()
		if measuring {
			w.lat = append(w.lat, time.Since(start))
		}
		if err == nil && status/100 == 2 {
			// A retry would send the refused points again, to be
			// refused again: they are dropped, as an OpenTelemetry
			// exporter drops them.
			rejected = min(rejected, samples)
			taken := samples - rejected
			r.acked.Add(taken)
			if rejected > 0 {
				r.dropped.Add(rejected)
				r.countError(PartialKey, msg)
			}
			if measuring {
				r.winSamples.Add(taken)
				r.winRequests.Add(1)
				r.winBytes.Add(int64(len(t.body)))
			}
			if r.cfg.Acked != nil && rejected == 0 {
				r.ack(t, k0)
			}
			return
		}
		if ctx.Err() != nil {
			r.abandoned.Add(samples)
			return
		}
		key := "transport"
		if err == nil {
			key = strconv.Itoa(status)
		}
		r.countError(key, msg)
		if err == nil && !writeerr.Retryable(status) {
			r.dropped.Add(samples)
			return
		}
		pause := backoff.Exponential(r.cfg.MinBackoff, r.cfg.MaxBackoff, attempt)
		if retryAfter > 0 {
			pause = min(retryAfter, r.cfg.MaxBackoff)
		}
		timer := time.NewTimer(pause)
		select {
		case <-timer.C:
		case <-r.stop:
			timer.Stop()
			r.abandoned.Add(samples)
			return
		case <-ctx.Done():
			timer.Stop()
			r.abandoned.Add(samples)
			return
		}
		r.retries.Add(1)
	}
}

func (r *runner) ack(t *template, k0 int64) {
	for i := 0; i < t.n; i++ {
		id := SeriesID{Slot: t.first + i, Gen: t.gens[i]}
		for j := 0; j < t.perSeries; j++ {
			k := k0 + int64(j)
			r.cfg.Acked(id, r.startMs+k*r.intervalMs, Value(id, k))
		}
	}
}

// maxAnswer bounds how much of an error answer is kept.
const maxAnswer = 4 << 10

// maxOTLPAnswer bounds the OTLP success answer read: its partial success
// message may list every refused metric.
const maxOTLPAnswer = 1 << 20

// post sends one request. err is set when no answer came; msg is the start
// of an error answer, or the message of an OTLP partial success, which
// rejected counts the refused points of.
func (r *runner) post(ctx context.Context, body []byte, tenant string) (status int, retryAfter time.Duration, rejected int64, msg string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(body))
	if err != nil {
		return 0, 0, 0, err.Error(), err
	}
	h := req.Header
	otlp := r.cfg.Protocol == OTLP
	switch {
	case otlp:
		h.Set("Content-Type", otlpContentType)
		if r.cfg.OTLPGzip {
			h.Set("Content-Encoding", "gzip")
		}
	case r.cfg.Protocol == RemoteWrite2:
		h.Set("Content-Encoding", "snappy")
		h.Set("Content-Type", r.cfg.version().ContentType())
		h.Set(remotewrite.HeaderVersion, "2.0.0")
	default:
		h.Set("Content-Encoding", "snappy")
		h.Set("Content-Type", r.cfg.version().ContentType())
		h.Set(remotewrite.HeaderVersion, "0.1.0")
	}
	h.Set("User-Agent", "strata-loadgen")
	if tenant != "" {
		h.Set(r.cfg.TenantHeader, tenant)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, 0, 0, err.Error(), err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		if otlp {
			answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxOTLPAnswer))
			rejected, msg = otlpAnswer(resp.Header.Get("Content-Type"), answer)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, 0, rejected, msg, nil
	}
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	_, _ = io.Copy(io.Discard, resp.Body)
	if s, err := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After"))); err == nil && s > 0 {
		retryAfter = time.Duration(s) * time.Second
	}
	msg = strings.TrimSpace(string(answer))
	if otlp {
		msg = otlpErrorMessage(resp.Header.Get("Content-Type"), answer)
	}
	return resp.StatusCode, retryAfter, 0, msg, nil
}

func (r *runner) countError(key, msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors[key]++
	if _, ok := r.examples[key]; !ok {
		r.examples[key] = msg
	}
}

// snapshot is the CPU time of the watched processes and of this one, at
// one moment.
type snapshot struct {
	at   time.Time
	cpu  []time.Duration
	errs []error
	self time.Duration
}

func (r *runner) snapshot() (snapshot, error) {
	s := snapshot{at: time.Now(), self: selfCPU(), cpu: make([]time.Duration, len(r.cfg.Pids)), errs: make([]error, len(r.cfg.Pids))}
	for i, pid := range r.cfg.Pids {
		s.cpu[i], s.errs[i] = ProcessCPU(pid)
	}
	return s, errors.Join(s.errs...)
}
