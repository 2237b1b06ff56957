// Package writeerr holds the kinds of failure a write can end in and the
// one table that turns them into HTTP statuses, for remote-write and OTLP
// senders and for the router reading block builders' answers. It imports
// nothing of the module, so that any package can say what went wrong
// without depending on the wire format or the write path.
//
// The one thing to know before changing it: senders drop data answered
// with a 4xx (but 429) and retry what is answered with a 5xx, so the kind an
// error wraps decides whether its data is retried or lost. Wrap a kind
// (fmt.Errorf("...: %w", ErrInvalid)) and let HTTPStatus pick the status;
// nothing else picks one.
package writeerr

import (
	"errors"
	"net/http"
)

// The kinds of failure a client can be told about.
var (
	// ErrInvalid: the request or a series in it can never be written.
	ErrInvalid = errors.New("invalid request")
	// ErrConflict: samples clash with what is stored (out of order,
	// duplicate timestamp with another value, out of bounds). Its status
	// is 400, as invalid data's; the kind stays apart for the router's
	// quorum and for messages.
	ErrConflict = errors.New("conflict with stored samples")
	// ErrTooLarge: a size limit was exceeded.
	ErrTooLarge = errors.New("limit exceeded")
	// ErrUnsupportedMedia: content type or encoding not supported.
	ErrUnsupportedMedia = errors.New("unsupported media type")
	// ErrRateLimited: the tenant sends faster than allowed.
	ErrRateLimited = errors.New("rate limited")
	// ErrUnavailable: the write could not be done now but may succeed on
	// retry (no quorum, shutting down, disk full, not ready).
	ErrUnavailable = errors.New("unavailable")
	// ErrUnauthorized: no valid credentials.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrForbidden: credentials that do not allow this (e.g. this tenant).
	ErrForbidden = errors.New("forbidden")
)

// HTTPStatus maps an error to the status remote-write senders act on
// correctly. Errors of unknown kind are internal and retryable.
func HTTPStatus(err error) int {
	switch {
	case err == nil:
		return http.StatusNoContent
	case errors.Is(err, ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, ErrConflict):
		// Prometheus' receiver and both remote-write specifications answer
		// 400 for samples the TSDB refuses (Thanos Receive answers 409).
		return http.StatusBadRequest
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrUnsupportedMedia):
		return http.StatusUnsupportedMediaType
	case errors.Is(err, ErrRateLimited):
		return http.StatusTooManyRequests
	case errors.Is(err, ErrUnavailable):
		return http.StatusServiceUnavailable
	case errors.Is(err, ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden
	default:
		return http.StatusInternalServerError
	}
}

// Retryable tells whether a sender would retry a request answered with
// status: 429 and every 5xx.
func Retryable(status int) bool {
	return status == http.StatusTooManyRequests || status >= 500
}

// RefusesData tells whether a receiver's status refuses the data itself
// (400 invalid or conflict, 413 too large; 409 from block builders of
// releases that answered conflicts so), which no retry changes. Any
// other failure between two Strata components (401 or 403 from a
// misconfigured token or certificate, 404, 415, 429, 5xx) is a fault of
// the path, not of the data: the router must not turn it into a 4xx that
// makes the sender drop the data.
func RefusesData(status int) bool {
	return status == http.StatusBadRequest || status == http.StatusConflict || status == http.StatusRequestEntityTooLarge
}
