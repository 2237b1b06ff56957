package storeapi_test

import (
	"bytes"
	"math"
	"reflect"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/stratametrics/strata/blockbuilder/storeapi"
)

// Every test here builds the same message twice, once with wire.go and once
// as a reference message (thanospb_test.go), and checks both directions:
// our bytes decode into the reference message, the reference's bytes
// decode into ours, and the two encodings are the same bytes.

func refLabel(t testing.TB, name, value string) *dynamicpb.Message {
	l := thanosMsg(t, "thanos.Label")
	set(l, "name", name)
	set(l, "value", value)
	return l
}

func refMatcher(t testing.TB, typ int32, name, value string) *dynamicpb.Message {
	m := thanosMsg(t, "thanos.LabelMatcher")
	set(m, "type", protoreflect.EnumNumber(typ))
	set(m, "name", name)
	set(m, "value", value)
	return m
}

func marshalRef(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkEncoding requires ours to be the reference's bytes and to decode
// into a message equal to the reference.
func checkEncoding(t *testing.T, ours []byte, ref *dynamicpb.Message) {
	t.Helper()
	want := marshalRef(t, ref)
	if !bytes.Equal(ours, want) {
		t.Errorf("encoding differs from the reference\n ours: %x\n  ref: %x", ours, want)
	}
	got := dynamicpb.NewMessage(ref.Descriptor())
	if err := proto.Unmarshal(ours, got); err != nil {
		t.Fatalf("the reference cannot decode our bytes: %v", err)
	}
	if !proto.Equal(got, ref) {
		t.Errorf("our bytes decode to\n %v\nwant\n %v", got, ref)
	}
}

func TestSeriesRequestFromReference(t *testing.T) {
	ref := thanosMsg(t, "thanos.SeriesRequest")
	set(ref, "min_time", int64(-5))
	set(ref, "max_time", int64(1700000000000))
	add(ref, "matchers", refMatcher(t, 0, "__name__", "up"))
	add(ref, "matchers", refMatcher(t, 1, "job", ""))
	add(ref, "matchers", refMatcher(t, 2, "instance", "a.*"))
	add(ref, "matchers", refMatcher(t, 3, "tenant_id", "b|c"))
	set(ref, "max_resolution_window", int64(300000))
	add(ref, "aggregates", protoreflect.EnumNumber(1))
	add(ref, "aggregates", protoreflect.EnumNumber(2))
	set(ref, "partial_response_disabled", true)
	set(ref, "partial_response_strategy", protoreflect.EnumNumber(1))
	set(ref, "skip_chunks", true)
	add(ref, "without_replica_labels", "receive_replica")
	add(ref, "without_replica_labels", "replica")
	set(ref, "limit", int64(100))
	set(ref, "response_batch_size", int64(64))
	modelled := proto.Clone(ref).(*dynamicpb.Message)

	// Fields Strata does not model must be skipped, nested messages and
	// all.
	hints, err := anypb.New(durationpb.New(42))
	if err != nil {
		t.Fatal(err)
	}
	hm := thanosMsg(t, "google.protobuf.Any")
	set(hm, "type_url", hints.TypeUrl)
	set(hm, "value", hints.Value)
	set(ref, "hints", hm)
	set(ref, "step", int64(15000))
	set(ref, "range", int64(300000))
	qh := thanosMsg(t, "thanos.QueryHints")
	set(qh, "step_millis", int64(15000))
	fn := thanosMsg(t, "thanos.Func")
	set(fn, "name", "rate")
	set(qh, "func", fn)
	add(qh, "projection_labels", "job")
	set(ref, "query_hints", qh)
	si := thanosMsg(t, "thanos.ShardInfo")
	set(si, "shard_index", int64(1))
	set(si, "total_shards", int64(4))
	add(si, "labels", "job")
	set(ref, "shard_info", si)

	want := storeapi.SeriesRequest{
		MinTime: -5, MaxTime: 1700000000000,
		Matchers: []storeapi.LabelMatcher{
			{Type: storeapi.MatchEQ, Name: "__name__", Value: "up"},
			{Type: storeapi.MatchNEQ, Name: "job", Value: ""},
			{Type: storeapi.MatchRE, Name: "instance", Value: "a.*"},
			{Type: storeapi.MatchNRE, Name: "tenant_id", Value: "b|c"},
		},
		MaxResolutionWindow:     300000,
		Aggregates:              []int32{1, 2},
		PartialResponseDisabled: true,
		PartialResponseStrategy: 1,
		SkipChunks:              true,
		WithoutReplicaLabels:    []string{"receive_replica", "replica"},
		Limit:                   100,
		ResponseBatchSize:       64,
	}
	var got storeapi.SeriesRequest
	if err := got.Unmarshal(marshalRef(t, ref)); err != nil {
		t.Fatalf("decode the reference's bytes: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded\n %+v\nwant\n %+v", got, want)
	}
	checkEncoding(t, want.AppendMarshal(nil), modelled)

	// Unpacked repeated enums are valid protobuf too.
	var unpacked []byte
	for _, a := range []uint64{3, 4} {
		unpacked = append(unpacked, byte(protowire.EncodeTag(5, protowire.VarintType)), byte(a))
	}
	if err := got.Unmarshal(unpacked); err != nil || !reflect.DeepEqual(got.Aggregates, []int32{3, 4}) {
		t.Fatalf("unpacked aggregates: %v %v", got.Aggregates, err)
	}
}

func TestLabelRequestsFromReference(t *testing.T) {
	names := thanosMsg(t, "thanos.LabelNamesRequest")
	set(names, "partial_response_disabled", true)
	set(names, "partial_response_strategy", protoreflect.EnumNumber(1))
	set(names, "start", int64(math.MinInt64))
	set(names, "end", int64(math.MaxInt64))
	add(names, "matchers", refMatcher(t, 2, "job", "api|web"))
	add(names, "without_replica_labels", "receive_replica")
	set(names, "limit", int64(7))
	wantNames := storeapi.LabelNamesRequest{LabelsQuery: storeapi.LabelsQuery{
		PartialResponseDisabled: true, PartialResponseStrategy: 1,
		Start: math.MinInt64, End: math.MaxInt64,
		Matchers:             []storeapi.LabelMatcher{{Type: storeapi.MatchRE, Name: "job", Value: "api|web"}},
		WithoutReplicaLabels: []string{"receive_replica"},
		Limit:                7,
	}}
	var gotNames storeapi.LabelNamesRequest
	if err := gotNames.Unmarshal(marshalRef(t, names)); err != nil || !reflect.DeepEqual(gotNames, wantNames) {
		t.Fatalf("LabelNamesRequest: %+v, %v; want %+v", gotNames, err, wantNames)
	}
	checkEncoding(t, wantNames.AppendMarshal(nil), names)

	values := thanosMsg(t, "thanos.LabelValuesRequest")
	set(values, "label", "instance")
	set(values, "partial_response_disabled", true)
	set(values, "partial_response_strategy", protoreflect.EnumNumber(1))
	set(values, "start", int64(1000))
	set(values, "end", int64(2000))
	add(values, "matchers", refMatcher(t, 0, "job", "api"))
	add(values, "without_replica_labels", "receive_replica")
	set(values, "limit", int64(3))
	wantValues := storeapi.LabelValuesRequest{Label: "instance", LabelsQuery: storeapi.LabelsQuery{
		PartialResponseDisabled: true, PartialResponseStrategy: 1,
		Start: 1000, End: 2000,
		Matchers:             []storeapi.LabelMatcher{{Type: storeapi.MatchEQ, Name: "job", Value: "api"}},
		WithoutReplicaLabels: []string{"receive_replica"},
		Limit:                3,
	}}
	var gotValues storeapi.LabelValuesRequest
	if err := gotValues.Unmarshal(marshalRef(t, values)); err != nil || !reflect.DeepEqual(gotValues, wantValues) {
		t.Fatalf("LabelValuesRequest: %+v, %v; want %+v", gotValues, err, wantValues)
	}
	checkEncoding(t, wantValues.AppendMarshal(nil), values)

	var info storeapi.InfoRequest
	if err := info.Unmarshal(marshalRef(t, thanosMsg(t, "thanos.info.InfoRequest"))); err != nil {
		t.Fatal(err)
	}
}

func TestSeriesResponseToReference(t *testing.T) {
	series := &storeapi.Series{
		Labels: []storeapi.Label{{Name: "__name__", Value: "up"}, {Name: "tenant_id", Value: "team-a"}},
		Chunks: []storeapi.AggrChunk{
			{MinTime: -1000, MaxTime: 2000, Raw: &storeapi.Chunk{Type: storeapi.EncodingXOR, Data: []byte{0, 1, 2, 3}}},
			{MinTime: 3000, MaxTime: 4000, Raw: &storeapi.Chunk{Type: storeapi.EncodingFloatHistogram, Data: []byte{9}, Hash: 77}},
		},
	}
	refSeries := func() *dynamicpb.Message {
		s := thanosMsg(t, "thanos.Series")
		add(s, "labels", refLabel(t, "__name__", "up"))
		add(s, "labels", refLabel(t, "tenant_id", "team-a"))
		c1 := thanosMsg(t, "thanos.AggrChunk")
		set(c1, "min_time", int64(-1000))
		set(c1, "max_time", int64(2000))
		raw1 := thanosMsg(t, "thanos.Chunk")
		set(raw1, "data", []byte{0, 1, 2, 3})
		set(c1, "raw", raw1)
		add(s, "chunks", c1)
		c2 := thanosMsg(t, "thanos.AggrChunk")
		set(c2, "min_time", int64(3000))
		set(c2, "max_time", int64(4000))
		raw2 := thanosMsg(t, "thanos.Chunk")
		set(raw2, "type", protoreflect.EnumNumber(2))
		set(raw2, "data", []byte{9})
		set(raw2, "hash", uint64(77))
		set(c2, "raw", raw2)
		add(s, "chunks", c2)
		return s
	}

	cases := []struct {
		name string
		ours storeapi.SeriesResponse
		ref  func() *dynamicpb.Message
	}{
		{"series", storeapi.SeriesResponse{Series: series}, func() *dynamicpb.Message {
			r := thanosMsg(t, "thanos.SeriesResponse")
			set(r, "series", refSeries())
			return r
		}},
		{"warning", storeapi.SeriesResponse{Warning: "partial data"}, func() *dynamicpb.Message {
			r := thanosMsg(t, "thanos.SeriesResponse")
			set(r, "warning", "partial data")
			return r
		}},
		{"empty warning", storeapi.SeriesResponse{}, func() *dynamicpb.Message {
			r := thanosMsg(t, "thanos.SeriesResponse")
			set(r, "warning", "")
			return r
		}},
		{"batch", storeapi.SeriesResponse{Batch: []storeapi.Series{*series, {Labels: []storeapi.Label{{Name: "a", Value: "b"}}}}}, func() *dynamicpb.Message {
			b := thanosMsg(t, "thanos.SeriesBatch")
			add(b, "series", refSeries())
			s2 := thanosMsg(t, "thanos.Series")
			add(s2, "labels", refLabel(t, "a", "b"))
			add(b, "series", s2)
			r := thanosMsg(t, "thanos.SeriesResponse")
			set(r, "batch", b)
			return r
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ref := tc.ref()
			checkEncoding(t, tc.ours.AppendMarshal(nil), ref)
			var back storeapi.SeriesResponse
			if err := back.Unmarshal(marshalRef(t, ref)); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, tc.ours) {
				t.Errorf("decoded the reference as\n %+v\nwant\n %+v", back, tc.ours)
			}
		})
	}
}

