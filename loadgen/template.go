package loadgen

import (
	"encoding/binary"
	"math"
	"strings"

	"github.com/stratametrics/strata/remotewrite"
)

// A template is one request of a fixed set of series, encoded and
// compressed once; every send patches each sample's value and timestamp in
// the compressed block (see encodeProtected) and sends it as it is. That
// keeps the generator's cost per sample to a few bytes written, far below
// what any receiver spends.

// sampleWidth is the patched part of a Sample message: the 8 bytes of the
// value, the timestamp's tag, and the timestamp as a 6-byte varint.
const sampleWidth = 8 + 1 + tsWidth

// tsWidth is the width of every timestamp. Millisecond timestamps from 1971
// to 2109 take 6 bytes as varints anyway; smaller ones are padded, which
// every protobuf decoder accepts.
const tsWidth = 6

type template struct {
	first, n int   // slots first to first+n-1
	gens     []int // generation of each slot when built
	body     []byte
	// offs[i*perSeries+j] is where sample j of series i is patched.
	offs      []int32
	perSeries int
	rawLen    int

	// otlp is set for an OTLP request (see patchOTLP), whose offs are
	// two per sample.
	otlp bool
	// raw is the uncompressed request when body is its gzip, patched
	// along with it for the trailer's CRC, at rawOffs; tsLits are the
	// timestamps' bytes coded as literals in body.
	raw     []byte
	rawOffs []int32
	tsLits  []tsLiteral
}

// buildTemplate encodes the series of slots [first, first+len(gens)) with
// perSeries samples each, their labels out of order if unsorted.
func buildTemplate(v remotewrite.Version, first int, gens []int, perSeries int, unsorted bool) *template {
	t := &template{first: first, n: len(gens), gens: gens, perSeries: perSeries}
	raw, dyn := encode(v, first, gens, perSeries, unsorted)
	t.rawLen = len(raw)
	t.body, t.offs = encodeProtected(raw, dyn, sampleWidth)
	return t
}

// patch writes the values and timestamps of the samples starting at sample
// index k0 of every series (k counts samples since the run's start, at
// startMs + k*intervalMs).
func (t *template) patch(k0 int64, startMs, intervalMs int64) {
	if t.otlp {
		t.patchOTLP(k0, startMs, intervalMs)
		return
	}
	b := t.body
	for i := 0; i < t.n; i++ {
		id := SeriesID{Slot: t.first + i, Gen: t.gens[i]}
		for j := 0; j < t.perSeries; j++ {
			k := k0 + int64(j)
			off := int(t.offs[i*t.perSeries+j])
			binary.LittleEndian.PutUint64(b[off:], math.Float64bits(Value(id, k)))
			putVarint6(b[off+9:], uint64(startMs+k*intervalMs))
		}
	}
}

// putVarint6 writes v (< 2^42) as a varint of exactly 6 bytes.
func putVarint6(b []byte, v uint64) {
	_ = b[5]
	b[0] = byte(v) | 0x80
	b[1] = byte(v>>7) | 0x80
	b[2] = byte(v>>14) | 0x80
	b[3] = byte(v>>21) | 0x80
	b[4] = byte(v>>28) | 0x80
	b[5] = byte(v >> 35)
}

// appendSample appends a Sample field (value and timestamp, zero for now)
// of a TimeSeries with field number 2 (1.0 and 2.0 alike), and returns
// where the patched part starts.
func appendSample(b []byte) ([]byte, int) {
	b = append(b, 2<<3|2, 1+8+1+tsWidth, 1<<3|1)
	at := len(b)
	b = append(b, make([]byte, 8)...)
	b = append(b, 2<<3) // field 2, a varint
	b = append(b, 0x80, 0x80, 0x80, 0x80, 0x80, 0)
	return b, at
}

// sampleFieldLen is the encoded size of one Sample field.
const sampleFieldLen = 2 + 1 + 8 + 1 + tsWidth

func appendBytesField(b []byte, field int, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(field<<3|2))
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

