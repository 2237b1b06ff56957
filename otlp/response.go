package otlp

import (
	"net/http"
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/stratametrics/strata/writeerr"
)

// Answer is what a receiver tells an OTLP sender.
type Answer struct {
	// Status is the HTTP status: 200, or the error's.
	Status int
	// Rejected is the data points refused in a 200 answer (partial
	// success); Message says why.
	Rejected int64
	Message  string
}

// Write writes a to w in format f: a 200 carries an
// ExportMetricsServiceResponse (with partial_success when something was
// refused), an error a google.rpc.Status, as the OTLP/HTTP specification
// asks. 429 and 503 carry Retry-After: the OpenTelemetry exporters retry
// those (and 502, 504) and drop the data on any other error.
func (a Answer) Write(w http.ResponseWriter, f Format) {
	var body []byte
	// Messages may quote what was sent; protobuf strings must be UTF-8,
	// and neither encoding writes a message that is not.
	a.Message = strings.ToValidUTF8(a.Message, "\uFFFD")
	if a.Status == http.StatusOK {
		resp := pmetricotlp.NewExportResponse()
		if a.Rejected > 0 || a.Message != "" {
			resp.PartialSuccess().SetRejectedDataPoints(a.Rejected)
			resp.PartialSuccess().SetErrorMessage(a.Message)
		}
		if f == JSON {
			body, _ = resp.MarshalJSON()
		} else {
			body, _ = resp.MarshalProto()
		}
	} else {
		st := &status.Status{Code: int32(grpcCode(a.Status)), Message: a.Message}
		if f == JSON {
			body, _ = protojson.Marshal(st)
		} else {
			body, _ = proto.Marshal(st)
		}
		if a.Status == http.StatusServiceUnavailable || a.Status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
	}
	w.Header().Set("Content-Type", f.ContentType())
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(a.Status)
	_, _ = w.Write(body)
}

// ErrorAnswer is the answer to a request that failed as a whole.
func ErrorAnswer(err error) Answer {
	st := writeerr.HTTPStatus(err)
	if st < 400 || st == http.StatusInternalServerError {
		// An error of no known kind is ours, and may pass: OTLP exporters
		// drop data on 500 (remote-write senders retry it), so it is 503.
		st = http.StatusServiceUnavailable
	}
	return Answer{Status: st, Message: err.Error()}
}

// grpcCode is the gRPC code of an HTTP status, as OTLP/gRPC would answer.
func grpcCode(s int) codes.Code {
	switch s {
	case http.StatusBadRequest:
		return codes.InvalidArgument
	case http.StatusUnauthorized:
		return codes.Unauthenticated
	case http.StatusForbidden:
		return codes.PermissionDenied
	case http.StatusRequestEntityTooLarge:
		return codes.ResourceExhausted
	case http.StatusUnsupportedMediaType:
		return codes.InvalidArgument
	case http.StatusTooManyRequests:
		return codes.ResourceExhausted
	case http.StatusServiceUnavailable:
		return codes.Unavailable
	}
	return codes.Internal
}

// Answer combines a translation with the write of its series: sent is the
// samples and histogram samples of the translated request, written those
// stored, err the write's error. A write that failed in a way a retry may
// mend is answered with its error; refused data is reported as a partial
// success while something was stored, and as the error when nothing was.
// Rejected counts refused points by samples of the translated series (a
// classic histogram's point is several), at most the request's points.
func (tr Translation) Answer(sent, written int, err error) Answer {
	status := writeerr.HTTPStatus(err)
	if err != nil && !writeerr.RefusesData(status) {
		return ErrorAnswer(err)
	}
	rejected := tr.Refused
	msg := tr.Refusals
	if err != nil {
		rejected += max(sent-written, 0)
		msg = joinMessages(msg, err.Error())
	}
	rejected = min(rejected, tr.DataPoints)
	// Every point refused is a failure even when target_info, which the
	// translator makes of the resource, was written.
	if rejected > 0 && rejected >= tr.DataPoints && (written == 0 || tr.Refused >= tr.DataPoints) {
		if err == nil {
			status = http.StatusBadRequest
		}
		return Answer{Status: status, Message: msg}
	}
	return Answer{Status: http.StatusOK, Rejected: int64(rejected), Message: msg}
}

func joinMessages(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}