func TestLabelResponsesToReference(t *testing.T) {
	names := storeapi.LabelNamesResponse{Names: []string{"__name__", "", "job"}, Warnings: []string{"w"}}
	refNames := thanosMsg(t, "thanos.LabelNamesResponse")
	for _, n := range names.Names {
		add(refNames, "names", n)
	}
	add(refNames, "warnings", "w")
	checkEncoding(t, names.AppendMarshal(nil), refNames)
	var backNames storeapi.LabelNamesResponse
	if err := backNames.Unmarshal(marshalRef(t, refNames)); err != nil || !reflect.DeepEqual(backNames, names) {
		t.Errorf("LabelNamesResponse decoded as %+v, %v", backNames, err)
	}

	values := storeapi.LabelValuesResponse{Values: []string{"a", "b"}}
	refValues := thanosMsg(t, "thanos.LabelValuesResponse")
	add(refValues, "values", "a")
	add(refValues, "values", "b")
	checkEncoding(t, values.AppendMarshal(nil), refValues)
	var backValues storeapi.LabelValuesResponse
	if err := backValues.Unmarshal(marshalRef(t, refValues)); err != nil || !reflect.DeepEqual(backValues, values) {
		t.Errorf("LabelValuesResponse decoded as %+v, %v", backValues, err)
	}
}

