package functions

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stratametrics/strata/internal/backoff"
	"github.com/stratametrics/strata/internal/forwarding"
	"github.com/stratametrics/strata/internal/security"
	"github.com/stratametrics/strata/remotewrite"
	"github.com/stratametrics/strata/shard"
	"github.com/stratametrics/strata/writeerr"
)

// endpoint is one block builder as the router sees it: where to send, and
// whether it is backing off after failures.
type endpoint struct {
	addr     string
	writeURL string
	readyURL string
	electURL string

	// downUntil (unix ns) is when writes go to the endpoint again; until
	// then they fail at once instead of waiting on a dead node, and a probe
	// checks it in the background.
	downUntil atomic.Int64
	failures  atomic.Int32
	probing   atomic.Bool
	// retired is set once the endpoint is in no hashring any more: its
	// probe stops and its metric series go, so that endpoints removed
	// over a router's life neither poll forever nor stay in /metrics.
	retired atomic.Bool
	// framed is set while the block builder's answers announce that it
	// takes framed bodies (framed.go).
	framed atomic.Bool
	// inflight counts writes sent and not answered yet.
	inflight atomic.Int32
	// late are its writes still running after their request was answered.
	late lateWrites
	// answers count its answers by result; afterQuorum those that came
	// after their request was answered.
	answers, afterQuorum [numResults]prometheus.Counter
}

func (e *endpoint) down(now time.Time) bool { return e.downUntil.Load() > now.UnixNano() }

// endpoints keeps one endpoint per address over ring reloads, so backoff
// state survives a reload, and maps a ring's endpoint IDs onto them.
type endpoints struct {
	cfg     *Config
	client  *http.Client
	logger  *slog.Logger
	metrics *metrics
	ctx     context.Context // ends with the router; stops probes
	scheme  string          // of endpoints written host:port: http, or https with ForwardTLS
	token   *security.Secret

	mu sync.Mutex
	// byURL is keyed by scheme and address: an endpoint written anew with
	// another scheme is another endpoint.
	byURL map[string]*endpoint
	// forRing caches the endpoints of the last ring seen.
	forRing atomic.Pointer[ringEndpoints]
}

type ringEndpoints struct {
	ring *shard.Ring
	eps  []*endpoint
}

func newEndpoints(ctx context.Context, cfg *Config, logger *slog.Logger, m *metrics) (*endpoints, error) {
	clientTLS, err := cfg.ForwardTLS.TLS()
	if err != nil {
		return nil, fmt.Errorf("STRATA_FORWARD_TLS_*: %w", err)
	}
	var token *security.Secret
	if cfg.ForwardBearerTokenFile != "" {
		if token, err = security.LoadSecret(cfg.ForwardBearerTokenFile); err != nil {
			return nil, fmt.Errorf("STRATA_FORWARD_BEARER_TOKEN_FILE: %w", err)
		}
	}
	// An endpoint written https:// gets TLS even without ForwardTLS: the
	// system's CAs verify it, as they would for any https URL, rather than
	// its data going out in the clear against what the file says.
	scheme := "https"
	if clientTLS == nil {
		scheme = "http"
		if clientTLS, err = (security.ClientConfig{Enabled: true}).TLS(); err != nil {
			return nil, fmt.Errorf("TLS with the system's CAs: %w", err)
		}
	}
	dialer := &net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}
	transport := &http.Transport{
		DialContext:         dialer.DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
		// Bodies are snappy already; never let the transport gzip them.
		DisableCompression: true,
		ForceAttemptHTTP2:  false,
		// TLS is dialed here rather than left to the transport, so that
		// each connection verifies the block builder by the address it
		// dialed, with the CAs of the moment.
		DialTLSContext: clientTLS.DialTLSContext(dialer),
	}
	return &endpoints{
		cfg:     cfg,
		client:  &http.Client{Transport: transport},
		logger:  logger,
		metrics: m,
		ctx:     ctx,
		scheme:  scheme,
		token:   token,
		byURL:   map[string]*endpoint{},
	}, nil
}

