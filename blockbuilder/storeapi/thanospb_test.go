package storeapi_test

import (
	"context"
	"sync"
	"testing"

	"github.com/bufbuild/protocompile"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"
)

// The reference the tests hold the hand-written messages to: Thanos
// 0.42.5's own .proto files (testdata/proto, copied unchanged from the
// Thanos module with its licence, and gogoproto's gogo.proto they import),
// compiled when the tests run and turned into messages by
// google.golang.org/protobuf's dynamicpb. Nothing here shares code with
// wire.go: a field number or type written wrong there fails the tests.

// thanosProtoFiles are the files compiled, by their import paths.
var thanosProtoFiles = []string{
	"store/labelpb/types.proto",
	"store/storepb/types.proto",
	"store/storepb/prompb/types.proto",
	"store/storepb/rpc.proto",
	"exemplars/exemplarspb/rpc.proto",
	"info/infopb/rpc.proto",
}

func compileThanosProtos() (*protoregistry.Files, error) {
	c := protocompile.Compiler{
		Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{ImportPaths: []string{"testdata/proto"}}),
	}
	files, err := c.Compile(context.Background(), thanosProtoFiles...)
	if err != nil {
		return nil, err
	}
	reg := new(protoregistry.Files)
	var register func(fd protoreflect.FileDescriptor) error
	register = func(fd protoreflect.FileDescriptor) error {
		if _, err := reg.FindFileByPath(fd.Path()); err == nil {
			return nil
		}
		imports := fd.Imports()
		for i := range imports.Len() {
			if err := register(imports.Get(i).FileDescriptor); err != nil {
				return err
			}
		}
		return reg.RegisterFile(fd)
	}
	for _, f := range files {
		if err := register(f); err != nil {
			return nil, err
		}
	}
	return reg, nil
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
		thanosReg, thanosErr = compileThanosProtos()
	})
	if thanosErr != nil {
		t.Fatalf("compile Thanos' .proto files: %v", thanosErr)
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
