// The index page: tenants, and a timeline of blocks per tenant and
// replica drawn as inline SVG.

package web

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/stratametrics/strata/bucket/browse"
)

// Timeline geometry, in SVG user units (the SVG scales to the page).
const (
	svgWidth   = 1000.0
	svgGutter  = 170.0 // replica names
	svgRight   = 10.0
	svgRowH    = 26.0
	svgBarH    = 18.0
	svgAxisH   = 22.0
	plotWidth  = svgWidth - svgGutter - svgRight
	maxBars    = 5000 // over all tenants; the most recent win
	maxRowsTbl = 200  // block table rows per tenant
)

type indexPage struct {
	page
	Q           query
	RefreshedAt string
	Every       string
	Err         string
	AllTenants  []string
	Tenants     []tenantView
	Problems    []browse.Problem
	Blocks      int
	Partial     int
	WindowFrom  string
	WindowUntil string
	Truncated   int // bars left out for maxBars
	RefreshLink string
	APILink     string
}

type tenantView struct {
	TenantSummary
	Display  string
	Anchor   string
	Rows     []replicaRow
	Height   float64
	Ticks    []tick
	AxisY    float64
	Table    []tableRow
	Hidden   int
	JSONLink string
}

type replicaRow struct {
	Name   string
	Y      float64 // top of the row
	H      float64
	TextY  float64
	Bars   []bar
	blocks []*block
}

type bar struct {
	ULID    string
	X, W    float64
	Y       float64
	Title   string
	Level   int
	Overlap bool
}

type tick struct {
	X     float64
	Label string
}

type tableRow struct {
	browse.Row
	Other string
}

func (u *UI) serveIndex(w http.ResponseWriter, r *http.Request) {
	q, err := u.parseQuery(r)
	if err != nil {
		u.renderError(w, statusOf(err), err)
		return
	}
	s := u.snapshotFor(r)
	p := indexPage{page: u.page("Bucket"), Q: q, Every: browse.FormatDuration(u.opts.Refresh)}
	if s.err != nil {
		p.Err = s.err.Error()
	}
	if !s.at.IsZero() {
		p.RefreshedAt = s.at.UTC().Format("2006-01-02 15:04:05 UTC")
	}
	p.Problems, p.Partial = s.problems, len(s.partial)
	seen := map[string]bool{}
	for _, b := range s.blocks {
		if !seen[b.tenant] {
			seen[b.tenant] = true
			p.AllTenants = append(p.AllTenants, b.tenant)
		}
	}
	slices.Sort(p.AllTenants)

	// The window: the filter's bounds, else the extent of the blocks.
	var sel []*block
	lo, hi := int64(0), int64(0)
	for _, b := range s.blocks {
		if !q.match(b) {
			continue
		}
		if len(sel) == 0 || b.minTime < lo {
			lo = b.minTime
		}
		if len(sel) == 0 || b.maxTime > hi {
			hi = b.maxTime
		}
		sel = append(sel, b)
	}
	p.Blocks = len(sel)
	if !q.filter.From.IsZero() {
		lo = q.filter.From.UnixMilli()
	}
	if !q.filter.Until.IsZero() {
		hi = q.filter.Until.UnixMilli()
	}
	if hi <= lo {
		hi = lo + time.Hour.Milliseconds()
	}
	p.WindowFrom, p.WindowUntil = browse.FormatTime(lo), browse.FormatTime(hi)
	// Bars: the most recent maxBars (blocks are in ULID, that is upload,
	// order).
	drawFrom := 0
	if len(sel) > maxBars {
		drawFrom = len(sel) - maxBars
		p.Truncated = drawFrom
	}
	x := func(ms int64) float64 {
		return svgGutter + plotWidth*float64(ms-lo)/float64(hi-lo)
	}
	ticks := makeTicks(lo, hi, x)

	for _, t := range tenants(s, q) {
		tv := tenantView{TenantSummary: t, Display: orNone(t.Tenant), Anchor: "tenant-" + anchor(t.Tenant), Ticks: ticks}
		tv.JSONLink = u.link("/api/blocks", url.Values{"tenant": {t.Tenant}, "from": {q.From}, "until": {q.Until}})
		for _, rs := range t.Replicas {
			tv.Rows = append(tv.Rows, replicaRow{Name: orNone(rs.Replica)})
		}
		tv.AxisY = svgAxisH - 8
		p.Tenants = append(p.Tenants, tv)
	}
	views := map[string]*tenantView{}
	rows := map[[2]string]*replicaRow{}
	for i := range p.Tenants {
		tv := &p.Tenants[i]
		views[tv.Tenant] = tv
		for j := range tv.Rows {
			rows[[2]string{tv.Tenant, tv.Replicas[j].Replica}] = &tv.Rows[j]
		}
	}
	for _, b := range sel[drawFrom:] {
		rr := rows[[2]string{b.tenant, b.replica}]
		rr.blocks = append(rr.blocks, b)
	}
	for i := range p.Tenants {
		tv := &p.Tenants[i]
		y := svgAxisH
		for j := range tv.Rows {
			layoutRow(&tv.Rows[j], y, x)
			y += tv.Rows[j].H
		}
		tv.Height = y + 4
	}
	// Tables: the most recent blocks of each tenant first.
	for i := len(sel) - 1; i >= 0; i-- {
		b := sel[i]
		tv := views[b.tenant]
		if len(tv.Table) >= maxRowsTbl {
			tv.Hidden++
			continue
		}
		tv.Table = append(tv.Table, tableRow{Row: b.row(), Other: b.other})
	}
	rq := r.URL.Query()
	rq.Set("refresh", "1")
	p.RefreshLink = u.link("/", rq)
	p.APILink = u.link("/api/blocks", url.Values{"tenant": {q.Tenant}, "from": {q.From}, "until": {q.Until}})
	u.render(w, http.StatusOK, "index.html", p)
}

