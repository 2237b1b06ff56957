package blockbuilder

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unsafe"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/prometheus/prometheus/storage"

	"github.com/stratametrics/strata/internal/forwarding"
	"github.com/stratametrics/strata/limits"
	"github.com/stratametrics/strata/otlp"
	"github.com/stratametrics/strata/remotewrite"
	"github.com/stratametrics/strata/validation"
	"github.com/stratametrics/strata/writeerr"
)

// appendState is the scratch space of one write, pooled between requests.
// A write is a parsed remote-write request (req) or, when batch is set, a
// translated OTLP request, whose series are appended as the translator
// made them: they are not marshalled into a request to be parsed again.
type appendState struct {
	req   remotewrite.Request
	batch *otlp.Batch
	// translated is the memory of batch, kept between OTLP requests.
	translated otlp.Batch
	// series is the series being appended: decoded from req, or pointing
	// into the batch's labels for validation. Its histograms and exemplars
	// are appended from hists and exemplars; badExemplars are those that
	// could not be decoded.
	series       remotewrite.Series
	hists        []histogramSample
	exemplars    []exemplar.Exemplar
	badExemplars int
	builder      labels.ScratchBuilder
	key          []byte
	family       map[string]*metadata.Metadata
	// byKey holds, per series, its knownRefs key, the length of its 1.0
	// label bytes (0: none or 2.0) and the reference found (lookUpKnown).
	byKey []knownLookup
	refs  []uint32
}

type knownLookup struct {
	key    refKey
	runLen int
	keyed  bool // key is set: of a 1.0 label run, or of 2.0 symbols
	ref    storage.SeriesRef
}

type histogramSample struct {
	t, st int64
	h     *histogram.Histogram
	fh    *histogram.FloatHistogram
	err   error
}

// lookUpKnown fills st.byKey for every series of a request: the keys
// first, then the table's answers in a loop of their own, so that the
// CPU overlaps the reads, which mostly miss its caches, instead of
// waiting for each in turn.
func (st *appendState) lookUpKnown(k *knownRefs) {
	n := st.req.NumSeries()
	if cap(st.byKey) < n {
		st.byKey = make([]knownLookup, n)
	}
	st.byKey = st.byKey[:n]
	syms := st.req.Symbols()
	for i := range st.byKey {
		kl := &st.byKey[i]
		*kl = knownLookup{}
		if st.req.Version == remotewrite.V2 {
			refs, ok := st.req.LabelRefs(i, st.refs[:0])
			if st.refs = refs; ok && len(refs)%2 == 0 {
				st.key = st.key[:0]
				for _, ref := range refs {
					st.key = appendSized(st.key, syms[ref])
				}
				kl.key, kl.keyed = keyOfSymbols(st.key), true
			}
		} else if run, ok := st.req.LabelRun(i); ok {
			kl.key, kl.runLen, kl.keyed = keyOfRun(run), len(run), true
		}
	}
	for i := range st.byKey {
		if kl := &st.byKey[i]; kl.keyed {
			kl.ref, _ = k.get(kl.key)
		}
	}
}

// numSeries is the number of series of the write.
func (st *appendState) numSeries() int {
	if st.batch != nil {
		return st.batch.NumSeries()
	}
	return st.req.NumSeries()
}

// version is the remote-write version the write is checked as: a batch
// follows 2.0's rules (metadata per series, one kind of sample).
func (st *appendState) version() remotewrite.Version {
	if st.batch != nil {
		return remotewrite.V2
	}
	return st.req.Version
}

// loadPoints makes series i of the batch st.series, its labels and
// metadata pointing into the translator's, its histograms and exemplars
// in st.hists and st.exemplars.
func (st *appendState) loadPoints(i int) {
	points := st.batch.Series(i)
	s := &st.series
	s.Reset()
	points[0].Labels.Range(func(l labels.Label) {
		s.Labels = append(s.Labels, remotewrite.Label{Name: unsafeBytes(l.Name), Value: unsafeBytes(l.Value)})
	})
	md := points[0].Metadata
	s.Metadata = remotewrite.Metadata{Type: uint32(writev2.FromMetadataType(md.Type)), Help: unsafeBytes(md.Help), Unit: unsafeBytes(md.Unit)}
	st.hists, st.exemplars, st.badExemplars = st.hists[:0], st.exemplars[:0], 0
	for _, p := range points {
		if p.H != nil || p.FH != nil {
			s.Histograms = append(s.Histograms, remotewrite.Histogram{Timestamp: p.T})
			st.hists = append(st.hists, histogramSample{t: p.T, h: p.H, fh: p.FH})
		} else {
			s.Samples = append(s.Samples, remotewrite.Sample{Value: p.V, Timestamp: p.T})
		}
		st.exemplars = append(st.exemplars, p.Exemplars...)
	}
}

