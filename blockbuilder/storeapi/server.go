// Package storeapi serves Thanos' StoreAPI over gRPC from a block
// builder's tenants, so that an unmodified Thanos Query reads the hours of
// data that are not in the bucket yet, as it does from Thanos Receive.
//
// It speaks the Info service (thanos.info.Info/Info), which Query calls to
// learn an endpoint's label sets and time range, the Store service's
// Series, LabelNames and LabelValues, and the Exemplars service
// (thanos.Exemplars/Exemplars), which serves the exemplars of the tenants'
// heads: blocks do not carry them. Each tenant is one label set, its
// external labels (tenant, replica, extra labels); series carry them.
//
// The one thing to know before changing it: the messages are hand-written
// (wire.go) against Thanos' .proto files, and wire_test.go checks them
// against an independent protobuf implementation. Change a field there
// first, and only to match Thanos.
package storeapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	_ "google.golang.org/grpc/encoding/gzip" // Query may be run with --grpc-compression=gzip.
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/stratametrics/strata/blockbuilder"
)

// ComponentType is what Info says this endpoint is. Thanos Query treats
// "receive" endpoints as holding recent, replicated data, which is what a
// block builder is.
const ComponentType = "receive"

// Tenants is what the server reads: a block builder's open tenants.
type Tenants interface {
	Tenants() []blockbuilder.TenantView
}

// Options configure a Server.
type Options struct {
	// Limits bound each Series and Exemplars call (series, samples or
	// exemplars, duration).
	Limits blockbuilder.QueryLimits
	// Ready, if set, must say true before Info answers: until then Query
	// is told the endpoint is unavailable rather than that it is empty.
	Ready func() bool
	// Logger, if set, logs server errors.
	Logger *slog.Logger
	// NoExemplars: the tenants keep no exemplars (exemplar storage off),
	// so Info does not offer them and Query does not ask.
	NoExemplars bool
}

// Server answers the StoreAPI from Tenants.
type Server struct {
	tenants Tenants
	opts    Options
	logger  *slog.Logger
	parser  parser.Parser // of Exemplars' queries
}