func TestInfoResponseToReference(t *testing.T) {
	ls := []storeapi.Label{{Name: "receive_replica", Value: "bb-0"}, {Name: "tenant_id", Value: "team-a"}}
	ours := storeapi.InfoResponse{
		LabelSets:     [][]storeapi.Label{ls, {}},
		ComponentType: "receive",
		Store: &storeapi.StoreInfo{
			MinTime: math.MinInt64, MaxTime: math.MaxInt64,
			SupportsSharding: true, SupportsWithoutReplicaLabels: true,
			TSDBInfos: []storeapi.TSDBInfo{{Labels: ls, MinTime: 1000, MaxTime: math.MaxInt64}, {Labels: []storeapi.Label{}}},
		},
		Exemplars: &storeapi.ExemplarsInfo{MinTime: math.MinInt64, MaxTime: math.MaxInt64},
	}
	refSet := func(labels []storeapi.Label) *dynamicpb.Message {
		s := thanosMsg(t, "thanos.ZLabelSet")
		for _, l := range labels {
			add(s, "labels", refLabel(t, l.Name, l.Value))
		}
		return s
	}
	ref := thanosMsg(t, "thanos.info.InfoResponse")
	add(ref, "label_sets", refSet(ls))
	add(ref, "label_sets", refSet(nil))
	set(ref, "ComponentType", "receive")
	store := thanosMsg(t, "thanos.info.StoreInfo")
	set(store, "min_time", int64(math.MinInt64))
	set(store, "max_time", int64(math.MaxInt64))
	set(store, "supports_sharding", true)
	set(store, "supports_without_replica_labels", true)
	ti := thanosMsg(t, "thanos.info.TSDBInfo")
	set(ti, "labels", refSet(ls))
	set(ti, "min_time", int64(1000))
	set(ti, "max_time", int64(math.MaxInt64))
	add(store, "tsdb_infos", ti)
	ti2 := thanosMsg(t, "thanos.info.TSDBInfo")
	set(ti2, "labels", refSet(nil))
	add(store, "tsdb_infos", ti2)
	set(ref, "store", store)
	ex := thanosMsg(t, "thanos.info.ExemplarsInfo")
	set(ex, "min_time", int64(math.MinInt64))
	set(ex, "max_time", int64(math.MaxInt64))
	set(ref, "exemplars", ex)
	checkEncoding(t, ours.AppendMarshal(nil), ref)

	// An empty ExemplarsInfo still says "exemplars are served".
	empty := storeapi.InfoResponse{Exemplars: &storeapi.ExemplarsInfo{}}
	refEmpty := thanosMsg(t, "thanos.info.InfoResponse")
	set(refEmpty, "exemplars", thanosMsg(t, "thanos.info.ExemplarsInfo"))
	checkEncoding(t, empty.AppendMarshal(nil), refEmpty)
	var backEmpty storeapi.InfoResponse
	if err := backEmpty.Unmarshal(marshalRef(t, refEmpty)); err != nil || !reflect.DeepEqual(backEmpty, empty) {
		t.Errorf("InfoResponse decoded as %+v, %v", backEmpty, err)
	}

	var back storeapi.InfoResponse
	if err := back.Unmarshal(marshalRef(t, ref)); err != nil || !reflect.DeepEqual(back, ours) {
		t.Errorf("InfoResponse decoded as %+v, %v", back, err)
	}
}