// decodeRest decodes the histograms and exemplars of st.series, a series
// of st.req, into st.hists and st.exemplars.
func (st *appendState) decodeRest() {
	st.hists, st.exemplars, st.badExemplars = st.hists[:0], st.exemplars[:0], 0
	for _, hs := range st.series.Histograms {
		h, fh, err := remotewrite.DecodeHistogram(hs)
		st.hists = append(st.hists, histogramSample{t: hs.Timestamp, st: hs.StartTimestamp, h: h, fh: fh, err: err})
	}
	for _, raw := range st.series.Exemplars {
		e, err := st.req.DecodeExemplar(&st.builder, raw)
		if err != nil {
			st.badExemplars++
			continue
		}
		st.exemplars = append(st.exemplars, e)
	}
}

// release drops what the write's scratch space holds of the request, for
// the pool to keep only memory.
func (st *appendState) release() {
	if st.batch != nil {
		st.batch.Reset()
	}
	st.batch = nil
	clear(st.hists)
	clear(st.exemplars)
	st.series.Reset()
}

func unsafeBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// seriesTarget is where one series of a request goes: its reference in
// the head (0 for a new series), its labels and its metadata.
type seriesTarget struct {
	ref  storage.SeriesRef
	lset labels.Labels
	meta *metadata.Metadata
	// byKey: ref came from t.known, without labels; if it fails its
	// first append, appendSeries answers errStaleRef having stored
	// nothing, for the series to be looked up by its labels.
	byKey bool
}

// errStaleRef is appendSeries' answer to a reference from t.known that
// the head no longer holds.
var errStaleRef = errors.New("the head no longer holds the series of a known reference")

// appendResult is what one write stored and what it refused, by series.
type appendResult struct {
	written  forwarding.Written
	rejected []forwarding.Rejection
	// dropped lists the written series that lost exemplars (a rejected
	// series counts its own in its Rejection), for the router's
	// exemplars written header. Nil unless something was dropped.
	dropped []forwarding.ExemplarDrop
	// exemplarsDropped counts exemplars the TSDB refused or had no storage
	// for; like Prometheus, they do not fail the write.
	exemplarsDropped int
}

// conflictError tells whether a TSDB append error means the sample
// clashes with what is stored, as opposed to being invalid; both are
// answered 400, but the router's quorum tells them apart.
func conflictError(err error) bool {
	return errors.Is(err, storage.ErrOutOfOrderSample) ||
		errors.Is(err, storage.ErrOutOfBounds) ||
		errors.Is(err, storage.ErrDuplicateSampleForTimestamp) ||
		errors.Is(err, storage.ErrTooOldSample)
}

func invalidError(err error) bool {
	var he histogram.Error
	return errors.As(err, &he) || errors.Is(err, storage.ErrNativeHistogramsDisabled)
}

