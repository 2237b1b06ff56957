package functions

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/stratametrics/strata/internal/forwarding"
	"github.com/stratametrics/strata/limits"
	"github.com/stratametrics/strata/remotewrite"
	"github.com/stratametrics/strata/shard"
	"github.com/stratametrics/strata/writeerr"
)

// seriesInfo is what the router keeps of each series between routing and
// answering.
type seriesInfo struct {
	routed                         bool // false when the router refused the series
	samples, histograms, exemplars int32
	ok, rejected                   uint8 // replicas that wrote it / refused it by name
	// exDropped is the most exemplars a replica that wrote the series
	// did not store; the rej* fields are the most a replica that refused
	// it did not store.
	exDropped                               int32
	rejSamples, rejHistograms, rejExemplars int32
	rejKind, rejReason                      string
}

// writeState is the scratch space of one request, pooled.
type writeState struct {
	compressed, raw *remotewrite.Buffer
	req             remotewrite.Request
	series          remotewrite.Series
	hasher          shard.Hasher
	// owners of the series being routed; knownOwners those of every
	// series found in the known-series table, rf per series.
	owners, knownOwners []int32

	// keys and hashes of the series in the known-series table (a zero
	// key: not looked up, a zero hash: not found), and the length of
	// their label bytes.
	keys, hashes []uint64
	runs         []int32
	// keysReady: keys and runs are set already (by relabel), for
	// lookUpKnown to look up.
	keysReady bool

	info []seriesInfo
	// epSeries lists, per endpoint ID, the series sent to it, in order.
	// When every endpoint of the hashring owns every series, they all
	// share one list, routed (and aliased is set).
	epSeries [][]int32
	routed   []int32
	aliased  bool
	touched  []int
	rejected []forwarding.Rejection

	// Relabeling (relabel.go): the rewritten request's body, set
	// rewritten, and the series refused before routing.
	rewrite     remotewrite.Rewrite
	relabelBody []byte
	relabelKeys []uint64
	relabelRuns []int32
	// 2.0: the hash of each symbol, every series' label references (from
	// refStarts[i] to refStarts[i+1]), and a relabeled series' new ones.
	symHashes    []uint64
	labelRefs    []uint32
	refStarts    []int32
	newRefs      []uint32
	outcomes     []relabelOutcome
	hit          []bool
	rewritten    bool
	refusedEarly []forwarding.Rejection
	builder      labels.ScratchBuilder
	relabeled    []remotewrite.Label
	// haBody is the request without its HA replica label (ha.go).
	haBody []byte
	// framing builds parts as framed streams (framed.go).
	framing framing
}

func (st *writeState) reset(numEndpoints int) {
	st.info = st.info[:0]
	for _, e := range st.touched {
		if st.aliased {
			// Shared with the others: appending would write into theirs.
			st.epSeries[e] = nil
		} else {
			st.epSeries[e] = st.epSeries[e][:0]
		}
	}
	st.aliased = false
	st.routed = st.routed[:0]
	st.touched = st.touched[:0]
	if cap(st.epSeries) < numEndpoints {
		st.epSeries = make([][]int32, numEndpoints)
	}
	st.epSeries = st.epSeries[:numEndpoints]
	st.rejected = append(st.rejected[:0], st.refusedEarly...)
}

// handleWrite is the remote-write endpoint.
func (r *Router) handleWrite(w http.ResponseWriter, req *http.Request) {
	counted := r.drain.enter()
	defer r.drain.leave(counted)
	start := time.Now()
	st := r.states.Get().(*writeState)
	st.compressed, st.raw = r.compressed.Get(), r.raw.Get()
	tenant, out := r.write(req, st)
	r.respond(w, out)
	now := time.Now()
	r.metrics.observe(tenant, out, now.Sub(start), now)
	// The buffers may still be read by parts being sent in the background
	// after the answer was decided; those parts hold their own copies.
	r.compressed.Put(st.compressed)
	r.raw.Put(st.raw)
	st.compressed, st.raw = nil, nil
	r.states.Put(st)
}

// outcome is the decided answer to a write.
type outcome struct {
	// version is the request's, 0 until negotiated.
	version remotewrite.Version
	written forwarding.Written
	err     error
	series  int
	// status is the HTTP status answered when it is not err's (OTLP).
	status int
	// relabelDropped is how many series the tenant's relabeling dropped,
	// relabelHeld what they held: accepted, not stored.
	relabelDropped int
	relabelHeld    forwarding.Written
	// haHeld is what a request of an HA replica not elected held:
	// accepted, not stored.
	haHeld forwarding.Written
}