func TestExemplarsRequestFromReference(t *testing.T) {
	ref := thanosMsg(t, "thanos.ExemplarsRequest")
	set(ref, "query", `rate(http_requests_total{job="api"}[5m])`)
	set(ref, "start", int64(-1000))
	set(ref, "end", int64(1700000000000))
	set(ref, "partial_response_strategy", protoreflect.EnumNumber(1))
	want := storeapi.ExemplarsRequest{Query: `rate(http_requests_total{job="api"}[5m])`, Start: -1000, End: 1700000000000, PartialResponseStrategy: 1}
	var got storeapi.ExemplarsRequest
	if err := got.Unmarshal(marshalRef(t, ref)); err != nil || got != want {
		t.Fatalf("ExemplarsRequest: %+v, %v; want %+v", got, err, want)
	}
	checkEncoding(t, want.AppendMarshal(nil), ref)

	// Unknown fields, a fixed64 among them, are skipped.
	withUnknown := append(marshalRef(t, ref), byte(protowire.EncodeTag(9, protowire.Fixed64Type)), 1, 2, 3, 4, 5, 6, 7, 8, byte(protowire.EncodeTag(10, protowire.VarintType)), 42)
	if err := got.Unmarshal(withUnknown); err != nil || got != want {
		t.Fatalf("ExemplarsRequest with unknown fields: %+v, %v", got, err)
	}
}