// appendRequest writes every valid series of st.req into the tenant's head
// in one transaction. Problems of single series are returned as
// rejections and the rest is written. An error means nothing was written:
// errTenantClosed (the caller reopens the tenant and tries again),
// writeerr.ErrTooLarge (more samples than a request may hold: retrying
// cannot help) or writeerr.ErrUnavailable (the WAL or the head failed:
// the sender may retry). tl are the tenant's limits in the set of the
// given version.
func (t *tenantDB) appendRequest(ctx context.Context, st *appendState, version uint64, tl *limits.Tenant, nowMs int64) (res appendResult, err error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closed {
		return res, errTenantClosed
	}
	if err := t.applyLimits(version, tl); err != nil {
		return res, fmt.Errorf("%w: tenant %s: %v", writeerr.ErrUnavailable, t.id, err)
	}
	lim := &tl.Limits
	maxSeries := uint64(tl.MaxSeriesPerTenant)
	app := t.db.AppenderV2(ctx)
	exApp, ok := app.(storage.ExemplarAppenderV2)
	if !ok {
		_ = app.Rollback()
		return res, fmt.Errorf("tenant %s: the TSDB appender does not take exemplars (%T)", t.id, app)
	}
	defer func() {
		if err != nil {
			_ = app.Rollback()
		}
	}()

	getRef, _ := app.(storage.GetRef)
	req := &st.req
	rwv := st.version()
	if st.batch == nil && rwv == remotewrite.V1 && req.NumMetadata() > 0 {
		st.loadFamilies()
	}
	// 1.0 series are found by their label bytes, unless the request
	// carries metadata, which is matched by metric name; 2.0 series by
	// their labels once decoded (which, in place in the symbols, costs
	// little).
	byKeys := st.batch == nil && (rwv == remotewrite.V2 || len(st.family) == 0)
	if byKeys {
		st.lookUpKnown(t.known)
	}
	headSeries := t.db.Head().NumSeries
	total := 0
	sortFirst := false
	for i := 0; i < st.numSeries(); i++ {
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("%w: %v", writeerr.ErrUnavailable, err)
		}
		s := &st.series
		var kl knownLookup
		if byKeys {
			kl = st.byKey[i]
		}
	lookUp:
		var (
			ref                 storage.SeriesRef
			lset                labels.Labels
			h                   uint64
			built, known, byKey bool
		)
		if kl.ref != 0 && kl.runLen > 0 && req.SeriesSkipLabels(i, kl.runLen, s) && len(s.Samples)+len(s.Histograms) > 0 {
			ref, h, byKey = kl.ref, kl.key.a, true
		}
		if byKey {
			// Found by its label bytes: neither decoded nor built.
		} else if st.batch != nil {
			// The translator built the labels, sorted and unique; a new
			// series owns them.
			st.loadPoints(i)
			lset, h, built = st.batch.Series(i)[0].Labels, st.batch.Hash(i), true
			if getRef != nil {
				if r, l := getRef.GetRef(lset, h); r != 0 {
					ref, lset, built = r, l, false
				}
			}
		} else {
			if err := req.Series(i, s); err != nil {
				res.reject(i, err, 0, 0, 0)
				continue
			}
			if rwv == remotewrite.V2 && kl.ref != 0 && len(s.Samples)+len(s.Histograms) > 0 {
				// Known by its symbols: decoding 2.0 labels costs little.
				ref, h, byKey = kl.ref, kl.key.a, true
			}
		}
		if byKey || st.batch != nil {
			// Found by key, or looked up above.
		} else {
			// A series in the head already skips building and checking
			// its labels. The head holds labels sorted, so a hit means the
			// wire labels were sorted too; a miss may be a known series
			// sent with its labels in another order, looked up again once
			// sorted. A sender that does not sort sends every series so:
			// once one is found, the rest of the request is sorted before
			// the lookup.
			if sortFirst {
				validation.SortLabels(s.Labels)
			}
			ref, lset, h, built = st.lookUp(getRef, s.Labels)
			if ref == 0 && !sortFirst && validation.SortLabels(s.Labels) {
				sortFirst = true
				ref, lset, h, built = st.lookUp(getRef, s.Labels)
			}
			if kl.keyed {
				// The metadata of a series is kept under one hash,
				// whichever way it was found.
				h = kl.key.a
			}
		}
		if total += len(s.Samples) + len(s.Histograms); total > lim.MaxSamplesPerRequest {
			return appendResult{}, fmt.Errorf("%w: more than %d samples in one request", writeerr.ErrTooLarge, lim.MaxSamplesPerRequest)
		}
		known = ref != 0
		var invalid error
		if known {
			invalid = lim.CheckSamples(rwv, s, nowMs)
		} else {
			invalid = lim.CheckSeries(rwv, s, nowMs)
		}
		if invalid != nil {
			res.reject(i, invalid, len(s.Samples), len(s.Histograms), st.numExemplars())
			continue
		}
		if !known && maxSeries > 0 {
			if n := t.db.Head().NumSeries(); n >= maxSeries {
				res.reject(i, fmt.Errorf("%w: tenant %s has %d series in this block builder's head, the most its max_series_per_tenant (STRATA_MAX_SERIES_PER_TENANT) allows; a new series is refused", writeerr.ErrTooLarge, t.id, n),
					len(s.Samples), len(s.Histograms), st.numExemplars())
				continue
			}
		}
		if st.batch == nil {
			if !known && !built {
				lset = remotewrite.BuildLabels(&st.builder, s.Labels)
			}
			st.decodeRest()
		}
		var last *metadata.Metadata
		if rwv == remotewrite.V2 && !s.Metadata.IsEmpty() {
			last = t.meta.get(h)
		}
		e := seriesTarget{ref: ref, lset: lset, meta: st.metadataOf(rwv, s, lset, last), byKey: byKey}
		appended, fatal := t.appendSeries(exApp, st, i, e, &res)
		if fatal == errStaleRef {
			total -= len(s.Samples) + len(s.Histograms)
			kl.ref = 0
			goto lookUp
		}
		if fatal != nil {
			return res, fatal
		}
		if kl.keyed && !byKey && appended != 0 {
			t.known.put(kl.key, appended, headSeries)
		}
		if appended != 0 && rwv == remotewrite.V2 && e.meta != nil && e.meta != last {
			t.meta.put(h, e.meta)
		}
	}
	if err := app.Commit(); err != nil {
		// The commit writes the WAL; failing it (disk full, I/O error)
		// rolls back, and the sender must retry.
		t.walFailedAt.Store(nowMs)
		t.walFailed.Store(true)
		return appendResult{}, fmt.Errorf("%w: tenant %s: write WAL: %v", writeerr.ErrUnavailable, t.id, err)
	}
	t.lastWrite.Store(nowMs)
	return res, nil
}