// httpStatus is the status the outcome was answered with.
func (o outcome) httpStatus() int {
	if o.status != 0 {
		return o.status
	}
	return writeerr.HTTPStatus(o.err)
}

func (r *Router) write(hreq *http.Request, st *writeState) (tenant string, out outcome) {
	version, err := remotewrite.Negotiate(hreq.Header)
	if err != nil {
		return "", outcome{err: err}
	}
	defer func() { out.version = version }()
	tenant, tl, seed, err := r.admit(hreq)
	if err != nil {
		return tenant, outcome{err: err}
	}
	if err := remotewrite.ReadBody(st.compressed, hreq.Body, hreq.ContentLength, tl.MaxBodyBytes); err != nil {
		return tenant, outcome{err: err}
	}
	if err := remotewrite.DecodeSnappy(st.raw, st.compressed.B, tl.MaxDecodedBytes); err != nil {
		return tenant, outcome{err: err}
	}
	if err := st.req.Parse(version, st.raw.B); err != nil {
		return tenant, outcome{err: err}
	}
	return tenant, r.writeParsed(hreq, st, tenant, tl, seed, version)
}

// admit finds a request's tenant (its header, the default, or its client
// certificate), checks its credentials for that tenant and returns the
// tenant's limits and known-series seed. Every protocol's write comes
// through here.
func (r *Router) admit(hreq *http.Request) (string, *limits.Tenant, uint64, error) {
	tenant, err := r.tenancy.Tenant(hreq.Header, hreq.TLS)
	if err != nil {
		return "", nil, 0, err
	}
	if err := r.authorize(hreq, tenant); err != nil {
		return "", nil, 0, err
	}
	seed, tl := r.limits.knownSeed(tenant)
	return tenant, tl, seed, nil
}

// writeParsed routes a parsed request (st.req) to its owners and decides
// the answer: the write path of every protocol once its body is a
// remote-write request.
func (r *Router) writeParsed(hreq *http.Request, st *writeState, tenant string, tl *limits.Tenant, seed uint64, version remotewrite.Version) outcome {
	if r.cfg.SplitTenantLabel != "" {
		if out, split := r.writeSplit(hreq, st, tenant, version); split {
			return out
		}
	}
	return r.writeTenant(hreq, st, tenant, tl, seed, version, false)
}

// writeTenant writes a parsed request of one tenant; rewritten says that
// st.req is not the sender's body, which then is never forwarded as is.
func (r *Router) writeTenant(hreq *http.Request, st *writeState, tenant string, tl *limits.Tenant, seed uint64, version remotewrite.Version, rewritten bool) outcome {
	if n := st.req.NumSeries(); n > tl.MaxSeriesPerRequest {
		return outcome{err: fmt.Errorf("%w: %d series in one request, the limit is %d", writeerr.ErrTooLarge, n, tl.MaxSeriesPerRequest)}
	}
	st.rewritten, st.refusedEarly, st.keysReady = rewritten, st.refusedEarly[:0], false
	if tl.HA.Accept {
		held, dropped, err := r.dedupHA(hreq.Context(), st, tenant, &tl.HA)
		if err != nil {
			return outcome{err: err}
		}
		if dropped {
			// Mimir's answer to the replica not elected.
			return outcome{haHeld: held, status: http.StatusAccepted}
		}
	}
	var (
		dropped int
		held    forwarding.Written
	)
	if len(tl.MetricRelabelConfigs) > 0 {
		var err error
		if dropped, held, err = r.relabel(st, tl, seed); err != nil {
			return outcome{err: err}
		}
	}
	out := r.writeRouted(hreq, st, tenant, tl, seed, version)
	out.relabelDropped, out.relabelHeld = dropped, held
	return out
}

// writeRouted is writeParsed after relabeling.
func (r *Router) writeRouted(hreq *http.Request, st *writeState, tenant string, tl *limits.Tenant, seed uint64, version remotewrite.Version) outcome {
	ring := r.ring.Ring()
	hr, err := ring.ForTenant(tenant)
	if err != nil {
		return outcome{err: fmt.Errorf("%w: %v", writeerr.ErrInvalid, err)}
	}
	total, err := r.route(st, hr, len(ring.Endpoints()), tenant, tl, seed)
	if err != nil {
		return outcome{err: err}
	}
	if !r.limits.allow(tenant, tl, total, time.Now()) {
		return outcome{err: fmt.Errorf("%w: tenant %s is over its ingestion rate of %g samples/s", writeerr.ErrRateLimited, tenant, tl.IngestionRate)}
	}
	results := r.fanOut(hreq.Context(), st, r.eps.of(ring), version, tenant, Quorum(hr.ReplicationFactor()))
	return r.decide(st, results, Quorum(hr.ReplicationFactor()))
}

