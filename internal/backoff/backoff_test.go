package backoff

import (
	"math"
	"testing"
	"time"
)

// within tells whether d is the wait w with its ±10% jitter.
func within(d, w time.Duration) bool { return d >= w-w/10 && d <= w+w/10 }

func TestExponential(t *testing.T) {
	for _, tc := range []struct {
		name           string
		initial, limit time.Duration
		attempt        int
		want           time.Duration // before jitter
	}{
		{"no failure yet", time.Second, time.Minute, 0, 0},
		{"negative attempt", time.Second, time.Minute, -3, 0},
		{"no initial wait", 0, time.Minute, 5, 0},
		{"first failure", time.Second, time.Minute, 1, time.Second},
		{"second failure doubles", time.Second, time.Minute, 2, 2 * time.Second},
		{"fifth failure", time.Second, time.Minute, 5, 16 * time.Second},
		{"just below the limit", time.Second, time.Minute, 6, 32 * time.Second},
		{"capped", time.Second, time.Minute, 7, time.Minute},
		{"limit below initial", time.Minute, time.Second, 3, time.Minute},
		{"attempt 63", time.Nanosecond, time.Hour, 63, time.Hour},
		{"attempt 64", time.Nanosecond, time.Hour, 64, time.Hour},
		{"attempt 1000", time.Second, 5 * time.Minute, 1000, 5 * time.Minute},
		{"attempt MaxInt", time.Second, 5 * time.Minute, math.MaxInt, 5 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for range 100 {
				if d := Exponential(tc.initial, tc.limit, tc.attempt); !within(d, tc.want) {
					t.Fatalf("Exponential(%v, %v, %d) = %v, want %v ±10%%", tc.initial, tc.limit, tc.attempt, d, tc.want)
				}
			}
		})
	}
}

// TestExponentialGrowsToTheLimit: the wait before jitter doubles with each
// attempt until the limit and stays there, for every attempt up to a
// thousand, so no attempt count wraps around to a short (or negative)
// wait.
func TestExponentialGrowsToTheLimit(t *testing.T) {
	initial, limit := 100*time.Millisecond, 30*time.Second
	want := initial
	for attempt := 1; attempt <= 1000; attempt++ {
		if d := Exponential(initial, limit, attempt); !within(d, want) {
			t.Fatalf("attempt %d: %v, want %v ±10%%", attempt, d, want)
		}
		want = min(2*want, limit)
	}
}

// TestExponentialNoOverflow: the longest durations saturate instead of
// wrapping around.
func TestExponentialNoOverflow(t *testing.T) {
	for _, attempt := range []int{1, 2, 62, 63, 64, 1000} {
		for range 100 {
			d := Exponential(time.Hour, math.MaxInt64, attempt)
			if d < time.Hour-time.Hour/10 {
				t.Fatalf("attempt %d with no limit: %v, want at least the initial wait less 10%%", attempt, d)
			}
		}
		if d := Exponential(math.MaxInt64, math.MaxInt64, attempt); d < math.MaxInt64-math.MaxInt64/10 {
			t.Fatalf("attempt %d of the longest initial wait: %v", attempt, d)
		}
	}
}

// TestExponentialJitter: waits spread over the whole ±10% around the
// exponential value, not a fixed point or one side of it.
func TestExponentialJitter(t *testing.T) {
	const w = 10 * time.Second
	lo, hi := time.Duration(math.MaxInt64), time.Duration(0)
	for range 2000 {
		d := Exponential(w, time.Minute, 1)
		if !within(d, w) {
			t.Fatalf("%v outside %v ±10%%", d, w)
		}
		lo, hi = min(lo, d), max(hi, d)
	}
	// 2000 uniform draws leave a gap of a twentieth of the range at
	// either end with a probability of about e^-100.
	if lo > w-w/10+w/100 || hi < w+w/10-w/100 {
		t.Fatalf("waits spread over [%v, %v], want nearly all of [%v, %v]", lo, hi, w-w/10, w+w/10)
	}
}
