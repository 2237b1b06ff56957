package functions

import (
	"net/http"
	"time"

	"github.com/stratametrics/strata/otlp"
	"github.com/stratametrics/strata/remotewrite"
)

// handleOTLP is the OTLP/HTTP metrics endpoint. The request is translated
// into a remote-write 2.0 request, which takes the remote-write path from
// there (writeParsed): the same validation, limits, hashing and quorum.
func (r *Router) handleOTLP(w http.ResponseWriter, req *http.Request) {
	counted := r.drain.enter()
	defer r.drain.leave(counted)
	start := time.Now()
	st := r.states.Get().(*writeState)
	st.compressed, st.raw = r.compressed.Get(), r.raw.Get()
	format, _ := otlp.ParseContentType(req.Header.Get("Content-Type"))
	tenant, out, answer := r.writeOTLP(req, st)
	out.status = answer.Status
	if answer.Status >= 500 {
		r.logger.Warn("OTLP write failed", "status", answer.Status, "err", answer.Message)
	} else if answer.Message != "" {
		r.logger.Debug("OTLP write refused in part or whole", "status", answer.Status, "rejected", answer.Rejected, "err", answer.Message)
	}
	answer.Write(w, format)
	now := time.Now()
	r.metrics.observe(tenant, out, now.Sub(start), now)
	r.compressed.Put(st.compressed)
	r.raw.Put(st.raw)
	st.compressed, st.raw = nil, nil
	r.states.Put(st)
}

func (r *Router) writeOTLP(hreq *http.Request, st *writeState) (string, outcome, otlp.Answer) {
	fail := func(tenant string, err error) (string, outcome, otlp.Answer) {
		return tenant, outcome{err: err}, otlp.ErrorAnswer(err)
	}
	format, err := otlp.CheckHeaders(hreq.Header)
	if err != nil {
		return fail("", err)
	}
	tenant, tl, seed, err := r.admit(hreq)
	if err != nil {
		return fail(tenant, err)
	}
	req, err := otlp.ReadRequest(hreq, format, st.compressed, st.raw, tl.MaxBodyBytes, tl.MaxDecodedBytes)
	if err != nil {
		return fail(tenant, err)
	}
	// The compressed body is read: its buffer takes the translation, which
	// becomes the request's raw body, and its snappy encoding the
	// compressed one, which the router forwards as is to an endpoint that
	// owns every series.
	tr, err := r.otlp.Translate(hreq.Context(), req.Metrics(), tl.OTLPSettings(), st.compressed)
	if err != nil {
		return fail(tenant, err)
	}
	st.raw, st.compressed = st.compressed, st.raw
	remotewrite.EncodeSnappy(st.compressed, st.raw.B)
	if err := st.req.Parse(remotewrite.V2, st.raw.B); err != nil {
		return fail(tenant, err)
	}
	out := r.writeParsed(hreq, st, tenant, tl, seed, remotewrite.V2)
	// Points relabeling dropped were accepted: not rejected to the sender.
	return tenant, out, tr.Answer(tr.Samples, out.written.Samples+out.written.Histograms+out.relabelHeld.Samples+out.relabelHeld.Histograms+out.haHeld.Samples+out.haHeld.Histograms, out.err)
}