// of returns the endpoints of ring, indexed by endpoint ID. On a new
// ring, endpoints it no longer has are retired.
func (e *endpoints) of(ring *shard.Ring) []*endpoint {
	if re := e.forRing.Load(); re != nil && re.ring == ring {
		return re.eps
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	list := ring.Endpoints()
	eps := make([]*endpoint, len(list))
	inUse := make(map[string]bool, len(list))
	for i, se := range list {
		base := cmp.Or(se.Scheme, e.scheme) + "://" + se.Address
		inUse[base] = true
		ep, ok := e.byURL[base]
		if !ok {
			ep = &endpoint{
				addr:     se.Address,
				writeURL: base + "/api/v1/receive",
				readyURL: base + "/-/ready",
				electURL: base + forwarding.ElectPath,
			}
			for res := range numResults {
				ep.answers[res] = e.metrics.forwards.WithLabelValues(ep.addr, res.String())
				ep.afterQuorum[res] = e.metrics.lateForwards.WithLabelValues(ep.addr, res.String())
			}
			e.byURL[base] = ep
			if e.token != nil && strings.HasPrefix(base, "http://") {
				e.logger.Warn("the forward bearer token goes to this block builder in clear: reach it over https (STRATA_FORWARD_TLS_*, or https:// in the hashrings file)", "endpoint", se.Address)
			}
			// Present from the first write the endpoint could take, not
			// from its first failure, so that 1 is seen before 0.
			e.metrics.endpointUp.WithLabelValues(ep.addr).Set(1)
		}
		eps[i] = ep
	}
	for base, ep := range e.byURL {
		if !inUse[base] {
			delete(e.byURL, base)
			e.retire(ep)
		}
	}
	e.forRing.Store(&ringEndpoints{ring: ring, eps: eps})
	return eps
}

// retire forgets an endpoint that left the hashrings. Writes still on
// their way to it finish, uncounted.
func (e *endpoints) retire(ep *endpoint) {
	ep.retired.Store(true)
	for _, other := range e.byURL {
		if other.addr == ep.addr {
			return // the same address under another scheme: its series stay
		}
	}
	e.metrics.forgetEndpoint(ep.addr)
	e.logger.Info("block builder left the hashrings", "endpoint", ep.addr)
}

// countError counts a failed forward, unless the endpoint was retired.
func (e *endpoints) countError(ep *endpoint, reason string) {
	if !ep.retired.Load() {
		e.metrics.forwardErrors.WithLabelValues(ep.addr, reason).Inc()
	}
}

// setUp publishes whether an endpoint takes writes, unless it was retired.
func (e *endpoints) setUp(ep *endpoint, up float64) {
	if !ep.retired.Load() {
		e.metrics.endpointUp.WithLabelValues(ep.addr).Set(up)
	}
}

// forwardResult is one block builder's answer to its part of a request.
type forwardResult struct {
	ep       int // endpoint ID in the request's ring
	status   int // 0 when no answer came
	written  forwarding.Written
	rejected []forwarding.Rejection
	// dropped lists the written series of the part that lost exemplars.
	dropped []forwarding.ExemplarDrop
	err     error
	// series is the number of series of the part.
	series int
}

// result is what a forward's answer says of its part.
type result uint8

const (
	resultWritten result = iota
	resultRefused        // some or all series refused, for good
	resultFailed         // no answer, or one that asks to retry
	numResults
)

func (r result) String() string { return [...]string{"written", "refused", "failed"}[r] }

func (res *forwardResult) result() result {
	switch {
	case res.status/100 == 2:
		return resultWritten
	case writeerr.RefusesData(res.status):
		return resultRefused
	}
	return resultFailed
}

// maxAnswer bounds how much of a block builder's answer is read.
const maxAnswer = 4 << 20

// send posts one part of a request to a block builder, once the late
// writes to it of the same series (after) are done.
func (e *endpoints) send(ctx context.Context, ep *endpoint, id int, v remotewrite.Version, tenant string, body []byte, enc remotewrite.Encoding, after []*flight) forwardResult {
	res := forwardResult{ep: id}
	now := time.Now()
	if ep.down(now) {
		res.err = fmt.Errorf("block builder %s is backing off after %d failures", ep.addr, ep.failures.Load())
		e.countError(ep, "backoff")
		return res
	}
	// A block builder slower than its peers gets no more than this many
	// writes at a time: the answer does not wait for it once a quorum has
	// the data, so without a bound its backlog (and the router's memory)
	// would grow until its writes time out.
	if n := ep.inflight.Add(1); n > int32(e.cfg.ForwardMaxInflight) {
		ep.inflight.Add(-1)
		res.err = fmt.Errorf("block builder %s has %d writes in flight already", ep.addr, n-1)
		e.countError(ep, "overloaded")
		return res
	}
	defer ep.inflight.Add(-1)
	ctx, cancel := context.WithTimeout(ctx, e.cfg.ForwardTimeout)
	defer cancel()
	for _, f := range after {
		select {
		case <-f.done:
		case <-ctx.Done():
			// The block builder is so far behind that its earlier writes
			// of these series are still unanswered: sending this one now
			// would make them out of order there.
			res.err = fmt.Errorf("block builder %s is behind: earlier writes of these series still unanswered after %s", ep.addr, e.cfg.ForwardTimeout)
			e.countError(ep, "behind")
			return res
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.writeURL, bytes.NewReader(body))
	if err != nil {
		res.err = err
		return res
	}
	h := req.Header
	h.Set("Content-Type", v.ContentType())
	h.Set("Content-Encoding", enc.String())
	h.Set(remotewrite.HeaderVersion, v.HeaderValue())
	h.Set(forwarding.HeaderForwarded, "1")
	h.Set("Accept", "application/json")
	h.Set("User-Agent", "strata-router")
	h.Set(forwarding.HeaderForwardedTenant, tenant)
	if e.token != nil {
		h.Set("Authorization", "Bearer "+e.token.Value())
	}

	e.metrics.forwardedBytesBy[enc].Add(float64(len(body)))
	resp, err := e.client.Do(req)
	if !ep.retired.Load() {
		e.metrics.forwardDuration.WithLabelValues(ep.addr).Observe(time.Since(now).Seconds())
	}
	if err != nil {
		res.err = fmt.Errorf("block builder %s: %w", ep.addr, err)
		e.countError(ep, "transport")
		e.markDown(ep)
		return res
	}
	defer resp.Body.Close()
	if framed := remotewrite.AcceptsFramed(resp.Header); framed != ep.framed.Load() {
		ep.framed.Store(framed)
	}
	res.status = resp.StatusCode
	if res.status == http.StatusUnsupportedMediaType && enc == remotewrite.SnappyFramed {
		// Not a failure of the block builder: the caller sends the part
		// again as a block (a block builder rolled back to a release
		// that only takes those).
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswer))
		res.err = fmt.Errorf("block builder %s takes no framed bodies", ep.addr)
		return res
	}
	res.written = forwarding.WrittenFromHeaders(resp.Header)
	if resp.StatusCode/100 == 2 {
		// A 204, the common answer, stored all it was sent; any other
		// success says in JSON which series lost exemplars.
		if resp.StatusCode != http.StatusNoContent {
			answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
			var wr forwarding.WriteResponse
			if json.Unmarshal(answer, &wr) == nil {
				res.dropped = wr.DroppedExemplars
			}
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswer))
		e.markUp(ep)
		return res
	}
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	var wr forwarding.WriteResponse
	if json.Unmarshal(answer, &wr) == nil && wr.Error != "" {
		res.rejected = wr.Rejected
		res.dropped = wr.DroppedExemplars
		res.err = fmt.Errorf("block builder %s: %d: %s", ep.addr, resp.StatusCode, wr.Error)
	} else {
		res.err = fmt.Errorf("block builder %s: %d: %s", ep.addr, resp.StatusCode, bytes.TrimSpace(answer))
	}
	if !writeerr.RefusesData(resp.StatusCode) {
		e.countError(ep, fmt.Sprint(resp.StatusCode))
		if resp.StatusCode != http.StatusTooManyRequests {
			e.markDown(ep)
		}
		return res
	}
	e.markUp(ep)
	return res
}

