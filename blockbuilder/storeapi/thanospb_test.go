package storeapi_test

import (
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/anypb"
)

// The reference the tests hold the hand-written messages to: Thanos
// 0.42's .proto files (store/labelpb/types.proto, store/storepb/types.proto,
// store/storepb/rpc.proto, exemplars/exemplarspb/rpc.proto,
// info/infopb/rpc.proto), transcribed field by
// field into descriptors, every field of each message kept, and turned
// into messages by google.golang.org/protobuf's dynamicpb. Nothing here
// shares code with wire.go: a field number or type copied wrong in one
// place fails the tests.

type fieldType = descriptorpb.FieldDescriptorProto_Type

const (
	tInt64  = descriptorpb.FieldDescriptorProto_TYPE_INT64
	tDouble = descriptorpb.FieldDescriptorProto_TYPE_DOUBLE
	tUint64 = descriptorpb.FieldDescriptorProto_TYPE_UINT64
	tBool   = descriptorpb.FieldDescriptorProto_TYPE_BOOL
	tString = descriptorpb.FieldDescriptorProto_TYPE_STRING
	tBytes  = descriptorpb.FieldDescriptorProto_TYPE_BYTES
	tEnum   = descriptorpb.FieldDescriptorProto_TYPE_ENUM
	tMsg    = descriptorpb.FieldDescriptorProto_TYPE_MESSAGE
)

type fieldSpec struct {
	name     string
	num      int32
	typ      fieldType
	typeName string // for messages and enums, fully qualified
	repeated bool
	oneof    *int32
}

func f(name string, num int32, typ fieldType) fieldSpec {
	return fieldSpec{name: name, num: num, typ: typ}
}

func fm(name string, num int32, typ fieldType, typeName string) fieldSpec {
	return fieldSpec{name: name, num: num, typ: typ, typeName: typeName}
}

func rep(s fieldSpec) fieldSpec { s.repeated = true; return s }

func inOneof(s fieldSpec, idx int32) fieldSpec { s.oneof = &idx; return s }

func message(name string, fields ...fieldSpec) *descriptorpb.DescriptorProto {
	m := &descriptorpb.DescriptorProto{Name: proto.String(name)}
	for _, s := range fields {
		label := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL
		if s.repeated {
			label = descriptorpb.FieldDescriptorProto_LABEL_REPEATED
		}
		fd := &descriptorpb.FieldDescriptorProto{
			Name:     proto.String(s.name),
			Number:   proto.Int32(s.num),
			Label:    label.Enum(),
			Type:     s.typ.Enum(),
			JsonName: proto.String(s.name),
		}
		if s.typeName != "" {
			fd.TypeName = proto.String(s.typeName)
		}
		if s.oneof != nil {
			fd.OneofIndex = proto.Int32(*s.oneof)
		}
		m.Field = append(m.Field, fd)
	}
	return m
}

func enum(name string, values ...string) *descriptorpb.EnumDescriptorProto {
	e := &descriptorpb.EnumDescriptorProto{Name: proto.String(name)}
	for i, v := range values {
		e.Value = append(e.Value, &descriptorpb.EnumValueDescriptorProto{Name: proto.String(v), Number: proto.Int32(int32(i))})
	}
	return e
}

func method(name, in, out string, serverStreaming bool) *descriptorpb.MethodDescriptorProto {
	m := &descriptorpb.MethodDescriptorProto{Name: proto.String(name), InputType: proto.String(in), OutputType: proto.String(out)}
	if serverStreaming {
		m.ServerStreaming = proto.Bool(true)
	}
	return m
}