// New returns a Server over tenants.
func New(tenants Tenants, opts Options) (*Server, error) {
	if err := opts.Limits.Validate(); err != nil {
		return nil, err
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Server{tenants: tenants, opts: opts, logger: logger, parser: parser.NewParser(parser.Options{})}, nil
}

// NewGRPCServer returns a gRPC server that uses the StoreAPI codec, with
// s registered on it, and gRPC's health service (grpc.health.v1), which
// Kubernetes' gRPC probes and load balancers ask. Other services can be
// registered too, if their messages implement AppendMarshal and
// Unmarshal or are generated protobuf messages.
func (s *Server) NewGRPCServer(opts ...grpc.ServerOption) *grpc.Server {
	g, _ := s.newGRPCServer(opts...)
	return g
}

func (s *Server) newGRPCServer(opts ...grpc.ServerOption) (*grpc.Server, *health.Server) {
	// gRPC's default limit on received messages (4 MiB) bounds what a
	// client can send; requests are small.
	opts = append([]grpc.ServerOption{grpc.ForceServerCodecV2(codec{})}, opts...)
	g := grpc.NewServer(opts...)
	s.Register(g)
	h := health.NewServer()
	for _, name := range []string{"", infoService.ServiceName, storeService.ServiceName, exemplarsService.ServiceName} {
		h.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	healthpb.RegisterHealthServer(g, h)
	return g, h
}

// Register adds the Info, Store and Exemplars services to g, which must
// use the StoreAPI codec (see NewGRPCServer).
func (s *Server) Register(g *grpc.Server) {
	g.RegisterService(&infoService, s)
	g.RegisterService(&storeService, s)
	g.RegisterService(&exemplarsService, s)
}

// Serve serves the StoreAPI on l until ctx ends, then lets calls in
// flight finish for up to drain before it cuts them. opts are added to
// the gRPC server's (TLS credentials, ...).
func (s *Server) Serve(ctx context.Context, l net.Listener, drain time.Duration, opts ...grpc.ServerOption) error {
	g, h := s.newGRPCServer(opts...)
	errc := make(chan error, 1)
	go func() { errc <- g.Serve(l) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve StoreAPI: %w", err)
	case <-ctx.Done():
	}
	// Probes see the drain before the port closes.
	h.Shutdown()
	stopped := make(chan struct{})
	go func() {
		g.GracefulStop()
		close(stopped)
	}()
	t := time.NewTimer(drain)
	defer t.Stop()
	select {
	case <-stopped:
	case <-t.C:
		g.Stop()
		<-stopped
	}
	if err := <-errc; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("serve StoreAPI: %w", err)
	}
	return nil
}

// Info says which label sets (one per tenant) and which time range this
// endpoint holds, and that it serves exemplars. The time range ends at the
// largest time: data keeps arriving, and Query must not skip the endpoint
// for recent queries between two Info calls.
func (s *Server) Info(_ context.Context, _ *InfoRequest) (*InfoResponse, error) {
	if s.opts.Ready != nil && !s.opts.Ready() {
		return nil, status.Error(codes.Unavailable, "block builder is not ready")
	}
	tenants := s.tenants.Tenants()
	resp := &InfoResponse{
		LabelSets:     make([][]Label, 0, len(tenants)),
		ComponentType: ComponentType,
		Store: &StoreInfo{
			MinTime:                      math.MaxInt64,
			MaxTime:                      math.MaxInt64,
			SupportsWithoutReplicaLabels: true,
			TSDBInfos:                    make([]TSDBInfo, 0, len(tenants)),
		},
	}
	if !s.opts.NoExemplars {
		// Any time: a tenant's ring keeps exemplars by count, not by age,
		// and may hold some older than its first sample.
		resp.Exemplars = &ExemplarsInfo{MinTime: math.MinInt64, MaxTime: math.MaxInt64}
	}
	for _, t := range tenants {
		ls := wireLabels(nil, t.ExternalLabels)
		mint, err := t.DB.StartTime()
		if err != nil {
			return nil, status.Errorf(codes.Internal, "tenant %s: start time: %v", t.ID, err)
		}
		resp.LabelSets = append(resp.LabelSets, ls)
		resp.Store.TSDBInfos = append(resp.Store.TSDBInfos, TSDBInfo{Labels: ls, MinTime: mint, MaxTime: math.MaxInt64})
		resp.Store.MinTime = min(resp.Store.MinTime, mint)
	}
	if len(tenants) == 0 {
		// Nothing yet: the whole range, as Thanos Receive says when it
		// has no tenant, so that Query keeps asking.
		resp.Store.MinTime = math.MinInt64
	}
	return resp, nil
}

func wireLabels(dst []Label, ls labels.Labels) []Label {
	dst = dst[:0]
	ls.Range(func(l labels.Label) { dst = append(dst, Label{Name: l.Name, Value: l.Value}) })
	return dst
}

// promMatchers converts matchers, refusing bad regular expressions.
func promMatchers(ms []LabelMatcher) ([]*labels.Matcher, error) {
	out := make([]*labels.Matcher, 0, len(ms))
	for _, m := range ms {
		var t labels.MatchType
		switch m.Type {
		case MatchEQ:
			t = labels.MatchEqual
		case MatchNEQ:
			t = labels.MatchNotEqual
		case MatchRE:
			t = labels.MatchRegexp
		case MatchNRE:
			t = labels.MatchNotRegexp
		default:
			return nil, fmt.Errorf("matcher %s: unknown type %d", m.Name, m.Type)
		}
		pm, err := labels.NewMatcher(t, m.Name, m.Value)
		if err != nil {
			return nil, fmt.Errorf("matcher %s: %w", m.Name, err)
		}
		out = append(out, pm)
	}
	return out, nil
}

// tenantMatchers splits matchers for one tenant: those on its external
// labels are decided here against the label's value (false: the tenant is
// not selected); the others are returned for the TSDB. A matcher on an
// external label the client asked to drop still selects by it, as Thanos
// does.
func tenantMatchers(ms []*labels.Matcher, ext labels.Labels) (bool, []*labels.Matcher) {
	var rest []*labels.Matcher
	for _, m := range ms {
		if !ext.Has(m.Name) {
			rest = append(rest, m)
			continue
		}
		if !m.Matches(ext.Get(m.Name)) {
			return false, nil
		}
	}
	return true, rest
}

// selectAll stands for "every series" when all matchers were on external
// labels: the TSDB needs one, and this one selects all postings.
var selectAll = labels.MustNewMatcher(labels.MatchRegexp, model.MetricNameLabel, ".*")

// grpcError turns an error into a gRPC status: the context's own errors
// keep their meaning (a client's deadline is DeadlineExceeded), limits are
// ResourceExhausted, anything else is Internal.
func grpcError(ctx context.Context, err error) error {
	if _, ok := status.FromError(err); ok && status.Code(err) != codes.Unknown {
		return err
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, context.Canceled) || errors.Is(ctx.Err(), context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, errTooManySeries), errors.Is(err, errTooManySamples):
		return status.Error(codes.ResourceExhausted, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

// withTimeout applies the configured query timeout to ctx.
func (s *Server) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.opts.Limits.Timeout > 0 {
		return context.WithTimeout(ctx, s.opts.Limits.Timeout)
	}
	return context.WithCancel(ctx)
}
