package storeapi

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// Message is every message the server sends: it appends its protobuf
// encoding to b.
type Message interface {
	AppendMarshal(b []byte) []byte
}

// unmarshaler is every message the server receives.
type unmarshaler interface {
	Unmarshal(b []byte) error
}

// rawMessage is a message already encoded, sent as it is: Series builds
// its frames while it reads chunks, so that no chunk outlives the read.
type rawMessage []byte

func (m rawMessage) AppendMarshal(b []byte) []byte { return append(b, m...) }

// codec is the gRPC codec of the hand-written messages. It is named
// "proto" because that is what it speaks: clients send and expect the
// content subtype of protobuf, and any protobuf implementation on the
// other side reads these bytes.
// The server forces it on every service of its port, so messages of
// generated code (gRPC health) go through google.golang.org/protobuf.
type codec struct{}

func (codec) Name() string { return "proto" }

func (codec) Marshal(v any) (mem.BufferSlice, error) {
	switch m := v.(type) {
	case rawMessage:
		return mem.BufferSlice{mem.SliceBuffer(m)}, nil
	case Message:
		return mem.BufferSlice{mem.SliceBuffer(m.AppendMarshal(nil))}, nil
	case proto.Message:
		b, err := proto.Marshal(m)
		if err != nil {
			return nil, err
		}
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	return nil, fmt.Errorf("storeapi codec: cannot marshal %T", v)
}

func (codec) Unmarshal(data mem.BufferSlice, v any) error {
	if pm, ok := v.(proto.Message); ok {
		return proto.Unmarshal(data.Materialize(), pm)
	}
	m, ok := v.(unmarshaler)
	if !ok {
		return fmt.Errorf("storeapi codec: cannot unmarshal into %T", v)
	}
	// Materialize copies: gRPC frees data when this returns, and decoded
	// messages may alias the bytes.
	if err := m.Unmarshal(data.Materialize()); err != nil {
		return fmt.Errorf("decode %T: %w", v, err)
	}
	return nil
}

// The service descriptions, written as protoc-gen-go-grpc would from
// Thanos' rpc.proto files: the full method names are the wire contract
// ("/thanos.info.Info/Info", "/thanos.Store/Series", ...).

// infoService is thanos.info.Info.
var infoService = grpc.ServiceDesc{
	ServiceName: "thanos.info.Info",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Info",
		Handler: func(srv any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
			return unary(srv.(*Server).Info, "/thanos.info.Info/Info", srv, ctx, dec, ic)
		},
	}},
	Metadata: "info/infopb/rpc.proto",
}

// storeService is thanos.Store. Thanos 0.42 dropped Store/Info (the Info
// service replaced it) and serves no other method a querier calls.
var storeService = grpc.ServiceDesc{
	ServiceName: "thanos.Store",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{
		{
			MethodName: "LabelNames",
			Handler: func(srv any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
				return unary(srv.(*Server).LabelNames, "/thanos.Store/LabelNames", srv, ctx, dec, ic)
			},
		},
		{
			MethodName: "LabelValues",
			Handler: func(srv any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
				return unary(srv.(*Server).LabelValues, "/thanos.Store/LabelValues", srv, ctx, dec, ic)
			},
		},
	},
	Streams: []grpc.StreamDesc{{
		StreamName:    "Series",
		ServerStreams: true,
		Handler: func(srv any, stream grpc.ServerStream) error {
			req := &SeriesRequest{}
			if err := stream.RecvMsg(req); err != nil {
				return err
			}
			return srv.(*Server).Series(stream.Context(), req, func(m Message) error { return stream.SendMsg(m) })
		},
	}},
	Metadata: "store/storepb/rpc.proto",
}

// exemplarsService is thanos.Exemplars.
var exemplarsService = grpc.ServiceDesc{
	ServiceName: "thanos.Exemplars",
	HandlerType: (*any)(nil),
	Streams: []grpc.StreamDesc{{
		StreamName:    "Exemplars",
		ServerStreams: true,
		Handler: func(srv any, stream grpc.ServerStream) error {
			req := &ExemplarsRequest{}
			if err := stream.RecvMsg(req); err != nil {
				return err
			}
			return srv.(*Server).Exemplars(stream.Context(), req, func(m Message) error { return stream.SendMsg(m) })
		},
	}},
	Metadata: "exemplars/exemplarspb/rpc.proto",
}

// unary decodes a request of type *Req, runs the interceptor chain, if
// any, and calls fn.
func unary[Req any, Resp any, PReq interface {
	*Req
	unmarshaler
}](fn func(context.Context, PReq) (Resp, error), method string, srv any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
	req := PReq(new(Req))
	if err := dec(req); err != nil {
		return nil, err
	}
	if ic == nil {
		return fn(ctx, req)
	}
	info := &grpc.UnaryServerInfo{Server: srv, FullMethod: method}
	return ic(ctx, req, info, func(ctx context.Context, r any) (any, error) { return fn(ctx, r.(PReq)) })
}