func TestExemplarsResponseToReference(t *testing.T) {
	// Thanos' exemplars carry ZLabelSet, LabelSet's twin on the wire.
	refSet := func(ls ...storeapi.Label) *dynamicpb.Message {
		s := thanosMsg(t, "thanos.ZLabelSet")
		for _, l := range ls {
			add(s, "labels", refLabel(t, l.Name, l.Value))
		}
		return s
	}
	series := []storeapi.Label{{Name: "__name__", Value: "http_request_duration_seconds_bucket"}, {Name: "le", Value: "0.5"}, {Name: "tenant_id", Value: "team-a"}}
	trace := []storeapi.Label{{Name: "span_id", Value: "s1"}, {Name: "trace_id", Value: "t1"}}
	exemplars := []storeapi.Exemplar{
		{Labels: trace, Value: 0.25, Ts: 1700000000123},
		// Zero value and no labels: the labels are written all the same,
		// the value is the default, omitted.
		{Labels: []storeapi.Label{}, Value: 0, Ts: -5},
		// Negative zero has bits set, and is written.
		{Labels: []storeapi.Label{}, Value: math.Copysign(0, -1), Ts: 1},
		{Labels: []storeapi.Label{}, Value: math.Inf(-1)},
	}
	cases := []struct {
		name string
		ours storeapi.ExemplarsResponse
		ref  func() *dynamicpb.Message
	}{
		{"data", storeapi.ExemplarsResponse{Data: &storeapi.ExemplarData{SeriesLabels: series, Exemplars: exemplars}}, func() *dynamicpb.Message {
			d := thanosMsg(t, "thanos.ExemplarData")
			set(d, "seriesLabels", refSet(series...))
			for _, e := range exemplars {
				re := thanosMsg(t, "thanos.Exemplar")
				set(re, "labels", refSet(e.Labels...))
				set(re, "value", e.Value)
				set(re, "ts", e.Ts)
				add(d, "exemplars", re)
			}
			r := thanosMsg(t, "thanos.ExemplarsResponse")
			set(r, "data", d)
			return r
		}},
		{"no exemplars", storeapi.ExemplarsResponse{Data: &storeapi.ExemplarData{SeriesLabels: []storeapi.Label{}}}, func() *dynamicpb.Message {
			d := thanosMsg(t, "thanos.ExemplarData")
			set(d, "seriesLabels", refSet())
			r := thanosMsg(t, "thanos.ExemplarsResponse")
			set(r, "data", d)
			return r
		}},
		{"warning", storeapi.ExemplarsResponse{Warning: "partial data"}, func() *dynamicpb.Message {
			r := thanosMsg(t, "thanos.ExemplarsResponse")
			set(r, "warning", "partial data")
			return r
		}},
		{"empty warning", storeapi.ExemplarsResponse{}, func() *dynamicpb.Message {
			r := thanosMsg(t, "thanos.ExemplarsResponse")
			set(r, "warning", "")
			return r
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ref := tc.ref()
			checkEncoding(t, tc.ours.AppendMarshal(nil), ref)
			var back storeapi.ExemplarsResponse
			if err := back.Unmarshal(marshalRef(t, ref)); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, tc.ours) {
				t.Errorf("decoded the reference as\n %+v\nwant\n %+v", back, tc.ours)
			}
		})
	}
}