func (e *endpoints) markUp(ep *endpoint) {
	if ep.failures.Load() != 0 {
		ep.failures.Store(0)
		ep.downUntil.Store(0)
		e.setUp(ep, 1)
	}
}

// markDown backs an endpoint off and starts a probe that brings it back
// as soon as it is ready, without waiting for a write to find out.
func (e *endpoints) markDown(ep *endpoint) {
	wait := e.backoff(ep.failures.Add(1))
	ep.downUntil.Store(time.Now().Add(wait).UnixNano())
	e.setUp(ep, 0)
	if ep.probing.CompareAndSwap(false, true) {
		e.logger.Warn("block builder failing; backing off", "endpoint", ep.addr, "backoff", wait)
		go e.probe(ep)
	}
}

// backoff is how long an endpoint is skipped after failures in a row.
func (e *endpoints) backoff(failures int32) time.Duration {
	return backoff.Exponential(e.cfg.EndpointBackoff, e.cfg.EndpointMaxBackoff, int(failures))
}

func (e *endpoints) probe(ep *endpoint) {
	defer ep.probing.Store(false)
	for {
		wait := time.Until(time.Unix(0, ep.downUntil.Load()))
		select {
		case <-e.ctx.Done():
			return
		case <-time.After(max(wait, 50*time.Millisecond)):
		}
		if ep.failures.Load() == 0 || ep.retired.Load() {
			return // a write got through meanwhile, or it left the ring
		}
		if e.ready(ep) {
			e.logger.Info("block builder back", "endpoint", ep.addr)
			e.markUp(ep)
			return
		}
		ep.downUntil.Store(time.Now().Add(e.backoff(ep.failures.Add(1))).UnixNano())
	}
}

func (e *endpoints) ready(ep *endpoint) bool {
	ctx, cancel := context.WithTimeout(e.ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ep.readyURL, nil)
	if err != nil {
		return false
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<10))
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