// appendSeries appends one validated series and returns its reference in
// the head (0 if nothing was appended). Only errors that make the whole
// write fail are returned.
func (t *tenantDB) appendSeries(app storage.ExemplarAppenderV2, st *appendState, i int, e seriesTarget, res *appendResult) (storage.SeriesRef, error) {
	s := &st.series
	ls, ref := e.lset, e.ref
	var opts storage.AOptions
	if e.meta != nil {
		opts.Metadata = *e.meta
	}
	var (
		badSamples, badHst int
		firstErr           error
	)
	note := func(err error) error {
		if !conflictError(err) && !invalidError(err) {
			return fmt.Errorf("%w: tenant %s: append: %v", writeerr.ErrUnavailable, t.id, err)
		}
		if firstErr == nil {
			firstErr = err
		}
		return nil
	}
	// Until an append takes it, a reference found by key may be stale.
	unproven := e.byKey
	for _, smp := range s.Samples {
		r, err := app.Append(ref, ls, smp.StartTimestamp, smp.Timestamp, smp.Value, nil, nil, opts)
		if err != nil && !errors.Is(err, (*storage.AppendPartialError)(nil)) {
			if unproven {
				return 0, errStaleRef
			}
			if err := note(err); err != nil {
				return 0, err
			}
			badSamples++
			continue
		}
		ref, unproven = r, false
		res.written.Samples++
	}
	for _, hs := range st.hists {
		err := hs.err
		if err == nil {
			var r storage.SeriesRef
			r, err = app.Append(ref, ls, hs.st, hs.t, 0, hs.h, hs.fh, opts)
			if err == nil || errors.Is(err, (*storage.AppendPartialError)(nil)) {
				ref, unproven = r, false
				res.written.Histograms++
				continue
			}
			if unproven {
				return 0, errStaleRef
			}
		}
		if errors.Is(err, writeerr.ErrInvalid) {
			firstErr = cmpOr(firstErr, err)
		} else if err := note(err); err != nil {
			return 0, err
		}
		badHst++
	}
	// Exemplars are appended even when some samples were refused: they
	// belong to the series, not to one sample.
	lost := 0
	if n := st.numExemplars(); n > 0 {
		stored := t.appendExemplars(app, st, ref, ls, res)
		res.written.Exemplars += stored
		lost = n - stored
	}
	switch {
	case firstErr != nil:
		res.reject(i, firstErr, badSamples, badHst, lost)
	case lost > 0:
		res.dropped = append(res.dropped, forwarding.ExemplarDrop{Series: i, Exemplars: lost})
	}
	return ref, nil
}