// refSeriesRequest reads a reference SeriesRequest into ours, the way a
// correct decoder must.
func refSeriesRequest(m protoreflect.Message) storeapi.SeriesRequest {
	r := storeapi.SeriesRequest{
		MinTime:                 get(m, "min_time").Int(),
		MaxTime:                 get(m, "max_time").Int(),
		MaxResolutionWindow:     get(m, "max_resolution_window").Int(),
		PartialResponseDisabled: get(m, "partial_response_disabled").Bool(),
		PartialResponseStrategy: int32(get(m, "partial_response_strategy").Enum()),
		SkipChunks:              get(m, "skip_chunks").Bool(),
		WithoutReplicaLabels:    strs(m, "without_replica_labels"),
		Limit:                   get(m, "limit").Int(),
		ResponseBatchSize:       get(m, "response_batch_size").Int(),
	}
	for _, mm := range list(m, "matchers") {
		r.Matchers = append(r.Matchers, storeapi.LabelMatcher{
			Type: storeapi.MatchType(get(mm, "type").Enum()), Name: get(mm, "name").String(), Value: get(mm, "value").String(),
		})
	}
	aggr := get(m, "aggregates").List()
	for i := 0; i < aggr.Len(); i++ {
		r.Aggregates = append(r.Aggregates, int32(aggr.Get(i).Enum()))
	}
	if len(r.WithoutReplicaLabels) == 0 {
		r.WithoutReplicaLabels = nil
	}
	return r
}

// FuzzSeriesRequest holds the decoder the server runs on every Series call
// to the reference: whatever bytes the reference accepts, ours accept and
// read the same way.
func FuzzSeriesRequest(f *testing.F) {
	t := testing.TB(f)
	ref := thanosMsg(t, "thanos.SeriesRequest")
	set(ref, "min_time", int64(-1))
	set(ref, "max_time", int64(99))
	add(ref, "matchers", refMatcher(t, 2, "a", "b.*"))
	add(ref, "aggregates", protoreflect.EnumNumber(3))
	add(ref, "without_replica_labels", "r")
	set(ref, "limit", int64(5))
	f.Add(marshalRef(t, ref))
	f.Add([]byte{})
	f.Add([]byte{0x2a, 0x02, 0x01, 0x02, 0x28, 0x05})
	f.Fuzz(func(t *testing.T, data []byte) {
		m := thanosMsg(t, "thanos.SeriesRequest")
		refErr := proto.Unmarshal(data, m)
		var ours storeapi.SeriesRequest
		err := ours.Unmarshal(data)
		if refErr != nil {
			return // we may be more lenient (no UTF-8 check), never stricter
		}
		if err != nil {
			t.Fatalf("the reference accepts %x, we refuse it: %v", data, err)
		}
		if want := refSeriesRequest(m); !reflect.DeepEqual(ours, want) {
			t.Fatalf("decoded %x as\n %+v\nwant\n %+v", data, ours, want)
		}
	})
}
