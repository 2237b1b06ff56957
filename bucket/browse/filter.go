// Which blocks a listing shows, and the time syntax of --from and --until.

package browse

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Filter selects blocks. The zero Filter selects every block.
type Filter struct {
	// Tenant, when not empty, keeps only blocks of this tenant.
	Tenant string
	// Replica, when not empty, keeps only blocks of this replica.
	Replica string
	// From and Until, when not zero, keep blocks with data in
	// [From, Until]: a block overlapping the range at all is kept.
	From, Until time.Time
}

// Match reports whether the filter keeps bl.
func (f Filter) Match(bl Block) bool {
	if f.Tenant != "" && bl.Tenant != f.Tenant {
		return false
	}
	if f.Replica != "" && bl.Replica != f.Replica {
		return false
	}
	// TSDB's MaxTime is exclusive: a block ending at From has no sample
	// at From.
	if !f.From.IsZero() && bl.Meta.MaxTime <= f.From.UnixMilli() {
		return false
	}
	if !f.Until.IsZero() && bl.Meta.MinTime > f.Until.UnixMilli() {
		return false
	}
	return true
}

// Validate rejects a range that ends before it starts.
func (f Filter) Validate() error {
	if !f.From.IsZero() && !f.Until.IsZero() && f.Until.Before(f.From) {
		return fmt.Errorf("until (%s) is before from (%s)", f.Until.Format(time.RFC3339), f.From.Format(time.RFC3339))
	}
	return nil
}

// ParseTime reads a point in time as --from and --until take it:
//
//   - RFC 3339, with or without fractional seconds: 2025-03-01T12:00:00Z
//   - a UTC date, or date and minutes: 2025-03-01, 2025-03-01T12:00
//   - relative to now: -2h, -90m, -7d, -2w (d and w are 24h and 7d), +1h
//   - now
//
// The empty string is the zero time (no bound).
func ParseTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return time.Time{}, nil
	case s == "now":
		return now, nil
	case s[0] == '-' || s[0] == '+':
		d, err := parseDuration(s[1:])
		if err != nil {
			return time.Time{}, fmt.Errorf("time %q: %w", s, err)
		}
		if s[0] == '-' {
			d = -d
		}
		return now.Add(d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("time %q: want RFC 3339 (2025-03-01T12:00:00Z), a date (2025-03-01), a time relative to now (-2h, -7d) or now", s)
}

// parseDuration is time.ParseDuration plus whole days (d) and weeks (w),
// which time ranges of blocks are mostly written in.
func parseDuration(s string) (time.Duration, error) {
	for _, u := range []struct {
		suffix string
		unit   time.Duration
	}{{"d", 24 * time.Hour}, {"w", 7 * 24 * time.Hour}} {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseUint(n, 10, 32)
			if err != nil {
				return 0, fmt.Errorf("want a whole number of %s", u.suffix)
			}
			return time.Duration(v) * u.unit, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	if d < 0 {
		return 0, fmt.Errorf("negative duration after the sign")
	}
	return d, nil
}

// FormatDuration writes a block range short: 2h, 1h30m, 59m59.999s.
func FormatDuration(d time.Duration) string {
	s := d.String()
	// time.Duration spells 2h as "2h0m0s"; drop the zero tails.
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