// numExemplars is the number of exemplars of st.series, decoded or not.
func (st *appendState) numExemplars() int {
	if st.batch != nil {
		return len(st.exemplars)
	}
	return len(st.series.Exemplars)
}

// appendExemplars appends a series' exemplars (st.exemplars) and returns
// how many were stored. Like Prometheus, refused exemplars (out of order,
// too long labels) are counted, not failed: they are advisory and
// retrying would not fix them.
func (t *tenantDB) appendExemplars(app storage.ExemplarAppenderV2, st *appendState, ref storage.SeriesRef, ls labels.Labels, res *appendResult) int {
	res.exemplarsDropped += st.badExemplars
	exs := st.exemplars
	if len(exs) == 0 {
		return 0
	}
	if !t.keepExemplars.Load() {
		// The tenant's max_exemplars is 0: the TSDB would take them
		// without error and keep none.
		res.exemplarsDropped += len(exs)
		return 0
	}
	if err := t.growRing(); err != nil {
		t.logger.Warn("exemplars dropped", "err", err)
		res.exemplarsDropped += len(exs)
		return 0
	}
	slices.SortFunc(exs, exemplar.Compare)
	_, err := app.AppendExemplars(ref, ls, exs)
	if err == nil {
		return len(exs)
	}
	var pErr *storage.AppendPartialError
	if errors.As(err, &pErr) {
		failed := map[int]bool{}
		for _, e := range pErr.ExemplarErrors {
			failed[e.Index] = true
		}
		res.exemplarsDropped += len(failed)
		return len(exs) - len(failed)
	}
	res.exemplarsDropped += len(exs)
	return 0
}

// reject records a refused series with what of it was not stored.
func (r *appendResult) reject(i int, err error, samples, histograms, exemplars int) {
	r.rejected = append(r.rejected, forwarding.Rejection{
		Series: i, Kind: forwarding.KindOf(classify(err)), Reason: err.Error(),
		Samples: samples, Histograms: histograms, Exemplars: exemplars,
	})
}

// classify maps TSDB errors onto the remote-write kinds.
func classify(err error) error {
	switch {
	case conflictError(err):
		return fmt.Errorf("%w: %v", writeerr.ErrConflict, err)
	case invalidError(err):
		return fmt.Errorf("%w: %v", writeerr.ErrInvalid, err)
	}
	return err
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// loadFamilies indexes 1.0 metadata (sent per metric family) by family.
func (st *appendState) loadFamilies() {
	if st.family == nil {
		st.family = map[string]*metadata.Metadata{}
	}
	clear(st.family)
	for i := 0; i < st.req.NumMetadata(); i++ {
		m, err := st.req.Metadata(i)
		if err != nil || len(m.MetricFamilyName) == 0 {
			continue
		}
		md := m.ToMetadata()
		st.family[string(m.MetricFamilyName)] = &md
	}
}

// familySuffixes are the series name suffixes of one metric family
// (histograms, summaries, counters' _total and OpenMetrics' _created).
var familySuffixes = []string{"_bucket", "_count", "_sum", "_total", "_created", "_info"}

// metadataOf finds the metadata of a series: its own in 2.0, its metric
// family's in 1.0 (nil when there is none). last is what the series had
// before; it is returned as it is when unchanged, so that steady traffic
// copies no strings.
func (st *appendState) metadataOf(v remotewrite.Version, s *remotewrite.Series, ls labels.Labels, last *metadata.Metadata) *metadata.Metadata {
	if v == remotewrite.V2 {
		if s.Metadata.IsEmpty() {
			return nil
		}
		if sameMetadata(last, s.Metadata) {
			return last
		}
		m := s.Metadata.ToMetadata()
		return &m
	}
	if len(st.family) == 0 {
		return nil
	}
	name := ls.Get(model.MetricNameLabel)
	if m, ok := st.family[name]; ok {
		return m
	}
	for _, suf := range familySuffixes {
		if base, ok := strings.CutSuffix(name, suf); ok {
			if m, ok := st.family[base]; ok {
				return m
			}
		}
	}
	return nil
}
