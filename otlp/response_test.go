package otlp

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/stratametrics/strata/internal/forwarding"
	"github.com/stratametrics/strata/writeerr"
)

func TestTranslationAnswer(t *testing.T) {
	refusedByWrite := forwarding.RejectionsError([]forwarding.Rejection{{Series: 0, Kind: forwarding.KindInvalid, Reason: "series {a=\"b\"} has no metric name"}},
		func(r forwarding.Rejection) string { return r.Reason })
	tooManyLabels := forwarding.RejectionsError([]forwarding.Rejection{{Series: 0, Kind: forwarding.KindLimit, Reason: "series has 200 labels, the limit is 128"}},
		func(r forwarding.Rejection) string { return r.Reason })
	for _, c := range []struct {
		name          string
		tr            Translation
		sent, written int
		err           error
		status        int
		rejected      int64
		says          string
	}{
		{name: "all written", tr: Translation{DataPoints: 5, Samples: 9}, sent: 9, written: 9, status: http.StatusOK},
		{
			name: "some refused by the translator", tr: Translation{DataPoints: 5, Refused: 2, Samples: 3, Refusals: `invalid temporality for metric "d"`},
			sent: 3, written: 3, status: http.StatusOK, rejected: 2, says: `"d"`,
		},
		{
			name: "some refused by the write", tr: Translation{DataPoints: 5, Samples: 5},
			sent: 5, written: 4, err: refusedByWrite, status: http.StatusOK, rejected: 1, says: "no metric name",
		},
		{
			// Refused samples of classic histograms outnumber points: the
			// count stops at the points sent.
			name: "more samples refused than points", tr: Translation{DataPoints: 3, Samples: 30},
			sent: 30, written: 2, err: refusedByWrite, status: http.StatusOK, rejected: 3, says: "no metric name",
		},
		{
			name: "both", tr: Translation{DataPoints: 5, Refused: 2, Samples: 3, Refusals: `metric "d"`},
			sent: 3, written: 2, err: refusedByWrite, status: http.StatusOK, rejected: 3, says: `"d"; invalid request: 1 series rejected`,
		},
		{
			name: "all refused by the translator", tr: Translation{DataPoints: 3, Refused: 3, Refusals: `metric "d"`},
			status: http.StatusBadRequest, says: `"d"`,
		},
		{
			name: "all refused by the translator but target_info", tr: Translation{DataPoints: 3, Refused: 3, Samples: 1, Refusals: `metric "d"`},
			sent: 1, written: 1, status: http.StatusBadRequest, says: `"d"`,
		},
		{
			name: "all refused by the write", tr: Translation{DataPoints: 2, Samples: 2},
			sent: 2, err: refusedByWrite, status: http.StatusBadRequest, says: "no metric name",
		},
		{
			name: "all over a limit", tr: Translation{DataPoints: 1, Samples: 1},
			sent: 1, err: tooManyLabels, status: http.StatusRequestEntityTooLarge, says: "the limit is 128",
		},
		{
			// A retry may store it all: the sender must retry, not drop
			// the refused part's neighbours.
			name: "unavailable", tr: Translation{DataPoints: 5, Refused: 1, Samples: 4},
			sent: 4, written: 2, err: fmt.Errorf("%w: no quorum", writeerr.ErrUnavailable), status: http.StatusServiceUnavailable, says: "no quorum",
		},
		{
			name: "rate limited", tr: Translation{DataPoints: 5, Samples: 5},
			sent: 5, err: fmt.Errorf("%w: over 10 samples/s", writeerr.ErrRateLimited), status: http.StatusTooManyRequests, says: "10 samples/s",
		},
		{name: "empty", status: http.StatusOK},
	} {
		a := c.tr.Answer(c.sent, c.written, c.err)
		if a.Status != c.status || a.Rejected != c.rejected || !strings.Contains(a.Message, c.says) {
			t.Errorf("%s: answer %+v, want status %d, %d rejected, a message saying %q", c.name, a, c.status, c.rejected, c.says)
		}
		if c.says == "" && a.Message != "" {
			t.Errorf("%s: message %q for a full success", c.name, a.Message)
		}
	}
}

func TestErrorAnswer(t *testing.T) {
	for _, c := range []struct {
		err    error
		status int
	}{
		{fmt.Errorf("%w: bad", writeerr.ErrInvalid), http.StatusBadRequest},
		{fmt.Errorf("%w: big", writeerr.ErrTooLarge), http.StatusRequestEntityTooLarge},
		{fmt.Errorf("%w: type", writeerr.ErrUnsupportedMedia), http.StatusUnsupportedMediaType},
		{fmt.Errorf("%w: later", writeerr.ErrUnavailable), http.StatusServiceUnavailable},
		{fmt.Errorf("%w: who", writeerr.ErrUnauthorized), http.StatusUnauthorized},
		// An error of no known kind: retryable, as OTLP exporters retry 503, not 500.
		{errors.New("something else"), http.StatusServiceUnavailable},
	} {
		if a := ErrorAnswer(c.err); a.Status != c.status || a.Message != c.err.Error() {
			t.Errorf("ErrorAnswer(%v) = %+v, want %d with the error's message", c.err, a, c.status)
		}
	}
}

