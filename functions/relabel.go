package functions

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/relabel"

	"github.com/stratametrics/strata/internal/forwarding"
	"github.com/stratametrics/strata/limits"
	"github.com/stratametrics/strata/remotewrite"
)

// Relabeling at the router: a tenant's metric_relabel_configs rewrite the
// request before it is routed, so that what is hashed, validated and
// stored is the relabeled series. Series it keeps unchanged are copied as
// they are; relabeled ones are re-encoded (remotewrite.Rewrite); dropped
// ones count as accepted.
//
// Running the rules costs far more than routing a series, so their
// outcome is remembered per series (relabelCache): a 1.0 series by its
// label bytes, as the known-series table remembers hashes, a 2.0 one by
// the strings its label references name (each symbol hashed once per
// request). A series sent again, as every scrape sends it, costs a lookup
// and a copy. A 1.0 outcome hands routing the known-series key of the
// labels it leaves, so that they are not hashed a second time; a 2.0 one
// holds its new labels as the positions of the strings in the series'
// own labels, which are references into any request's symbol table.

// relabelKind is what a tenant's rules do to one series.
type relabelKind uint8

const (
	// relabelSame keeps the series as it is.
	relabelSame relabelKind = iota
	relabelDrop
	// relabelRewrite gives the series other labels.
	relabelRewrite
	// relabelRefuse refuses the series: the rules leave its labels
	// invalid.
	relabelRefuse
)

// relabelOutcome is what a tenant's rules do to one series.
type relabelOutcome struct {
	kind relabelKind
	// entry is a rewrite's: the known-series key of its labels (8 bytes,
	// little-endian; 0 for 2.0), then the labels, for 1.0 the series'
	// label fields (remotewrite.AppendLabelFields), for 2.0 their sources
	// (see appendSources). It may point into the cache: never written.
	// The cache hands it out without reading it, so that a lookup costs
	// one read of the table, and the entry is read where it is copied.
	entry []byte
	// refusal, for relabelRefuse, says why, naming the rule.
	refusal *forwarding.Rejection
}

// labels are a rewrite's labels (see entry).
func (o *relabelOutcome) labels() []byte { return o.entry[8:] }

// knownKey is the known-series key of a 1.0 rewrite's labels.
func (o *relabelOutcome) knownKey() uint64 { return binary.LittleEndian.Uint64(o.entry) }

// relabel applies the tenant's rules to st.req and parses the result back
// into st.req. Series whose relabeled labels are invalid go to
// st.refusedEarly. It returns the series dropped and what they held.
func (r *Router) relabel(st *writeState, tl *limits.Tenant, seed uint64) (dropped int, held forwarding.Written, err error) {
	req := &st.req
	n := req.NumSeries()
	v1 := req.Version == remotewrite.V1
	// The keys first, then every lookup under one lock, so that the
	// lookups' cache misses overlap (as lookUpKnown does).
	st.relabelKeys = grow(st.relabelKeys, n)
	st.relabelRuns = slices.Grow(st.relabelRuns[:0], n)[:n]
	if v1 {
		for i := range n {
			run, ok := req.LabelRun(i)
			if ok {
				st.relabelKeys[i] = knownKey(seed, xxhash.Sum64(run))
			}
			st.relabelRuns[i] = int32(len(run))
		}
	} else {
		clear(st.relabelRuns) // no label run: SeriesSkipLabels is 1.0's
		st.relabelKeysV2(seed)
	}
	st.outcomes = slices.Grow(st.outcomes[:0], n)[:n]
	st.hit = slices.Grow(st.hit[:0], n)[:n]
	c := r.relabelCache
	c.mu.Lock()
	c.warm(st.relabelKeys)
	for i, key := range st.relabelKeys {
		st.outcomes[i], st.hit[i] = relabelOutcome{}, false
		if key != 0 {
			st.outcomes[i], st.hit[i] = c.get(key)
		}
	}
	c.mu.Unlock()
	st.rewrite.Reset(req, st.relabelBody)
	// The known-series keys of the rewritten request, for routing: a
	// series kept has the key its labels had here, a relabeled one its
	// outcome's.
	known := v1 && r.known != nil
	st.keys, st.runs = st.keys[:0], st.runs[:0]
	for i := range n {
		o := &st.outcomes[i]
		if !st.hit[i] {
			var remember bool
			*o, remember = r.relabelSeries(st, i, tl, seed)
			if key := st.relabelKeys[i]; key != 0 && remember {
				c.mu.Lock()
				c.put(key, *o)
				c.mu.Unlock()
			}
		}
		if o.kind == relabelRewrite && !v1 && !st.resolveSources(i, o.labels()) {
			// Sources that do not fit the series come only from a key that
			// two series share (a chance of 2^-64): its own outcome, then.
			*o, _ = r.relabelSeries(st, i, tl, seed)
			if o.kind == relabelRewrite && !st.resolveSources(i, o.labels()) {
				return 0, held, fmt.Errorf("relabel series %d: its labels do not match its label references", i)
			}
		}
		switch o.kind {
		case relabelDrop:
			dropped++
			s := &st.series
			if req.SeriesSkipLabels(i, int(st.relabelRuns[i]), s) || req.Series(i, s) == nil {
				held.Add(forwarding.Written{Samples: len(s.Samples), Histograms: len(s.Histograms), Exemplars: len(s.Exemplars)})
			}
		case relabelRefuse:
			rj := *o.refusal
			rj.Series = i
			st.refusedEarly = append(st.refusedEarly, rj)
		case relabelSame:
			st.rewrite.Keep(i)
			if known {
				st.keys, st.runs = append(st.keys, st.relabelKeys[i]), append(st.runs, st.relabelRuns[i])
			}
		case relabelRewrite:
			if v1 {
				fields := o.labels()
				err = st.rewrite.WithLabelFieldsAfter(i, int(st.relabelRuns[i]), fields)
				if known {
					st.keys, st.runs = append(st.keys, o.knownKey()), append(st.runs, int32(len(fields)))
				}
			} else {
				err = st.rewrite.WithLabelRefs(i, st.newRefs)
			}
		}
		if err != nil {
			return 0, held, err
		}
	}
	st.relabelBody = st.rewrite.Finish()
	st.rewritten = true
	if err := req.Parse(req.Version, st.relabelBody); err != nil {
		return 0, held, err
	}
	st.keysReady = known
	return dropped, held, nil
}