// authorize checks the bearer token when tokens are configured.
func (r *Router) authorize(hreq *http.Request, tenant string) error {
	if r.tokens == nil {
		return nil
	}
	return r.tokens.Authorize(hreq.Header, tenant)
}

// route validates each series, finds its owners and lists for each
// endpoint the series it gets. It returns the number of samples plus
// histogram samples.
//
// A series the router knows (see knownSeries) has its labels neither
// decoded nor checked again, and its hash comes from the table.
func (r *Router) route(st *writeState, hr *shard.Hashring, numEndpoints int, tenant string, tl *limits.Tenant, seed uint64) (int, error) {
	st.reset(numEndpoints)
	req, s := &st.req, &st.series
	nowMs := time.Now().UnixMilli()
	total := 0
	everyone := hr.ReplicationFactor() == len(hr.Endpoints())
	r.lookUpKnown(st, seed)
	rf := hr.ReplicationFactor()
	if !everyone && r.known != nil {
		st.knownOwners = hr.OwnersEach(st.hashes, st.knownOwners[:0])
	}
	for i := 0; i < req.NumSeries(); i++ {
		st.info = append(st.info, seriesInfo{})
		info := &st.info[i]
		var (
			key, hash = st.keys[i], st.hashes[i]
			known     = hash != 0
			err       error
		)
		if known {
			// The table knows these label bytes: decode the rest.
			if !req.SeriesSkipLabels(i, int(st.runs[i]), s) {
				known = false
			}
		}
		if known {
			err = tl.CheckSamples(req.Version, s, nowMs)
		} else {
			err = req.Series(i, s)
			if err == nil {
				err = tl.CheckSeries(req.Version, s, nowMs)
			}
		}
		if err != nil {
			st.rejected = append(st.rejected, forwarding.Rejection{Series: i, Kind: forwarding.KindOf(err), Reason: err.Error()})
			continue
		}
		if !known {
			st.hasher.Reset(tenant)
			for _, l := range s.Labels {
				st.hasher.Add(l.Name, l.Value)
			}
			hash = st.hasher.Sum64()
			st.hashes[i] = hash // for the late writes (order.go)
			if key != 0 {
				r.known.put(key, hash)
			}
		}
		info.samples, info.histograms, info.exemplars = int32(len(s.Samples)), int32(len(s.Histograms)), int32(len(s.Exemplars))
		if total += len(s.Samples) + len(s.Histograms); total > tl.MaxSamplesPerRequest {
			return total, fmt.Errorf("%w: more than %d samples in one request", writeerr.ErrTooLarge, tl.MaxSamplesPerRequest)
		}
		info.routed = true
		if everyone {
			// Every endpoint owns every series: no hash can change that.
			st.routed = append(st.routed, int32(i))
			continue
		}
		var owners []int32
		if known {
			owners = st.knownOwners[i*rf : i*rf+rf]
		} else {
			st.owners = hr.OwnersEach(st.hashes[i:i+1], st.owners[:0])
			owners = st.owners
		}
		for _, e := range owners {
			if len(st.epSeries[e]) == 0 {
				st.touched = append(st.touched, int(e))
			}
			st.epSeries[e] = append(st.epSeries[e], int32(i))
		}
	}
	if everyone && len(st.routed) > 0 {
		for _, e := range hr.Endpoints() {
			st.epSeries[e] = st.routed
			st.touched = append(st.touched, e)
		}
		st.aliased = true
	}
	return total, nil
}

