package blockbuilder

import (
	"net/http"
	"time"

	"github.com/stratametrics/strata/internal/forwarding"
	"github.com/stratametrics/strata/otlp"
)

// handleOTLP takes OTLP/HTTP metrics straight from a sender, translated
// into a batch of series that takes the remote-write path from there
// (appendParsed): the same validation, limits and appending.
func (b *BlockBuilder) handleOTLP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	format, _ := otlp.ParseContentType(r.Header.Get("Content-Type"))
	tenant, res, answer := b.serveOTLP(r)
	if answer.Status >= 500 {
		b.logger.Warn("OTLP write failed", "status", answer.Status, "err", answer.Message)
	}
	answer.Write(w, format)
	if !b.isOpen(tenant) {
		tenant = ""
	}
	b.metrics.observe(tenant, answer.Status, res, time.Since(start))
}

func (b *BlockBuilder) serveOTLP(r *http.Request) (string, appendResult, otlp.Answer) {
	fail := func(tenant string, err error) (string, appendResult, otlp.Answer) {
		return tenant, appendResult{}, otlp.ErrorAnswer(err)
	}
	if !b.Ready() {
		return fail("", errNotReady)
	}
	format, err := otlp.CheckHeaders(r.Header)
	if err != nil {
		return fail("", err)
	}
	// OTLP comes from senders only: the router forwards remote-write.
	tenant, err := b.admitWrite(r, false)
	if err != nil {
		return fail("", err)
	}
	set := b.limits.Set()
	tl := set.For(tenant)
	compressed, raw := b.compressed.Get(), b.raw.Get()
	defer b.compressed.Put(compressed)
	defer b.raw.Put(raw)
	req, err := otlp.ReadRequest(r, format, compressed, raw, tl.MaxBodyBytes, tl.MaxDecodedBytes)
	if err != nil {
		return fail(tenant, err)
	}
	st := b.states.Get().(*appendState)
	defer b.putState(st)
	st.batch = &st.translated
	tr, err := b.otlp.TranslateBatch(r.Context(), req.Metrics(), tl.OTLPSettings(), st.batch)
	if err != nil {
		return fail(tenant, err)
	}
	res, err := b.appendParsed(r, tenant, set, st)
	if err == nil {
		err = forwarding.RejectionsError(res.rejected, func(r forwarding.Rejection) string { return r.Reason })
	}
	return tenant, res, tr.Answer(tr.Samples, res.written.Samples+res.written.Histograms, err)
}