// relabelKeysV2 computes the cache keys of a 2.0 request's series over
// the strings their label references name, in order, so that a series
// has the same key whatever symbol table it comes with: each symbol is
// hashed once, and a series' key mixes its symbols' hashes. The
// references of series i are left in st.labelRefs[st.refStarts[i]:
// st.refStarts[i+1]] (none when malformed: its key is then 0).
func (st *writeState) relabelKeysV2(seed uint64) {
	req := &st.req
	syms := req.Symbols()
	st.symHashes = slices.Grow(st.symHashes[:0], len(syms))[:len(syms)]
	for k, sym := range syms {
		st.symHashes[k] = xxhash.Sum64(sym)
	}
	// Not the seed of 1.0 keys: a 2.0 outcome's labels are not 1.0's.
	seed ^= relabelSeedV2
	st.labelRefs = st.labelRefs[:0]
	st.refStarts = append(st.refStarts[:0], 0)
	for i := range req.NumSeries() {
		start := len(st.labelRefs)
		refs, ok := req.LabelRefs(i, st.labelRefs)
		if ok {
			st.relabelKeys[i] = knownKey(seed, labelsHash(st.symHashes, refs[start:]))
		} else {
			refs = refs[:start]
		}
		st.labelRefs = refs
		st.refStarts = append(st.refStarts, int32(len(refs)))
	}
}

// relabelSeedV2 tells 2.0 keys from 1.0 ones.
const relabelSeedV2 = 0x9e3779b97f4a7c15

// labelsHash mixes the hashes of the symbols refs name, in order: each
// pair's name and value into one word, the words in turn into the hash.
// Pairs are mixed apart and the chain runs once a label, not once a
// string, so that the CPU works on several labels at once.
func labelsHash(symHashes []uint64, refs []uint32) uint64 {
	const prime1, prime2 = 11400714785074694791, 14029467366897019727
	h := uint64(len(refs)) * prime1
	for k := 0; k+1 < len(refs); k += 2 {
		x := symHashes[refs[k]]*prime2 ^ bits.RotateLeft64(symHashes[refs[k+1]], 31)
		h = bits.RotateLeft64(h^x, 27) * prime1
	}
	return h
}

