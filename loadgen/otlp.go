package loadgen

import (
	"encoding/binary"
	"fmt"
	"math"
	"mime"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// OTLP requests carry the generator's series as an OpenTelemetry SDK or
// Collector exporting them would: one ExportMetricsServiceRequest per
// request, one resource, one metric per metric name, a gauge data point
// per sample, the series' labels as the point's attributes. The metrics
// have no unit, so that a receiver that adds unit suffixes to names (as
// Prometheus' translator does by default) stores the generator's names.
// job and instance are no attributes: an OTLP receiver that follows
// Prometheus takes them from the resource's service.name and
// service.instance.id, which is what StoredLabels returns.

// OTLPPath is where the router and the block builder take OTLP/HTTP
// metrics, and what a URL without a path is sent to over OTLP.
const OTLPPath = "/api/v1/otlp/v1/metrics"

// OTLPServiceName is the service.name of every OTLP request, which
// receivers that follow Prometheus store as the job label.
const OTLPServiceName = "loadgen"

const otlpContentType = "application/x-protobuf"

// otlpOmitted are the labels a series' OTLP attributes leave out: the name
// is the metric's, job and instance the resource's.
var otlpOmitted = []string{"__name__", "job", "instance"}

// StoredLabels returns the labels, sorted by name, under which a receiver
// stores the series id sent as c says: its Labels over remote-write; over
// OTLP, those with job and instance taken from the resource, as
// Prometheus' translator (which Strata's OTLP endpoint uses) sets them.
// Receivers that map OTLP otherwise (VictoriaMetrics by default keeps
// service.name and service.instance.id as labels) store other labels.
func (c *Config) StoredLabels(id SeriesID) []Label {
	ls := id.Labels()
	if c.Protocol != OTLP {
		return ls
	}
	// Replacing values keeps the order by name.
	for i := range ls {
		switch ls[i].Name {
		case "job":
			ls[i].Value = OTLPServiceName
		case "instance":
			ls[i].Value = c.OTLPInstance
		}
	}
	return ls
}

// StoredString renders StoredLabels as SeriesID.String does, to match
// acknowledged samples with what a TSDB returns.
func (c *Config) StoredString(id SeriesID) string { return formatLabels(c.StoredLabels(id)) }

// buildOTLPTemplate is buildTemplate for OTLP: the request of the series
// of slots [first, first+len(gens)), gzipped if gz.
func buildOTLPTemplate(first int, gens []int, perSeries int, unsorted bool, instance string, gz bool) *template {
	t := &template{first: first, n: len(gens), gens: gens, perSeries: perSeries, otlp: true}
	raw, dyn, slots := encodeOTLP(first, gens, perSeries, unsorted, instance)
	t.rawLen = len(raw)
	place := func(at []int32) []int32 {
		offs := make([]int32, len(at))
		for k, s := range slots {
			offs[s] = at[k]
		}
		return offs
	}
	if !gz {
		at := make([]int32, len(dyn))
		for k, d := range dyn {
			at[k] = int32(d)
		}
		t.body, t.offs = raw, place(at)
		return t
	}
	// The values are never matched; the timestamps of a sample are
	// matched with each other's, byte for byte.
	class := make([]int32, len(raw))
	type value struct{ off, slot int }
	var values []value
	for k, d := range dyn {
		s := slots[k]
		if s%2 == 1 {
			values = append(values, value{d, s})
		}
		for b := range 8 {
			class[d+b] = unmatched
			if s%2 == 0 {
				class[d+b] = int32(1 + 8*((s/2)%perSeries) + b)
			}
		}
	}
	body, lits := gzipProtected(raw, class)
	t.body, t.raw = body, raw
	// offs are then bit offsets of the values' codes (see putLiterals);
	// the timestamps' codes are in tsLits.
	t.offs = make([]int32, len(dyn))
	v := 0
	for _, l := range lits {
		c := class[l.src]
		if c != unmatched {
			t.tsLits = append(t.tsLits, tsLiteral{bit: l.bit, sample: int32((c - 1) / 8), byte: uint8((c - 1) % 8)})
			continue
		}
		if v < len(values) && int(l.src) == values[v].off {
			t.offs[values[v].slot] = l.bit
			v++
		}
	}
	if v != len(values) {
		panic(fmt.Sprintf("loadgen: %d of %d values coded as literals", v, len(values)))
	}
	t.rawOffs = make([]int32, len(dyn))
	for k, s := range slots {
		t.rawOffs[s] = int32(dyn[k])
	}
	return t
}

// tsLiteral is a byte of a timestamp coded as a literal in a gzip
// template: byte (0 the lowest) of the timestamp of sample of every
// series in the request.
type tsLiteral struct {
	bit    int32
	sample int32
	byte   uint8
}

// patchOTLP is patch for OTLP: offs holds, for sample j of series i, the
// timestamp's offset at 2*(i*perSeries+j) and the value's after it (in a
// gzip body, the value's only, as a bit offset).
func (t *template) patchOTLP(k0 int64, startMs, intervalMs int64) {
	for i := 0; i < t.n; i++ {
		id := SeriesID{Slot: t.first + i, Gen: t.gens[i]}
		for j := 0; j < t.perSeries; j++ {
			k := k0 + int64(j)
			s := 2 * (i*t.perSeries + j)
			ts := uint64(startMs+k*intervalMs) * uint64(time.Millisecond)
			v := math.Float64bits(Value(id, k))
			if t.raw == nil {
				binary.LittleEndian.PutUint64(t.body[t.offs[s]:], ts)
				binary.LittleEndian.PutUint64(t.body[t.offs[s+1]:], v)
				continue
			}
			binary.LittleEndian.PutUint64(t.raw[t.rawOffs[s]:], ts)
			binary.LittleEndian.PutUint64(t.raw[t.rawOffs[s+1]:], v)
			putLiteral64(t.body, int(t.offs[s+1]), v)
		}
	}
	if t.raw == nil {
		return
	}
	for _, l := range t.tsLits {
		ts := uint64(startMs+(k0+int64(l.sample))*intervalMs) * uint64(time.Millisecond)
		putLiterals(t.body, int(l.bit), []byte{byte(ts >> (8 * l.byte))})
	}
	setGzipCRC(t.body, t.raw)
}

// encodeOTLP marshals the request with placeholder timestamps and values.
// dyn are the offsets of every timestamp and value (8 bytes each),
// ascending, and slots[k] says which dyn[k] is: 2*(i*perSeries+j) for the
// timestamp of sample j of series i, one more for its value.
func encodeOTLP(first int, gens []int, perSeries int, unsorted bool, instance string) (raw []byte, dyn, slots []int) {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", OTLPServiceName)
	rm.Resource().Attributes().PutStr("service.instance.id", instance)
	// No scope name: VictoriaMetrics would add it to every series as a
	// label, which Prometheus' translator does not by default, and the
	// baselines should store the same series.
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	type metric struct {
		points  pmetric.NumberDataPointSlice
		samples []int // i*perSeries+j of each point, in order
	}
	var names []string
	byName := map[string]*metric{}
	for i, g := range gens {
		id := SeriesID{Slot: first + i, Gen: g}
		name := podMetrics[id.Slot%metricsPerPod]
		m := byName[name]
		if m == nil {
			pm := ms.AppendEmpty()
			pm.SetName(name)
			pm.SetDescription(helpOf(name))
			m = &metric{points: pm.SetEmptyGauge().DataPoints()}
			byName[name] = m
			names = append(names, name)
		}
		for j := 0; j < perSeries; j++ {
			p := m.points.AppendEmpty()
			for _, l := range id.labels(unsorted) {
				if !slices.Contains(otlpOmitted, l.Name) {
					p.Attributes().PutStr(l.Name, l.Value)
				}
			}
			// Not zero, which proto3 leaves out: the fields must be
			// there to be patched.
			p.SetTimestamp(1)
			p.SetDoubleValue(1)
			m.samples = append(m.samples, i*perSeries+j)
		}
	}
	raw, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	if err != nil {
		panic(fmt.Sprintf("loadgen: marshal OTLP request: %v", err))
	}
	ts, vals := otlpPoints(raw)
	var order []int
	for _, name := range names {
		order = append(order, byName[name].samples...)
	}
	if len(ts) != len(order) || len(vals) != len(order) {
		panic(fmt.Sprintf("loadgen: OTLP request of %d points has %d timestamps and %d values", len(order), len(ts), len(vals)))
	}
	type at struct{ off, slot int }
	all := make([]at, 0, 2*len(order))
	for k, s := range order {
		all = append(all, at{ts[k], 2 * s}, at{vals[k], 2*s + 1})
	}
	slices.SortFunc(all, func(a, b at) int { return a.off - b.off })
	dyn, slots = make([]int, len(all)), make([]int, len(all))
	for k, a := range all {
		dyn[k], slots[k] = a.off, a.slot
	}
	return raw, dyn, slots
}

// otlpPoints finds, in a marshaled ExportMetricsServiceRequest, the
// time_unix_nano and as_double of every gauge data point, in order.
func otlpPoints(raw []byte) (ts, vals []int) {
	// request.resource_metrics, .scope_metrics, .metrics, .gauge,
	// .data_points
	path := [...]protowire.Number{1, 2, 2, 5, 1}
	var walk func(b []byte, base, depth int)
	walk = func(b []byte, base, depth int) {
		for p := 0; p < len(b); {
			num, typ, n := protowire.ConsumeTag(b[p:])
			if n < 0 {
				panic(fmt.Sprintf("loadgen: OTLP request unreadable at %d: %v", base+p, protowire.ParseError(n)))
			}
			p += n
			switch {
			case depth == len(path) && typ == protowire.Fixed64Type && num == 3:
				ts = append(ts, base+p)
			case depth == len(path) && typ == protowire.Fixed64Type && num == 4:
				vals = append(vals, base+p)
			case depth < len(path) && typ == protowire.BytesType && num == path[depth]:
				v, m := protowire.ConsumeBytes(b[p:])
				if m < 0 {
					panic(fmt.Sprintf("loadgen: OTLP request unreadable at %d: %v", base+p, protowire.ParseError(m)))
				}
				walk(v, base+p+m-len(v), depth+1)
			}
			m := protowire.ConsumeFieldValue(num, typ, b[p:])
			if m < 0 {
				panic(fmt.Sprintf("loadgen: OTLP request unreadable at %d: %v", base+p, protowire.ParseError(m)))
			}
			p += m
		}
	}
	walk(raw, 0, 0)
	return ts, vals
}

// EncodeOTLP returns an uncompressed OTLP request of the series in slots
// [first, first+n) (generation 0), each with perSeries samples from sample
// k0 on, at startMs + k*intervalMs, from service.instance.id instance: the
// bytes the generator sends over OTLP before gzip, for benchmarks and
// tests of receivers.
func EncodeOTLP(first, n, perSeries int, k0, startMs, intervalMs int64, instance string) []byte {
	t := buildOTLPTemplate(first, make([]int, n), perSeries, false, instance, false)
	t.patch(k0, startMs, intervalMs)
	return t.body
}

// otlpAnswer reads the ExportMetricsServiceResponse of a 2xx answer: the
// data points it refused (partial success) and why. An answer that is
// empty or does not parse refuses nothing, as the OpenTelemetry exporters
// read it.
func otlpAnswer(contentType string, body []byte) (rejected int64, msg string) {
	if len(body) == 0 {
		return 0, ""
	}
	resp := pmetricotlp.NewExportResponse()
	var err error
	if isJSON(contentType) {
		err = resp.UnmarshalJSON(body)
	} else {
		err = resp.UnmarshalProto(body)
	}
	if err != nil {
		return 0, ""
	}
	ps := resp.PartialSuccess()
	msg = ps.ErrorMessage()
	if len(msg) > maxAnswer {
		msg = msg[:maxAnswer]
	}
	return max(ps.RejectedDataPoints(), 0), msg
}

// otlpErrorMessage is the message of an OTLP error answer, a
// google.rpc.Status in protobuf; answers in another form are quoted as
// they are.
func otlpErrorMessage(contentType string, body []byte) string {
	if mt, _, _ := mime.ParseMediaType(contentType); mt == otlpContentType {
		var st status.Status
		if proto.Unmarshal(body, &st) == nil && st.GetMessage() != "" {
			return st.GetMessage()
		}
	}
	return strings.TrimSpace(string(body))
}

func isJSON(contentType string) bool {
	mt, _, _ := mime.ParseMediaType(contentType)
	return mt == "application/json"
}
