package blockbuilder

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/stratametrics/strata/internal/forwarding"
	"github.com/stratametrics/strata/limits"
	"github.com/stratametrics/strata/remotewrite"
	"github.com/stratametrics/strata/validation"
	"github.com/stratametrics/strata/writeerr"
)

// Handler serves remote-write (the router's forwards and plain senders
// alike) and the health endpoints.
func (b *BlockBuilder) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/receive", b.handleWrite)
	mux.HandleFunc("POST /api/v1/write", b.handleWrite)
	mux.HandleFunc("POST /api/v1/otlp/v1/metrics", b.handleOTLP)
	mux.HandleFunc("POST /otlp/v1/metrics", b.handleOTLP)
	mux.HandleFunc("POST "+forwarding.ElectPath, b.handleElect)
	mux.HandleFunc("GET /-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "healthy")
	})
	mux.HandleFunc("GET /-/ready", func(w http.ResponseWriter, _ *http.Request) {
		if !b.Ready() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	return mux
}

// Authorize checks that a request may write or read the tenant: with
// STRATA_BEARER_TOKEN_FILE, it must carry a token allowed for the tenant.
// Its errors wrap writeerr.ErrUnauthorized or writeerr.ErrForbidden.
func (b *BlockBuilder) Authorize(h http.Header, tenant string) error {
	if b.tokens == nil {
		return nil
	}
	return b.tokens.Authorize(h, tenant)
}

func (b *BlockBuilder) handleWrite(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	forwarded := r.Header.Get(forwarding.HeaderForwarded) != ""
	// Routers that see it send parts as framed streams (see
	// functions/framed.go); on every answer, so a router learns it from
	// the first, and stops when a rollback takes it away.
	w.Header()["Accept-Encoding"] = acceptEncoding
	tenant, version, res, err := b.serveWrite(r, forwarded)
	status := b.respond(w, forwarded, version, res, err)
	// Only open tenants get series of their own: refused writes naming
	// any tenant they like must not grow the metrics without bound.
	if !b.isOpen(tenant) {
		tenant = ""
	}
	b.metrics.observe(tenant, status, res, time.Since(start))
}

// serveWrite does the work of one write; respond turns its outcome into
// the answer.
// version is 0 until the content type was negotiated.
func (b *BlockBuilder) serveWrite(r *http.Request, forwarded bool) (string, remotewrite.Version, appendResult, error) {
	if !b.Ready() {
		return "", 0, appendResult{}, errNotReady
	}
	version, enc, err := remotewrite.NegotiateEncoding(r.Header)
	if err != nil {
		return "", 0, appendResult{}, err
	}
	tenant, res, err := b.serveVersion(r, forwarded, version, enc)
	return tenant, version, res, err
}

var acceptEncoding = []string{remotewrite.AcceptEncoding}

// admitWrite finds the tenant of a write and checks that the request may
// write it. A router's forward carries the tenant the router resolved
// (from its header, its default or the sender's client certificate):
// the block builder's own tenant settings are for senders writing to it
// directly.
func (b *BlockBuilder) admitWrite(r *http.Request, forwarded bool) (string, error) {
	src := b.tenancy
	if forwarded && r.Header.Get(forwarding.HeaderForwardedTenant) != "" {
		src = validation.TenantSource{Header: forwarding.HeaderForwardedTenant}
	}
	tenant, err := src.Tenant(r.Header, r.TLS)
	if err != nil {
		return "", err
	}
	if err := b.Authorize(r.Header, tenant); err != nil {
		return "", err
	}
	return tenant, nil
}

func (b *BlockBuilder) serveVersion(r *http.Request, forwarded bool, version remotewrite.Version, enc remotewrite.Encoding) (string, appendResult, error) {
	tenant, err := b.admitWrite(r, forwarded)
	if err != nil {
		return "", appendResult{}, err
	}
	set := b.limits.Set()
	tl := set.For(tenant)
	compressed := b.compressed.Get()
	defer b.compressed.Put(compressed)
	if err := remotewrite.ReadBody(compressed, r.Body, r.ContentLength, tl.MaxBodyBytes); err != nil {
		return tenant, appendResult{}, err
	}
	raw := b.raw.Get()
	defer b.raw.Put(raw)
	if err := remotewrite.Decode(raw, compressed.B, enc, tl.MaxDecodedBytes); err != nil {
		return tenant, appendResult{}, err
	}
	st := b.states.Get().(*appendState)
	defer b.putState(st)
	if err := st.req.Parse(version, raw.B); err != nil {
		return tenant, appendResult{}, err
	}
	res, err := b.appendParsed(r, tenant, set, st)
	return tenant, res, err
}

// appendParsed writes a parsed request (st.req) into the tenant's TSDB:
// the write path of every protocol once its body is a remote-write
// request, under the limits set the request was read with.
func (b *BlockBuilder) appendParsed(r *http.Request, tenant string, set *limits.Set, st *appendState) (appendResult, error) {
	tl := set.For(tenant)
	if n := st.numSeries(); n > tl.MaxSeriesPerRequest {
		return appendResult{}, fmt.Errorf("%w: %d series in one request, the limit is %d", writeerr.ErrTooLarge, n, tl.MaxSeriesPerRequest)
	}
	// Only appending holds the gate: a slow client's body, read above,
	// cannot hold up a shutdown.
	b.gate.RLock()
	defer b.gate.RUnlock()
	if !b.Ready() {
		return appendResult{}, errNotReady
	}
	return b.write(r.Context(), tenant, set, st, time.Now().UnixMilli())
}

var errNotReady = fmt.Errorf("%w: block builder is starting or shutting down", writeerr.ErrUnavailable)

// respond answers a write: 204 with the written counts, or the status of
// the error, or of the worst rejection. Forwarded requests get the
// rejections, and the series that lost exemplars, as JSON for the router's
// per-series quorum and written counts; a forwarded write that stored
// everything is a 204 like any other.
func (b *BlockBuilder) respond(w http.ResponseWriter, forwarded bool, version remotewrite.Version, res appendResult, err error) int {
	if err == nil {
		err = forwarding.RejectionsError(res.rejected, func(r forwarding.Rejection) string {
			return fmt.Sprintf("series %d: %s", r.Series, r.Reason)
		})
	}
	status := writeerr.HTTPStatus(err)
	if forwarded {
		res.written.SetForwardedHeaders(w.Header())
	} else {
		res.written.SetHeaders(version, w.Header())
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	if err == nil {
		if forwarded && len(res.dropped) > 0 {
			// A 204 has no body to say which series lost exemplars.
			return answerJSON(w, http.StatusOK, forwarding.WriteResponse{Written: res.written, DroppedExemplars: res.dropped})
		}
		w.WriteHeader(status)
		return status
	}
	if forwarded {
		return answerJSON(w, status, forwarding.WriteResponse{
			Error: err.Error(), Written: res.written, Rejected: res.rejected, DroppedExemplars: res.dropped,
		})
	}
	http.Error(w, err.Error(), status)
	return status
}

func answerJSON(w http.ResponseWriter, status int, wr forwarding.WriteResponse) int {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(wr)
	return status
}

// putState returns a write's scratch space to the pool, without what it
// held of the request.
func (b *BlockBuilder) putState(st *appendState) {
	st.release()
	b.states.Put(st)
}