// lookUpKnown fills st.keys and st.hashes for every series of the request
// (zeros where the table is off or does not know the series). The keys
// are computed first, unless relabeling has (st.keysReady), and the table
// read in a loop of its own, so that the CPU overlaps the reads, which
// mostly miss its caches, instead of waiting for each in turn.
func (r *Router) lookUpKnown(st *writeState, seed uint64) {
	n := st.req.NumSeries()
	ready := st.keysReady && len(st.keys) == n && len(st.runs) == n
	st.keysReady = false
	st.hashes = grow(st.hashes, n)
	if r.known == nil {
		st.keys = grow(st.keys, n)
		return
	}
	if !ready {
		st.keys = grow(st.keys, n)
		if cap(st.runs) < n {
			st.runs = make([]int32, n)
		}
		st.runs = st.runs[:n]
		for i := 0; i < n; i++ {
			if run, ok := st.req.LabelRun(i); ok {
				st.keys[i] = knownKey(seed, xxhash.Sum64(run))
				st.runs[i] = int32(len(run))
			}
		}
	}
	for i, key := range st.keys {
		if key != 0 {
			st.hashes[i], _ = r.known.get(key)
		}
	}
}

// grow returns s with n zeros.
func grow(s []uint64, n int) []uint64 {
	if cap(s) < n {
		return make([]uint64, n)
	}
	s = s[:n]
	clear(s)
	return s
}

// fanOut sends every endpoint its part in parallel and returns the answers
// gathered until the outcome is decided: all answered, or every series
// stored on a quorum. Parts still in flight then finish in the background:
// they become late writes that later writes of their series to the same
// block builder wait for (see order.go), and their answers are counted.
func (r *Router) fanOut(ctx context.Context, st *writeState, eps []*endpoint, v remotewrite.Version, tenant string, quorum int) []forwardResult {
	n := len(st.touched)
	if n == 0 {
		return nil
	}
	// The parts outlive this request when the answer is decided early, so
	// they are detached from its context and own their bodies.
	ctx = context.WithoutCancel(ctx)
	// The sender's body is forwarded as it is when every series of it is.
	whole := len(st.rejected) == 0 && !st.rewritten
	fo := &fan{results: make(chan forwardResult, n)}
	// Endpoints that get every series share one copy of the sender's body;
	// endpoints that share one list of series (st.aliased) share one part
	// made of it. This loop holds a reference to the shared body until
	// every sender has taken theirs, so that a fast first sender cannot
	// recycle it under the others.
	var shared *sharedBody
	// Framed parts are compressed once for all block builders that take
	// them, when the first of them needs its part.
	framed, triedFramed := false, false
	for k, e := range st.touched {
		var body *sharedBody
		if st.aliased || whole && len(st.epSeries[e]) == st.req.NumSeries() {
			if shared == nil {
				shared = &sharedBody{pool: r.compressed}
				if whole {
					shared.buf = r.compressed.Get()
					shared.buf.B = append(shared.buf.B, st.compressed.B...)
				} else {
					shared.buf = r.partBody(st, e)
				}
				shared.refs.Add(1)
			}
			body = shared
		} else {
			takesFramed := r.cfg.ForwardFramed && eps[e].framed.Load()
			if !triedFramed && takesFramed {
				triedFramed = true
				framed = r.prepareFramed(st)
			}
			if framed && takesFramed {
				body = &sharedBody{pool: r.compressed, buf: r.framedBody(st, k, e), enc: remotewrite.SnappyFramed}
			} else {
				body = &sharedBody{pool: r.compressed, buf: r.partBody(st, e)}
			}
		}
		body.refs.Add(1)
		after := eps[e].late.before(st.hashes, st.epSeries[e], nil)
		r.forwards.Add(1)
		go r.forward(ctx, fo, k, eps[e], e, v, tenant, body, after, len(st.epSeries[e]))
	}
	r.doneFramed(st)
	if shared != nil {
		shared.release()
	}
	out := r.gather(st, fo.results, n, quorum)
	if len(out) < n {
		r.answeredEarly(fo, st, eps, out)
	}
	return out
}

// fan is what the parts of one request share with the request.
type fan struct {
	results chan forwardResult // buffered: no part ever waits to hand in its answer
	mu      sync.Mutex
	// decided is set once the request is answered; flights then holds,
	// by part (index in touched), those that were still running.
	decided bool
	flights []*flight
}

// forward sends one part and hands in its answer: to the request while it
// waits, or, once it was answered, to the metrics and the late writes.
func (r *Router) forward(ctx context.Context, fo *fan, k int, ep *endpoint, e int, v remotewrite.Version, tenant string, body *sharedBody, after []*flight, series int) {
	defer r.forwards.Done()
	res := r.eps.send(ctx, ep, e, v, tenant, body.buf.B, body.enc, after)
	if res.status == http.StatusUnsupportedMediaType && body.enc == remotewrite.SnappyFramed {
		// A block builder that stopped taking framed bodies (rolled
		// back to a release before them): it gets its part as a block.
		res = r.eps.send(ctx, ep, e, v, tenant, r.reblock(body.buf.B), remotewrite.Snappy, nil)
	}
	body.release()
	res.series = series
	ep.answers[res.result()].Inc()
	fo.mu.Lock()
	if !fo.decided {
		fo.results <- res
		fo.mu.Unlock()
		return
	}
	f := fo.flights[k]
	fo.mu.Unlock()
	r.lateAnswer(ep, &res)
	if f != nil {
		ep.late.finish(f)
	}
}