func thanosFiles() []*descriptorpb.FileDescriptorProto {
	proto3 := proto.String("proto3")
	labelpb := &descriptorpb.FileDescriptorProto{
		Name: proto.String("store/labelpb/types.proto"), Package: proto.String("thanos"), Syntax: proto3,
		MessageType: []*descriptorpb.DescriptorProto{
			message("Label", f("name", 1, tString), f("value", 2, tString)),
			message("LabelSet", rep(fm("labels", 1, tMsg, ".thanos.Label"))),
			message("ZLabelSet", rep(fm("labels", 1, tMsg, ".thanos.Label"))),
		},
	}

	chunk := message("Chunk", fm("type", 1, tEnum, ".thanos.Chunk.Encoding"), f("data", 2, tBytes), f("hash", 3, tUint64))
	chunk.EnumType = append(chunk.EnumType, enum("Encoding", "XOR", "HISTOGRAM", "FLOAT_HISTOGRAM"))
	matcher := message("LabelMatcher", fm("type", 1, tEnum, ".thanos.LabelMatcher.Type"), f("name", 2, tString), f("value", 3, tString))
	matcher.EnumType = append(matcher.EnumType, enum("Type", "EQ", "NEQ", "RE", "NRE"))
	storeTypes := &descriptorpb.FileDescriptorProto{
		Name: proto.String("store/storepb/types.proto"), Package: proto.String("thanos"), Syntax: proto3,
		Dependency: []string{"store/labelpb/types.proto"},
		MessageType: []*descriptorpb.DescriptorProto{
			chunk,
			message("Series", rep(fm("labels", 1, tMsg, ".thanos.Label")), rep(fm("chunks", 2, tMsg, ".thanos.AggrChunk"))),
			message("SeriesBatch", rep(fm("series", 1, tMsg, ".thanos.Series"))),
			message("AggrChunk",
				f("min_time", 1, tInt64), f("max_time", 2, tInt64),
				fm("raw", 3, tMsg, ".thanos.Chunk"), fm("count", 4, tMsg, ".thanos.Chunk"),
				fm("sum", 5, tMsg, ".thanos.Chunk"), fm("min", 6, tMsg, ".thanos.Chunk"),
				fm("max", 7, tMsg, ".thanos.Chunk"), fm("counter", 8, tMsg, ".thanos.Chunk")),
			matcher,
		},
		EnumType: []*descriptorpb.EnumDescriptorProto{enum("PartialResponseStrategy", "WARN", "ABORT")},
	}

	seriesResp := message("SeriesResponse",
		inOneof(fm("series", 1, tMsg, ".thanos.Series"), 0),
		inOneof(f("warning", 2, tString), 0),
		inOneof(fm("hints", 3, tMsg, ".google.protobuf.Any"), 0),
		inOneof(fm("batch", 4, tMsg, ".thanos.SeriesBatch"), 0))
	seriesResp.OneofDecl = []*descriptorpb.OneofDescriptorProto{{Name: proto.String("result")}}
	storeRPC := &descriptorpb.FileDescriptorProto{
		Name: proto.String("store/storepb/rpc.proto"), Package: proto.String("thanos"), Syntax: proto3,
		Dependency: []string{"store/storepb/types.proto", "google/protobuf/any.proto"},
		MessageType: []*descriptorpb.DescriptorProto{
			message("SeriesRequest",
				f("min_time", 1, tInt64), f("max_time", 2, tInt64),
				rep(fm("matchers", 3, tMsg, ".thanos.LabelMatcher")),
				f("max_resolution_window", 4, tInt64),
				rep(fm("aggregates", 5, tEnum, ".thanos.Aggr")),
				f("partial_response_disabled", 6, tBool),
				fm("partial_response_strategy", 7, tEnum, ".thanos.PartialResponseStrategy"),
				f("skip_chunks", 8, tBool),
				fm("hints", 9, tMsg, ".google.protobuf.Any"),
				f("step", 10, tInt64), f("range", 11, tInt64),
				fm("query_hints", 12, tMsg, ".thanos.QueryHints"),
				fm("shard_info", 13, tMsg, ".thanos.ShardInfo"),
				rep(f("without_replica_labels", 14, tString)),
				f("limit", 15, tInt64),
				f("response_batch_size", 16, tInt64)),
			message("QueryHints",
				f("step_millis", 1, tInt64), fm("func", 2, tMsg, ".thanos.Func"),
				fm("grouping", 4, tMsg, ".thanos.Grouping"), fm("range", 5, tMsg, ".thanos.Range"),
				rep(f("projection_labels", 6, tString)), f("projection_include", 7, tBool)),
			message("ShardInfo", f("shard_index", 1, tInt64), f("total_shards", 2, tInt64), f("by", 3, tBool), rep(f("labels", 4, tString))),
			message("Func", f("name", 1, tString)),
			message("Grouping", f("by", 1, tBool), rep(f("labels", 3, tString))),
			message("Range", f("millis", 1, tInt64)),
			seriesResp,
			message("LabelNamesRequest",
				f("partial_response_disabled", 1, tBool),
				fm("partial_response_strategy", 2, tEnum, ".thanos.PartialResponseStrategy"),
				f("start", 3, tInt64), f("end", 4, tInt64),
				fm("hints", 5, tMsg, ".google.protobuf.Any"),
				rep(fm("matchers", 6, tMsg, ".thanos.LabelMatcher")),
				rep(f("without_replica_labels", 7, tString)),
				f("limit", 8, tInt64)),
			message("LabelNamesResponse", rep(f("names", 1, tString)), rep(f("warnings", 2, tString)), fm("hints", 3, tMsg, ".google.protobuf.Any")),
			message("LabelValuesRequest",
				f("label", 1, tString),
				f("partial_response_disabled", 2, tBool),
				fm("partial_response_strategy", 3, tEnum, ".thanos.PartialResponseStrategy"),
				f("start", 4, tInt64), f("end", 5, tInt64),
				fm("hints", 6, tMsg, ".google.protobuf.Any"),
				rep(fm("matchers", 7, tMsg, ".thanos.LabelMatcher")),
				rep(f("without_replica_labels", 8, tString)),
				f("limit", 9, tInt64)),
			message("LabelValuesResponse", rep(f("values", 1, tString)), rep(f("warnings", 2, tString)), fm("hints", 3, tMsg, ".google.protobuf.Any")),
		},
		EnumType: []*descriptorpb.EnumDescriptorProto{enum("Aggr", "RAW", "COUNT", "SUM", "MIN", "MAX", "COUNTER")},
		Service: []*descriptorpb.ServiceDescriptorProto{{
			Name: proto.String("Store"),
			Method: []*descriptorpb.MethodDescriptorProto{
				method("Series", ".thanos.SeriesRequest", ".thanos.SeriesResponse", true),
				method("LabelNames", ".thanos.LabelNamesRequest", ".thanos.LabelNamesResponse", false),
				method("LabelValues", ".thanos.LabelValuesRequest", ".thanos.LabelValuesResponse", false),
			},
		}},
	}

	// Thanos' gogo-generated code types the label sets ZLabelSet, its
	// newer code LabelSet: the same message on the wire.
	exemplarsResp := message("ExemplarsResponse",
		inOneof(fm("data", 1, tMsg, ".thanos.ExemplarData"), 0),
		inOneof(f("warning", 2, tString), 0))
	exemplarsResp.OneofDecl = []*descriptorpb.OneofDescriptorProto{{Name: proto.String("result")}}
	exemplarsRPC := &descriptorpb.FileDescriptorProto{
		Name: proto.String("exemplars/exemplarspb/rpc.proto"), Package: proto.String("thanos"), Syntax: proto3,
		Dependency: []string{"store/storepb/types.proto", "store/labelpb/types.proto"},
		MessageType: []*descriptorpb.DescriptorProto{
			message("ExemplarsRequest",
				f("query", 1, tString),
				f("start", 2, tInt64), f("end", 3, tInt64),
				fm("partial_response_strategy", 4, tEnum, ".thanos.PartialResponseStrategy")),
			exemplarsResp,
			message("ExemplarData",
				fm("seriesLabels", 1, tMsg, ".thanos.LabelSet"),
				rep(fm("exemplars", 2, tMsg, ".thanos.Exemplar"))),
			message("Exemplar",
				fm("labels", 1, tMsg, ".thanos.LabelSet"),
				f("value", 2, tDouble),
				f("ts", 3, tInt64)),
		},
		Service: []*descriptorpb.ServiceDescriptorProto{{
			Name:   proto.String("Exemplars"),
			Method: []*descriptorpb.MethodDescriptorProto{method("Exemplars", ".thanos.ExemplarsRequest", ".thanos.ExemplarsResponse", true)},
		}},
	}

	infoRPC := &descriptorpb.FileDescriptorProto{
		Name: proto.String("info/infopb/rpc.proto"), Package: proto.String("thanos.info"), Syntax: proto3,
		Dependency: []string{"store/labelpb/types.proto"},
		MessageType: []*descriptorpb.DescriptorProto{
			message("InfoRequest"),
			message("InfoResponse",
				rep(fm("label_sets", 1, tMsg, ".thanos.ZLabelSet")),
				f("ComponentType", 2, tString),
				fm("store", 3, tMsg, ".thanos.info.StoreInfo"),
				fm("rules", 4, tMsg, ".thanos.info.RulesInfo"),
				fm("metric_metadata", 5, tMsg, ".thanos.info.MetricMetadataInfo"),
				fm("targets", 6, tMsg, ".thanos.info.TargetsInfo"),
				fm("exemplars", 7, tMsg, ".thanos.info.ExemplarsInfo"),
				fm("query", 8, tMsg, ".thanos.info.QueryAPIInfo"),
				fm("status", 9, tMsg, ".thanos.info.StatusInfo")),
			message("StoreInfo",
				f("min_time", 1, tInt64), f("max_time", 2, tInt64),
				f("supports_sharding", 3, tBool),
				f("supports_without_replica_labels", 5, tBool),
				rep(fm("tsdb_infos", 6, tMsg, ".thanos.info.TSDBInfo"))),
			message("RulesInfo"),
			message("MetricMetadataInfo"),
			message("TargetsInfo"),
			message("ExemplarsInfo", f("min_time", 1, tInt64), f("max_time", 2, tInt64)),
			message("QueryAPIInfo"),
			message("StatusInfo"),
			message("TSDBInfo", fm("labels", 1, tMsg, ".thanos.ZLabelSet"), f("min_time", 2, tInt64), f("max_time", 3, tInt64)),
		},
		Service: []*descriptorpb.ServiceDescriptorProto{{
			Name:   proto.String("Info"),
			Method: []*descriptorpb.MethodDescriptorProto{method("Info", ".thanos.info.InfoRequest", ".thanos.info.InfoResponse", false)},
		}},
	}
	return []*descriptorpb.FileDescriptorProto{
		protodesc.ToFileDescriptorProto(anypb.File_google_protobuf_any_proto),
		labelpb, storeTypes, storeRPC, exemplarsRPC, infoRPC,
	}
}