func written(t *testing.T, a Answer, f Format) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	a.Write(w, f)
	if w.Code != a.Status {
		t.Fatalf("status %d, want %d", w.Code, a.Status)
	}
	if ct := w.Header().Get("Content-Type"); ct != f.ContentType() {
		t.Fatalf("Content-Type %q, want %q: the answer is in the request's format", ct, f.ContentType())
	}
	if cl := w.Header().Get("Content-Length"); cl != strconv.Itoa(w.Body.Len()) {
		t.Fatalf("Content-Length %q for a body of %d bytes", cl, w.Body.Len())
	}
	return w
}

// TestAnswerWriteSuccess: a 200 is an ExportMetricsServiceResponse, with a
// partial success only when something was refused.
func TestAnswerWriteSuccess(t *testing.T) {
	for _, f := range []Format{Protobuf, JSON} {
		for _, a := range []Answer{
			{Status: http.StatusOK},
			{Status: http.StatusOK, Rejected: 3, Message: `invalid temporality for metric "d"`},
		} {
			w := written(t, a, f)
			resp := pmetricotlp.NewExportResponse()
			var err error
			if f == JSON {
				err = resp.UnmarshalJSON(w.Body.Bytes())
			} else {
				err = resp.UnmarshalProto(w.Body.Bytes())
			}
			if err != nil {
				t.Fatalf("%s: the answer %q is not an ExportMetricsServiceResponse: %v", f.name(), w.Body.Bytes(), err)
			}
			if ps := resp.PartialSuccess(); ps.RejectedDataPoints() != a.Rejected || ps.ErrorMessage() != a.Message {
				t.Errorf("%s: partial success %d %q, want %d %q", f.name(), ps.RejectedDataPoints(), ps.ErrorMessage(), a.Rejected, a.Message)
			}
			if w.Header().Get("Retry-After") != "" {
				t.Errorf("%s: Retry-After on a success", f.name())
			}
		}
	}
}

// TestAnswerWriteError: an error is a google.rpc.Status with the gRPC code
// of the status; those the exporters retry carry Retry-After.
func TestAnswerWriteError(t *testing.T) {
	for _, f := range []Format{Protobuf, JSON} {
		for _, c := range []struct {
			status     int
			code       codes.Code
			retryAfter bool
		}{
			{http.StatusBadRequest, codes.InvalidArgument, false},
			{http.StatusRequestEntityTooLarge, codes.ResourceExhausted, false},
			{http.StatusUnsupportedMediaType, codes.InvalidArgument, false},
			{http.StatusUnauthorized, codes.Unauthenticated, false},
			{http.StatusForbidden, codes.PermissionDenied, false},
			{http.StatusTooManyRequests, codes.ResourceExhausted, true},
			{http.StatusServiceUnavailable, codes.Unavailable, true},
			{http.StatusInternalServerError, codes.Internal, false},
		} {
			a := Answer{Status: c.status, Message: "what was wrong"}
			w := written(t, a, f)
			var st status.Status
			var err error
			if f == JSON {
				err = protojson.Unmarshal(w.Body.Bytes(), &st)
			} else {
				err = proto.Unmarshal(w.Body.Bytes(), &st)
			}
			if err != nil {
				t.Fatalf("%s %d: the answer %q is not a google.rpc.Status: %v", f.name(), c.status, w.Body.Bytes(), err)
			}
			if codes.Code(st.Code) != c.code || st.Message != a.Message {
				t.Errorf("%s %d: status %v %q, want %v %q", f.name(), c.status, codes.Code(st.Code), st.Message, c.code, a.Message)
			}
			if got := w.Header().Get("Retry-After") != ""; got != c.retryAfter {
				t.Errorf("%s %d: Retry-After %q, want it: %v", f.name(), c.status, w.Header().Get("Retry-After"), c.retryAfter)
			}
		}
	}
}

// TestAnswerWriteInvalidUTF8: messages quote what was sent, which need
// not be UTF-8 (a protobuf body sent as JSON); the answer must still be
// a Status the sender can read, which protobuf strings must be UTF-8 for.
func TestAnswerWriteInvalidUTF8(t *testing.T) {
	_, parseErr := Unmarshal(JSON, exportBody(t, oneGauge(), Protobuf))
	if parseErr == nil {
		t.Fatal("a protobuf body parsed as JSON")
	}
	for _, f := range []Format{Protobuf, JSON} {
		for _, a := range []Answer{ErrorAnswer(parseErr), {Status: http.StatusOK, Rejected: 1, Message: "metric \xff\xfe"}} {
			w := written(t, a, f)
			var msg string
			var err error
			if a.Status == http.StatusOK {
				resp := pmetricotlp.NewExportResponse()
				if f == JSON {
					err = resp.UnmarshalJSON(w.Body.Bytes())
				} else {
					err = resp.UnmarshalProto(w.Body.Bytes())
				}
				msg = resp.PartialSuccess().ErrorMessage()
			} else {
				var st status.Status
				if f == JSON {
					err = protojson.Unmarshal(w.Body.Bytes(), &st)
				} else {
					err = proto.Unmarshal(w.Body.Bytes(), &st)
				}
				msg = st.Message
			}
			if err != nil || msg != strings.ToValidUTF8(a.Message, "\uFFFD") {
				t.Errorf("%s %d: answer %q (%v), want the message %q", f.name(), a.Status, w.Body.Bytes(), err, a.Message)
			}
		}
	}
}