// gather reads answers until every routed series is on a quorum or every
// part answered (with waitAll, until every part answered).
func (r *Router) gather(st *writeState, results <-chan forwardResult, n, quorum int) []forwardResult {
	out := make([]forwardResult, 0, n)
	if r.waitAll {
		for len(out) < n {
			out = append(out, <-results)
		}
		return out
	}
	if st.aliased {
		// Every part holds every routed series: they all reach quorum
		// with the quorum-th part written.
		written := 0
		for len(out) < n {
			res := <-results
			out = append(out, res)
			if res.status/100 == 2 {
				if written++; written == quorum {
					break
				}
			}
		}
		return out
	}
	pending := 0
	for i := range st.info {
		if st.info[i].routed {
			pending++
		}
	}
	for len(out) < n {
		res := <-results
		out = append(out, res)
		if res.status/100 != 2 {
			continue
		}
		for _, i := range st.epSeries[res.ep] {
			info := &st.info[i]
			info.ok++
			if int(info.ok) == quorum {
				pending--
			}
		}
		if pending == 0 {
			break
		}
	}
	// Undo the counting: decide recounts from the answers it is given.
	for i := range st.info {
		st.info[i].ok = 0
	}
	return out
}

// answeredEarly turns the parts of a request decided before all answered
// into late writes, before the sender hears the answer: its next batch
// then finds them, and waits for them at their block builders.
func (r *Router) answeredEarly(fo *fan, st *writeState, eps []*endpoint, out []forwardResult) {
	fo.mu.Lock()
	defer fo.mu.Unlock()
	fo.decided = true
	fo.flights = make([]*flight, len(st.touched))
	// Answers handed in after the decision but before this are late too.
	for drained := false; !drained; {
		select {
		case res := <-fo.results:
			out = append(out, res) // local: marks it answered below
			r.lateAnswer(eps[res.ep], &res)
		default:
			drained = true
		}
	}
	for k, e := range st.touched {
		if slices.ContainsFunc(out, func(res forwardResult) bool { return res.ep == e }) {
			continue
		}
		fo.flights[k] = eps[e].late.register(st.hashes, st.epSeries[e])
	}
}

// lateAnswer counts the answer of a part whose request was answered
// already. Every series of such a request was stored on a quorum, so the
// series it refused are minority rejections.
func (r *Router) lateAnswer(ep *endpoint, res *forwardResult) {
	kind := res.result()
	ep.afterQuorum[kind].Inc()
	if kind != resultRefused {
		return
	}
	if n := len(res.rejected); n > 0 {
		r.metrics.minorityRejections.Add(float64(n))
	} else {
		r.metrics.minorityRejections.Add(float64(res.series))
	}
}

// sharedBody is a compressed body sent to one or more endpoints, returned
// to its pool by the last sender.
type sharedBody struct {
	pool *remotewrite.BufferPool
	buf  *remotewrite.Buffer
	enc  remotewrite.Encoding
	refs atomic.Int32
}

func (b *sharedBody) release() {
	if b.refs.Add(-1) == 0 {
		b.pool.Put(b.buf)
	}
}

// partBody is a new compressed request for endpoint e made of the bytes of
// the series it owns.
func (r *Router) partBody(st *writeState, e int) *remotewrite.Buffer {
	out := r.compressed.Get()
	series := st.epSeries[e]
	raw := r.raw.Get()
	defer r.raw.Put(raw)
	req := &st.req
	size := req.PreambleBytes() + req.MetadataBytes()
	for _, i := range series {
		size += req.SeriesBytes(int(i))
	}
	if cap(raw.B) < size {
		raw.B = make([]byte, 0, size)
	}
	raw.B = req.AppendPreamble(raw.B[:0])
	for _, i := range series {
		raw.B = req.AppendSeries(raw.B, int(i))
	}
	raw.B = req.AppendMetadata(raw.B)
	remotewrite.EncodeSnappy(out, raw.B)
	return out
}