// layoutRow places a replica's bars from y down. Blocks that overlap in
// time go to lanes of their own (first lane free at their start), so an
// overlap shows as a second line of bars instead of hiding a block.
func layoutRow(rr *replicaRow, y float64, x func(int64) float64) {
	var laneEnds []int64
	var laneOf []int
	order := make([]int, len(rr.blocks))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return cmpInt64(rr.blocks[a].minTime, rr.blocks[b].minTime)
	})
	laneOf = make([]int, len(rr.blocks))
	for _, i := range order {
		b := rr.blocks[i]
		lane := slices.IndexFunc(laneEnds, func(end int64) bool { return end <= b.minTime })
		if lane < 0 {
			lane = len(laneEnds)
			laneEnds = append(laneEnds, 0)
		}
		laneEnds[lane] = b.maxTime
		laneOf[i] = lane
	}
	lanes := max(len(laneEnds), 1)
	rr.Y, rr.H = y, float64(lanes)*svgRowH
	rr.TextY = y + svgRowH/2 + 4
	for i, b := range rr.blocks {
		x0, x1 := max(x(b.minTime), svgGutter), min(x(b.maxTime), svgWidth-svgRight)
		rr.Bars = append(rr.Bars, bar{
			ULID: b.id.String(), X: x0, W: max(x1-x0, 1.5), Level: min(b.level, 4), Overlap: len(laneEnds) > 1,
			Y: y + float64(laneOf[i])*svgRowH + (svgRowH-svgBarH)/2,
			Title: fmt.Sprintf("%s\n%s to %s (%s)\n%d series, %d samples, level %d", b.id,
				time.UnixMilli(b.minTime).UTC().Format("2006-01-02 15:04:05"), time.UnixMilli(b.maxTime).UTC().Format("2006-01-02 15:04:05 UTC"),
				browse.FormatDuration(time.Duration(b.maxTime-b.minTime)*time.Millisecond), b.series, b.samples, b.level),
		})
	}
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// makeTicks picks a round step giving at most 8 ticks over [lo, hi).
func makeTicks(lo, hi int64, x func(int64) float64) []tick {
	steps := []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour,
		6 * time.Hour, 12 * time.Hour, 24 * time.Hour, 2 * 24 * time.Hour, 7 * 24 * time.Hour, 30 * 24 * time.Hour, 365 * 24 * time.Hour}
	step := steps[len(steps)-1].Milliseconds()
	for _, s := range steps {
		if (hi-lo)/s.Milliseconds() <= 8 {
			step = s.Milliseconds()
			break
		}
	}
	layout := "01-02 15:04"
	if step >= (24 * time.Hour).Milliseconds() {
		layout = "2006-01-02"
	}
	var out []tick
	for t := (lo/step + 1) * step; t < hi; t += step {
		out = append(out, tick{X: x(t), Label: time.UnixMilli(t).UTC().Format(layout)})
	}
	return out
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// anchor makes an HTML id from a tenant name.
func anchor(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			b.WriteRune(r)
		} else {
			fmt.Fprintf(&b, ".%x", r)
		}
	}
	return b.String()
}