func appendStringField(b []byte, field int, s string) []byte {
	b = binary.AppendUvarint(b, uint64(field<<3|2))
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// encode encodes a request of version v; dyn are where its samples' values
// go.
func encode(v remotewrite.Version, first int, gens []int, perSeries int, unsorted bool) (raw []byte, dyn []int) {
	if v == remotewrite.V2 {
		return encodeV2(first, gens, perSeries, unsorted)
	}
	return encodeV1(first, gens, perSeries, unsorted)
}

// encodeV1 encodes a prometheus.WriteRequest.
func encodeV1(first int, gens []int, perSeries int, unsorted bool) ([]byte, []int) {
	var (
		raw, ts, lb []byte
		dyn         []int
	)
	for i, g := range gens {
		ts = ts[:0]
		for _, l := range (SeriesID{Slot: first + i, Gen: g}).labels(unsorted) {
			lb = appendStringField(lb[:0], 1, l.Name)
			lb = appendStringField(lb, 2, l.Value)
			ts = appendBytesField(ts, 1, lb)
		}
		raw = binary.AppendUvarint(raw, 1<<3|2)
		raw = binary.AppendUvarint(raw, uint64(len(ts)+perSeries*sampleFieldLen))
		raw = append(raw, ts...)
		for j := 0; j < perSeries; j++ {
			var at int
			raw, at = appendSample(raw)
			dyn = append(dyn, at)
		}
	}
	return raw, dyn
}

// encodeV2 encodes an io.prometheus.write.v2.Request: a symbol table of
// the request's strings, then series that refer to it, each with its
// metric type and help as Prometheus sends them.
func encodeV2(first int, gens []int, perSeries int, unsorted bool) ([]byte, []int) {
	symbols := map[string]uint32{"": 0}
	order := []string{""}
	ref := func(s string) uint32 {
		r, ok := symbols[s]
		if !ok {
			r = uint32(len(order))
			symbols[s] = r
			order = append(order, s)
		}
		return r
	}
	type seriesRefs struct {
		refs      []byte
		typ, help uint32
	}
	all := make([]seriesRefs, len(gens))
	for i, g := range gens {
		id := SeriesID{Slot: first + i, Gen: g}
		var refs []byte
		for _, l := range id.labels(unsorted) {
			refs = binary.AppendUvarint(refs, uint64(ref(l.Name)))
			refs = binary.AppendUvarint(refs, uint64(ref(l.Value)))
		}
		typ := uint32(2) // gauge
		if isCounter(id.Slot) {
			typ = 1
		}
		all[i] = seriesRefs{refs: refs, typ: typ, help: ref(helpOf(podMetrics[id.Slot%metricsPerPod]))}
	}
	var raw, ts, md []byte
	for _, s := range order {
		raw = appendStringField(raw, 4, s)
	}
	var dyn []int
	for _, s := range all {
		md = binary.AppendUvarint(md[:0], 1<<3) // field 1, a varint
		md = binary.AppendUvarint(md, uint64(s.typ))
		md = binary.AppendUvarint(md, 3<<3) // field 3, a varint
		md = binary.AppendUvarint(md, uint64(s.help))
		ts = appendBytesField(ts[:0], 1, s.refs)
		n := len(ts) + perSeries*sampleFieldLen
		n += 1 + len(binary.AppendUvarint(nil, uint64(len(md)))) + len(md)
		raw = binary.AppendUvarint(raw, 5<<3|2)
		raw = binary.AppendUvarint(raw, uint64(n))
		raw = append(raw, ts...)
		for j := 0; j < perSeries; j++ {
			var at int
			raw, at = appendSample(raw)
			dyn = append(dyn, at)
		}
		raw = appendBytesField(raw, 5, md)
	}
	return raw, dyn
}

// helpOf is the help text of a metric, as an exporter would write it.
func helpOf(name string) string {
	words := strings.ReplaceAll(strings.TrimPrefix(name, "container_"), "_", " ")
	if strings.HasSuffix(name, "_total") {
		return "Cumulative count of " + strings.TrimSuffix(words, " total") + " of the container."
	}
	return "Current " + words + " of the container."
}

// Encode returns an uncompressed request of the series in slots [first,
// first+n) (generation 0), each with perSeries samples from sample k0 on,
// at startMs + k*intervalMs: the bytes the generator sends, for
// benchmarks and tests of receivers.
func Encode(v remotewrite.Version, first, n, perSeries int, k0, startMs, intervalMs int64) []byte {
	return encodeSamples(v, first, n, perSeries, k0, startMs, intervalMs, false)
}

// EncodeUnsorted is Encode with every series' labels in the order of
// SeriesID.UnsortedLabels, as the generator sends them with
// Config.UnsortedLabels: the same series for a receiver that sorts labels
// on receipt.
func EncodeUnsorted(v remotewrite.Version, first, n, perSeries int, k0, startMs, intervalMs int64) []byte {
	return encodeSamples(v, first, n, perSeries, k0, startMs, intervalMs, true)
}

func encodeSamples(v remotewrite.Version, first, n, perSeries int, k0, startMs, intervalMs int64, unsorted bool) []byte {
	return NewRequest(v, first, n, perSeries, unsorted).Patch(k0, startMs, intervalMs)
}

// Request is an uncompressed request of fixed series whose samples Patch
// rewrites in place: a benchmark of a receiver sends it round after round
// without encoding it again, so that the encoder's garbage is not
// collected on the receiver's time.
type Request struct {
	raw              []byte
	dyn              []int // where each sample's value starts
	first, perSeries int
}

// NewRequest encodes the series in slots [first, first+n) (generation 0),
// with perSeries samples each, their labels out of order if unsorted (as
// EncodeUnsorted).
func NewRequest(v remotewrite.Version, first, n, perSeries int, unsorted bool) *Request {
	raw, dyn := encode(v, first, make([]int, n), perSeries, unsorted)
	return &Request{raw: raw, dyn: dyn, first: first, perSeries: perSeries}
}

// Patch sets every series' samples to samples k0 on, at startMs +
// k*intervalMs, and returns the request. The bytes are the Request's:
// valid until the next Patch.
func (r *Request) Patch(k0, startMs, intervalMs int64) []byte {
	for i, at := range r.dyn {
		id := SeriesID{Slot: r.first + i/r.perSeries}
		k := k0 + int64(i%r.perSeries)
		binary.LittleEndian.PutUint64(r.raw[at:], math.Float64bits(Value(id, k)))
		putVarint6(r.raw[at+9:], uint64(startMs+k*intervalMs))
	}
	return r.raw
}
