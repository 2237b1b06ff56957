// Package backoff says how long to wait before the next try after
// failures in a row: exponential from an initial wait, capped, with
// jitter. It is Strata's one backoff, so that every retry loop grows and
// spreads its waits the same way.
//
// The one thing to know: the jitter is applied after the cap, so a wait
// may exceed the cap by up to 10%. A caller that must not wait past a
// bound (a deadline) clamps the result itself.
package backoff

import (
	"math"
	"math/rand/v2"
	"time"
)

// Exponential is the wait before the next try after attempt failures in a
// row: initial after the first, doubling with each further one up to
// limit, then spread uniformly over ±10%, so that many clients failing at
// once (every tenant's shipper when the bucket goes away) come back
// spread out rather than in step. A limit below initial is taken as
// initial. attempt <= 0 (nothing failed yet) and initial <= 0 wait 0. It
// never overflows, whatever attempt and limit are.
func Exponential(initial, limit time.Duration, attempt int) time.Duration {
	if attempt <= 0 || initial <= 0 {
		return 0
	}
	limit = max(limit, initial)
	d := limit
	// initial << (attempt-1) unless that passes the limit; checked by
	// shifting the limit down, which cannot overflow.
	if shift := attempt - 1; shift < 63 && initial <= limit>>shift {
		d = initial << shift
	}
	return jitter(d)
}

// jitter spreads d uniformly over [d - d/10, d + d/10], saturating at the
// longest duration.
func jitter(d time.Duration) time.Duration {
	spread := d / 10
	low := d - spread
	j := rand.N(2*spread + 1)
	if low > math.MaxInt64-j {
		return math.MaxInt64
	}
	return low + j
}