var (
	thanosOnce sync.Once
	thanosReg  *protoregistry.Files
	thanosErr  error
)

// thanosMsg returns a new, empty reference message by full name, e.g.
// "thanos.SeriesRequest".
func thanosMsg(t testing.TB, name string) *dynamicpb.Message {
	t.Helper()
	thanosOnce.Do(func() {
		thanosReg, thanosErr = protodesc.NewFiles(&descriptorpb.FileDescriptorSet{File: thanosFiles()})
	})
	if thanosErr != nil {
		t.Fatalf("build the reference descriptors: %v", thanosErr)
	}
	d, err := thanosReg.FindDescriptorByName(protoreflect.FullName(name))
	if err != nil {
		t.Fatalf("reference message %s: %v", name, err)
	}
	return dynamicpb.NewMessage(d.(protoreflect.MessageDescriptor))
}

// Helpers to read and build reference messages by field name.

func fd(m protoreflect.Message, name string) protoreflect.FieldDescriptor {
	d := m.Descriptor().Fields().ByName(protoreflect.Name(name))
	if d == nil {
		panic("no field " + name + " in " + string(m.Descriptor().FullName()))
	}
	return d
}

func get(m protoreflect.Message, name string) protoreflect.Value { return m.Get(fd(m, name)) }

func set(m protoreflect.Message, name string, v any) {
	d := fd(m, name)
	switch x := v.(type) {
	case protoreflect.Value:
		m.Set(d, x)
	case protoreflect.EnumNumber:
		m.Set(d, protoreflect.ValueOfEnum(x))
	case *dynamicpb.Message:
		m.Set(d, protoreflect.ValueOfMessage(x))
	default:
		m.Set(d, protoreflect.ValueOf(v))
	}
}

// add appends to a repeated field.
func add(m protoreflect.Message, name string, v any) {
	l := m.Mutable(fd(m, name)).List()
	switch x := v.(type) {
	case *dynamicpb.Message:
		l.Append(protoreflect.ValueOfMessage(x))
	case protoreflect.EnumNumber:
		l.Append(protoreflect.ValueOfEnum(x))
	default:
		l.Append(protoreflect.ValueOf(v))
	}
}

// list returns a repeated field's messages.
func list(m protoreflect.Message, name string) []protoreflect.Message {
	l := get(m, name).List()
	out := make([]protoreflect.Message, l.Len())
	for i := range out {
		out[i] = l.Get(i).Message()
	}
	return out
}

func strs(m protoreflect.Message, name string) []string {
	l := get(m, name).List()
	out := make([]string, l.Len())
	for i := range out {
		out[i] = l.Get(i).String()
	}
	return out
}
