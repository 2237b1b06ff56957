package gctune

import (
	"context"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestNext(t *testing.T) {
	for _, c := range []struct {
		name             string
		gogc, lo, hi     int
		measured, target float64
		want             int
	}{
		{"remote-write collects little: stays at the floor", 25, 25, 100, 0.02, 0.1, 25},
		{"OTLP at the floor collects a third: raised", 25, 25, 100, 0.33, 0.1, 83},
		{"raised again, to the ceiling", 83, 25, 100, 0.13, 0.1, 100},
		{"at the ceiling, still above target: stays", 100, 25, 100, 0.12, 0.1, 100},
		{"the load allocates less: back to the floor", 100, 25, 100, 0.01, 0.1, 25},
		{"near the target: not moved for noise", 50, 25, 100, 0.11, 0.1, 50},
		{"a step above the floor, collecting little: to the floor", 26, 25, 100, 0.02, 0.1, 25},
		{"a step under the ceiling, above target: to the ceiling", 95, 25, 100, 0.2, 0.1, 100},
		{"nothing accounted: not moved", 60, 25, 100, 0, 0.1, 60},
		{"below the floor (set elsewhere): to the floor", 10, 25, 100, 0, 0.1, 25},
		{"above the ceiling: to the ceiling", 400, 25, 100, 0.1, 0.1, 100},
	} {
		if got := Next(c.gogc, c.lo, c.hi, c.measured, c.target); got != c.want {
			t.Errorf("%s: Next(%d, %d, %d, %v, %v) = %d, want %d", c.name, c.gogc, c.lo, c.hi, c.measured, c.target, got, c.want)
		}
	}
}

// TestTunerFollowsTheShare runs the loop on CPU readings the test makes
// up: a third collecting raises GOGC step by step to Max, collection
// that costs little brings it back to Min, and idle windows move nothing.
func TestTunerFollowsTheShare(t *testing.T) {
	var mu sync.Mutex
	var gc, user float64
	var set atomic.Int64
	steps := make(chan int, 100)
	tu := &Tuner{
		Min: 25, Max: 100, Target: 0.1, Interval: time.Millisecond,
		setGCPercent: func(p int) int { set.Store(int64(p)); steps <- p; return 0 },
		readCPU: func() (float64, float64) {
			mu.Lock()
			defer mu.Unlock()
			return gc, user
		},
	}
	// Each window spends a second of CPU, so that none reads as idle.
	spend := func(gcShare float64) {
		mu.Lock()
		gc += gcShare
		user += 1 - gcShare
		mu.Unlock()
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tu.Start(ctx)
	if p := <-steps; p != 25 {
		t.Fatalf("started at GOGC %d, want Min 25", p)
	}
	want := func(p int) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case got := <-steps:
				if got == p {
					return
				}
			case <-deadline:
				t.Fatalf("GOGC %d, want %d", set.Load(), p)
			}
		}
	}
	stop := make(chan struct{})
	load := func(share float64) {
		close(stop)
		stop = make(chan struct{})
		go func(stop chan struct{}) {
			for {
				select {
				case <-stop:
					return
				case <-time.After(time.Millisecond):
					spend(share)
				}
			}
		}(stop)
	}
	load(0.33)
	want(100)
	load(0.01)
	want(25)
	close(stop)
	// Idle: CPU readings stand still, and GOGC stays.
	time.Sleep(20 * time.Millisecond)
	select {
	case p := <-steps:
		t.Fatalf("GOGC moved to %d while idle", p)
	default:
	}
}

var sink [][]byte

// TestTunerOnTheRuntime runs the tuner on this process' own runtime
// metrics: a live heap of pointers and a loop that allocates garbage
// make collection costly and GOGC rises; once the heap is freed, a loop
// that computes and allocates a little brings it back to Min.
func TestTunerOnTheRuntime(t *testing.T) {
	before := debug.SetGCPercent(100)
	defer debug.SetGCPercent(before)
	live := make([]*[8]int, 2<<20) // 2M small objects to mark each cycle
	for i := range live {
		live[i] = new([8]int)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tu := &Tuner{Min: 25, Max: 100, Target: 0.1, Interval: 200 * time.Millisecond}
	tu.Start(ctx)
	if got := gcPercent(); got != 25 || tu.GOGC() != 25 {
		t.Fatalf("GOGC %d (tuner: %d) after Start, want Min 25", got, tu.GOGC())
	}
	// busy runs batches of work until GOGC satisfies until: garbage
	// allocates 256 bytes at every step; compute a step's arithmetic only,
	// with 64 KB a batch so that collections still come (the runtime
	// accounts CPU when one ends) and cost little.
	busy := func(garbage bool, until func(int) bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		x := 0
		for !until(tu.GOGC()) {
			if time.Now().After(deadline) {
				g, u := runtimeCPU()
				t.Fatalf("GOGC %d after 30 s (CPU: %.2f s collecting, %.2f s user)", tu.GOGC(), g, u)
			}
			if garbage {
				for range 10000 {
					sink = append(sink[:0], make([]byte, 256))
				}
				continue
			}
			for range 1000000 {
				x = x*31 + 7
			}
			sink = append(sink[:0], make([]byte, 64<<10))
		}
		_ = x
	}
	busy(true, func(p int) bool { return p > 25 })
	if got := gcPercent(); got != tu.GOGC() {
		t.Fatalf("the runtime's GOGC is %d, the tuner's %d", got, tu.GOGC())
	}
	live = nil // the heap to mark shrinks with the load
	busy(false, func(p int) bool { return p == 25 })
}

func gcPercent() int {
	p := debug.SetGCPercent(-1)
	debug.SetGCPercent(p)
	return p
}