// appendSources appends the sources of a 2.0 series' relabeled labels
// out, each name and value in turn: the position of the same string among
// the series' labels as sent, orig (2k for the name of label k, 2k+1 for
// its value), as a varint 2p; or, for a string that is not there, the
// varint 2n+1 and the string's n bytes. Positions hold for any request
// that sends these labels, whatever its symbol table.
func appendSources(dst []byte, orig, out []remotewrite.Label) []byte {
	source := func(s []byte) {
		for k, l := range orig {
			switch {
			case bytes.Equal(l.Name, s):
				dst = binary.AppendUvarint(dst, uint64(2*k)<<1)
				return
			case bytes.Equal(l.Value, s):
				dst = binary.AppendUvarint(dst, uint64(2*k+1)<<1)
				return
			}
		}
		dst = binary.AppendUvarint(dst, uint64(len(s))<<1|1)
		dst = append(dst, s...)
	}
	for _, l := range out {
		source(l.Name)
		source(l.Value)
	}
	return dst
}

// resolveSources turns the sources of 2.0 series i's labels into
// references of the rewritten request, in st.newRefs; false when they do
// not fit the series.
func (st *writeState) resolveSources(i int, src []byte) bool {
	refs := st.labelRefs[st.refStarts[i]:st.refStarts[i+1]]
	out := st.newRefs[:0]
	for k := 0; k < len(src); {
		v := uint64(src[k])
		if v < 0x80 {
			k++ // the common source: a position below 64
		} else {
			var n int
			if v, n = binary.Uvarint(src[k:]); n <= 0 {
				return false
			}
			k += n
		}
		if v&1 == 0 {
			if v>>1 >= uint64(len(refs)) {
				return false
			}
			out = append(out, refs[v>>1])
			continue
		}
		if v>>1 > uint64(len(src)-k) {
			return false
		}
		out = append(out, st.rewrite.Symbol(src[k:k+int(v>>1)]))
		k += int(v >> 1)
	}
	st.newRefs = out
	return len(out)%2 == 0
}

// relabelSeries runs the rules on series i. It tells whether the outcome
// may be remembered: not when the series is malformed, which it refuses
// as routing refuses it, as the next request may send it whole.
func (r *Router) relabelSeries(st *writeState, i int, tl *limits.Tenant, seed uint64) (relabelOutcome, bool) {
	s := &st.series
	if err := st.req.Series(i, s); err != nil {
		return relabelOutcome{kind: relabelRefuse, refusal: &forwarding.Rejection{Kind: forwarding.KindOf(err), Reason: err.Error()}}, false
	}
	st.builder.Reset()
	for _, l := range s.Labels {
		st.builder.Add(string(l.Name), string(l.Value))
	}
	st.builder.Sort()
	orig := st.builder.Labels()
	lb := labels.NewBuilder(orig)
	keep := relabel.ProcessBuilder(lb, tl.MetricRelabelConfigs...)
	out := lb.Labels()
	switch {
	case !keep:
		return relabelOutcome{kind: relabelDrop}, true
	case labels.Equal(out, orig):
		return relabelOutcome{kind: relabelSame}, true
	}
	st.relabeled = toLabels(st.relabeled[:0], out)
	check := remotewrite.Series{Labels: st.relabeled}
	if err := tl.CheckLabels(&check); err != nil {
		return relabelOutcome{kind: relabelRefuse, refusal: &forwarding.Rejection{Kind: forwarding.KindOf(err), Reason: ruleError(orig, tl.MetricRelabelConfigs, tl, err)}}, true
	}
	entry := make([]byte, 8, 256)
	if st.req.Version != remotewrite.V1 {
		return relabelOutcome{kind: relabelRewrite, entry: appendSources(entry, s.Labels, st.relabeled)}, true
	}
	entry = remotewrite.AppendLabelFields(entry, st.relabeled)
	binary.LittleEndian.PutUint64(entry, knownKey(seed, xxhash.Sum64(entry[8:])))
	return relabelOutcome{kind: relabelRewrite, entry: entry}, true
}

// ruleError says which rule made the labels invalid: the first after
// which they no longer pass.
func ruleError(ls labels.Labels, rules []*relabel.Config, tl *limits.Tenant, err error) string {
	var scratch []remotewrite.Label
	lb := labels.NewBuilder(ls)
	for k, rule := range rules {
		if !relabel.ProcessBuilder(lb, rule) {
			break
		}
		scratch = toLabels(scratch[:0], lb.Labels())
		if e := tl.CheckLabels(&remotewrite.Series{Labels: scratch}); e != nil {
			return fmt.Sprintf("%v, after metric_relabel_configs rule %d (action %s)", e, k+1, rule.Action)
		}
	}
	return fmt.Sprintf("%v, after metric_relabel_configs", err)
}

func toLabels(dst []remotewrite.Label, ls labels.Labels) []remotewrite.Label {
	ls.Range(func(l labels.Label) {
		dst = append(dst, remotewrite.Label{Name: []byte(l.Name), Value: []byte(l.Value)})
	})
	return dst
}
