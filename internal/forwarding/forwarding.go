// Package forwarding holds the private contract between the router and
// the block builders: the X-Strata-* headers that mark a forwarded write
// and name its tenant, the written counts in the remote-write 2.0 headers,
// and the JSON answer (rejected series and their kinds, exemplars
// dropped) from which the router applies its quorum rule series by series.
//
// The one thing to know before changing it: router and block builders of
// two releases talk to each other during a rolling update, so the headers
// and the JSON must stay readable both ways: add fields, never rename or
// drop them, and keep the kinds' words.
package forwarding

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/stratametrics/strata/remotewrite"
	"github.com/stratametrics/strata/writeerr"
)

// HeaderForwarded marks a request the router forwards to a block builder;
// the block builder then answers with a WriteResponse in JSON, when it has
// anything to say beyond its written headers, so that the router can apply
// the quorum rule and count what was stored series by series.
const HeaderForwarded = "X-Strata-Forwarded"

// HeaderForwardedTenant names the tenant of a forwarded write. The router
// has resolved the tenant already (from its own tenant header, or its
// default tenant); a block builder configured with another header name or
// default would otherwise file the write under the wrong tenant.
const HeaderForwardedTenant = "X-Strata-Tenant"

// Rejection kinds, in the order of precedence for the answer's status.
const (
	KindInvalid  = "invalid"
	KindLimit    = "limit"
	KindConflict = "conflict"
)

// Rejection says why one series (its index in the request) was not, or
// not wholly, written. Samples, Histograms and Exemplars count what of the
// series was not stored.
type Rejection struct {
	Series     int    `json:"series"`
	Kind       string `json:"kind"`
	Reason     string `json:"reason"`
	Samples    int    `json:"samples,omitempty"`
	Histograms int    `json:"histograms,omitempty"`
	Exemplars  int    `json:"exemplars,omitempty"`
}

// ExemplarDrop counts the exemplars of a written series (its index in the
// request) that were not stored. Exemplars are advisory: refusing them
// does not fail the write, but the exemplars written header must not count
// them.
type ExemplarDrop struct {
	Series    int `json:"series"`
	Exemplars int `json:"exemplars"`
}

// KindOf classifies a per-series error by its kind, not its status:
// conflicts are answered 400 like invalid data.
func KindOf(err error) string {
	switch {
	case errors.Is(err, writeerr.ErrConflict):
		return KindConflict
	case errors.Is(err, writeerr.ErrTooLarge):
		return KindLimit
	default:
		return KindInvalid
	}
}

// KindOfStatus classifies a non-retryable 4xx answer that came without a
// list of rejections. 409 is a conflict from a block builder of a release
// that answered conflicts so, during a rolling update.
func KindOfStatus(status int) string {
	switch status {
	case http.StatusConflict:
		return KindConflict
	case http.StatusRequestEntityTooLarge:
		return KindLimit
	default:
		return KindInvalid
	}
}

// Written counts what a write stored.
type Written struct {
	Samples    int `json:"samples"`
	Histograms int `json:"histograms"`
	Exemplars  int `json:"exemplars"`
}

// Add adds o to w.
func (w *Written) Add(o Written) {
	w.Samples += o.Samples
	w.Histograms += o.Histograms
	w.Exemplars += o.Exemplars
}

// SetHeaders sets the X-Prometheus-Remote-Write-*-Written headers on the
// answer to a request of version v: they belong to 2.0, whose receivers
// must send them, success or not, once the content was negotiated; 1.0
// answers carry none, as Prometheus' receiver sends none (and conformance
// tests check it). Block builders also send them to the router, whatever
// the version.
func (w Written) SetHeaders(v remotewrite.Version, h http.Header) {
	if v != remotewrite.V2 {
		return
	}
	w.setHeaders(h)
}

func (w Written) setHeaders(h http.Header) {
	h.Set(remotewrite.HeaderSamplesWritten, strconv.Itoa(w.Samples))
	h.Set(remotewrite.HeaderHistogramsWritten, strconv.Itoa(w.Histograms))
	h.Set(remotewrite.HeaderExemplarsWritten, strconv.Itoa(w.Exemplars))
}

// SetForwardedHeaders sets the written headers on a block builder's answer
// to the router, whatever the version.
func (w Written) SetForwardedHeaders(h http.Header) { w.setHeaders(h) }

// WrittenFromHeaders reads the headers SetHeaders sets.
func WrittenFromHeaders(h http.Header) Written {
	n := func(k string) int { v, _ := strconv.Atoi(h.Get(k)); return v }
	return Written{Samples: n(remotewrite.HeaderSamplesWritten), Histograms: n(remotewrite.HeaderHistogramsWritten), Exemplars: n(remotewrite.HeaderExemplarsWritten)}
}

// WriteResponse is the JSON a block builder answers a forwarded request
// with when something was rejected, or (with 200) when a written series
// lost exemplars. A write that stored everything is a 204 without a body.
type WriteResponse struct {
	Error    string      `json:"error,omitempty"`
	Written  Written     `json:"written"`
	Rejected []Rejection `json:"rejected,omitempty"`
	// DroppedExemplars lists the series written without some of their
	// exemplars; series in Rejected count theirs in Rejection.Exemplars.
	DroppedExemplars []ExemplarDrop `json:"dropped_exemplars,omitempty"`
}

// RejectionsError turns rejections into the error a sender is answered
// with: the most severe kind decides the status (invalid before limit
// before conflict), the message lists the first few problems and counts
// the rest.
func RejectionsError(rs []Rejection, describe func(Rejection) string) error {
	if len(rs) == 0 {
		return nil
	}
	counts := map[string]int{}
	for _, r := range rs {
		counts[r.Kind]++
	}
	kind := KindConflict
	switch {
	case counts[KindInvalid] > 0:
		kind = KindInvalid
	case counts[KindLimit] > 0:
		kind = KindLimit
	}
	sentinel := map[string]error{KindInvalid: writeerr.ErrInvalid, KindLimit: writeerr.ErrTooLarge, KindConflict: writeerr.ErrConflict}[kind]
	var b strings.Builder
	fmt.Fprintf(&b, "%d series rejected", len(rs))
	for _, k := range []string{KindInvalid, KindLimit, KindConflict} {
		if counts[k] > 0 {
			fmt.Fprintf(&b, ", %d %s", counts[k], k)
		}
	}
	b.WriteString(":")
	const shown = 5
	for i, r := range rs {
		if i == shown {
			fmt.Fprintf(&b, "\n  ... and %d more", len(rs)-shown)
			break
		}
		b.WriteString("\n  ")
		b.WriteString(describe(r))
	}
	return fmt.Errorf("%w: %s", sentinel, b.String())
}
