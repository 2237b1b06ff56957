// Package gctune keeps the garbage collector's share of a process' CPU
// near a target by moving GOGC between bounds.
//
// A block builder's heap is mostly its TSDB heads, which every collection
// marks whole. Remote-write allocates little per sample, so a low GOGC
// (a collection every quarter of growth) costs a few percent of CPU and
// keeps the peak memory that sizes a pod low. OTLP allocates about 1.7 KB
// per sample in decoding (pdata) and translating (Prometheus' translator),
// and at the same GOGC the collector took a third of the CPU. One fixed
// GOGC cannot serve both: the tuner raises it while collecting costs more
// than the target, up to Go's default, and lowers it back when the load
// allocates less. A memory limit (GOMEMLIMIT) still bounds the heap
// whatever GOGC is.
package gctune

import (
	"context"
	"log/slog"
	"math"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
	"time"
)

// Tuner is one process' GOGC policy.
type Tuner struct {
	// Min and Max bound GOGC; it starts at Min.
	Min, Max int
	// Target is the share of the process' CPU (user Go code and
	// collection) that collection is held near, e.g. 0.1.
	Target float64
	// Interval is how often the share is read and GOGC moved.
	Interval time.Duration
	Logger   *slog.Logger

	// setGCPercent and readCPU are the runtime's; tests replace them.
	setGCPercent func(int) int
	readCPU      func() (gc, user float64)
	gogc         atomic.Int64
}

// GOGC is the GOGC the tuner last set.
func (t *Tuner) GOGC() int { return int(t.gogc.Load()) }

// Defaults for a block builder process: Min is the GOGC it is sized at,
// Max Go's default; a share under 10% costs remote-write nothing (it
// collects about 2% of its CPU at Min) and takes OTLP from a third to
// about a tenth.
const (
	DefaultTarget   = 0.10
	DefaultInterval = time.Second

	// minBusy is the CPU (cores) below which a window is not read.
	minBusy = 0.05
)

// Start sets GOGC to t.Min and, until ctx ends, moves it every
// t.Interval from a goroutine of its own.
func (t *Tuner) Start(ctx context.Context) {
	set := t.setGCPercent
	if set == nil {
		set = debug.SetGCPercent
	}
	set(t.Min)
	t.gogc.Store(int64(t.Min))
	go t.run(ctx)
}

func (t *Tuner) run(ctx context.Context) {
	set, read := t.setGCPercent, t.readCPU
	if set == nil {
		set = debug.SetGCPercent
	}
	if read == nil {
		read = runtimeCPU
	}
	interval := t.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	gogc := t.Min
	lastGC, lastUser := read()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		gc, user := read()
		if gc-lastGC+user-lastUser < minBusy*interval.Seconds() {
			// Idle: a collection a minute over nothing else would read
			// as a large share.
			continue
		}
		next := Next(gogc, t.Min, t.Max, share(gc-lastGC, user-lastUser), t.Target)
		lastGC, lastUser = gc, user
		if next != gogc {
			if t.Logger != nil {
				t.Logger.Debug("GOGC moved", "from", gogc, "to", next)
			}
			gogc = next
			set(gogc)
			t.gogc.Store(int64(gogc))
		}
	}
}

// share is collection's part of the CPU used (0 when nothing was
// accounted: the runtime accounts CPU at the end of each collection).
func share(gc, user float64) float64 {
	if gc <= 0 || gc+user <= 0 {
		return 0
	}
	return gc / (gc + user)
}

// Next is the GOGC that brings collection's share from measured (at
// gogc) to target: a collection marks the live heap, and one comes every
// gogc percent of it allocated, so collection's CPU goes as 1/gogc. A
// change under a fifth is not made, so that noise does not move it,
// unless it reaches a bound: a share far off the target wants the bound,
// and a step short of it would stay (26 where the load wants 25).
func Next(gogc, lo, hi int, measured, target float64) int {
	if measured <= 0 || target <= 0 || math.IsNaN(measured) {
		if gogc < lo {
			return lo
		}
		return gogc
	}
	want := float64(gogc) * measured / target
	want = math.Max(float64(lo), math.Min(float64(hi), want))
	atBound := want == float64(lo) || want == float64(hi)
	if !atBound && math.Abs(want-float64(gogc)) < float64(gogc)/5 && gogc >= lo && gogc <= hi {
		return gogc
	}
	return int(math.Round(want))
}

var cpuMetrics = []string{"/cpu/classes/gc/total:cpu-seconds", "/cpu/classes/user:cpu-seconds"}

func runtimeCPU() (gc, user float64) {
	s := []metrics.Sample{{Name: cpuMetrics[0]}, {Name: cpuMetrics[1]}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64 || s[1].Value.Kind() != metrics.KindFloat64 {
		return 0, 0
	}
	return s[0].Value.Float64(), s[1].Value.Float64()
}
