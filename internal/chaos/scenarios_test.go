package chaos

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/stratametrics/strata/blockbuilder/shipper"
	"github.com/stratametrics/strata/internal/harness"
	"github.com/stratametrics/strata/loadgen"
)

// TestKillNineOneBlockBuilder: kill -9 one of three block builders under
// load, restart it after a while. The sender sees no failed write after
// its retries, nothing acknowledged is missing, and the restarted node
// replays its WAL within a stated memory bound.
func TestKillNineOneBlockBuilder(t *testing.T) {
	c := startCluster(t, 3)
	r := c.startRouter(c.bbs)
	l := startLoad(t, r.URL())
	progress(t, l, 20000, "writes before the kill")

	victim := c.bbs[1]
	_, before, err := loadgen.ProcessMemory(victim.Pid())
	if err != nil {
		t.Fatal(err)
	}
	if err := victim.Kill(); err == nil {
		t.Fatal("block builder exited cleanly on SIGKILL")
	}
	progress(t, l, 20000, "writes with one block builder dead")
	time.Sleep(seconds(3))
	victim.Start()
	victim.WaitReady(2 * time.Minute)
	// The bound: replaying the WAL may not take more than twice the memory
	// the block builder had before it was killed, plus 64 MiB of slack for
	// the runtime.
	peak, _, err := loadgen.ProcessMemory(victim.Pid())
	if err != nil {
		t.Fatal(err)
	}
	bound := 2*before + 64<<20
	t.Logf("WAL replay: peak RSS %d MiB, RSS before the kill %d MiB, bound %d MiB", peak>>20, before>>20, bound>>20)
	if peak > bound {
		t.Fatalf("WAL replay peaked at %d MiB, over the bound of %d MiB", peak>>20, bound>>20)
	}
	// The router brings the restarted block builder back by itself.
	waitFor(t, 30*time.Second, "the restarted block builder to take writes", func() bool {
		return metric(t, victim.Addr, "strata_blockbuilder_appended_total") > 0
	})
	progress(t, l, 20000, "writes after the restart")
	noFailures(t, l.finish(t))
	c.flushAndCheck(t, l.ledger)
}

// TestRollingRestart: SIGTERM each block builder in turn, each at a
// random point inside a block, waiting for it to come back. One replica
// down at a time leaves a quorum, so no write fails and none conflicts;
// the blocks flushed at each stop must not overlap those cut after it
// (checkBucket's Thanos Compactor halts on that).
func TestRollingRestart(t *testing.T) {
	c := startCluster(t, 3)
	r := c.startRouter(c.bbs)
	l := startLoad(t, r.URL())
	for _, b := range c.bbs {
		progress(t, l, 10000, "writes before the restart of "+b.Addr)
		at := waitInsideBlock(t, b, l.ledger.tenant)
		if err := b.StopWithin(flushGrace); err != nil {
			t.Fatalf("block builder %s did not stop cleanly: %v", b.Addr, err)
		}
		t.Logf("block builder %s stopped with its head %s into a block", b.Addr, at)
		progress(t, l, 5000, "writes while "+b.Addr+" is down")
		b.Start()
		b.WaitReady(2 * time.Minute)
		time.Sleep(seconds(1))
	}
	progress(t, l, 10000, "writes after the rolling restart")
	rep := l.finish(t)
	noFailures(t, rep)
	for code, n := range rep.Errors {
		// Conflicts are answered 400: none may come of a restart.
		if strings.HasPrefix(code, "5") || code == "400" {
			t.Errorf("%d answers %s during the rolling restart: %s", n, code, rep.ErrorExamples[code])
		}
	}
	c.flushAndCheck(t, l.ledger)
}

// waitInsideBlock waits until the head of tenant on b is at a random
// point inside a block, and returns how far into it. Blocks are cut by
// sample time, which the catch-up load moves faster than the clock, so
// the point is found from the head's newest sample, not by sleeping.
func waitInsideBlock(t *testing.T, b *harness.Component, tenant string) time.Duration {
	t.Helper()
	// Neither edge: a stop there is no different from a cut.
	target := time.Second + rand.N(blockDuration-2*time.Second)
	var into time.Duration
	seenBefore := false
	waitFor(t, 3*blockDuration+time.Minute, fmt.Sprintf("the head of %s on %s to be %s into a block", tenant, b.Addr, target), func() bool {
		maxt := tenantMetric(t, b.Addr, "prometheus_tsdb_head_max_time", tenant)
		if maxt <= 0 {
			return false
		}
		into = time.Duration(int64(maxt)%blockDuration.Milliseconds()) * time.Millisecond
		// Once before the target, so as not to take the block the wait
		// began in past it.
		if into < target {
			seenBefore = true
			return false
		}
		return seenBefore
	})
	return into
}

// TestHashringGrowsAndShrinks: the hashring file goes from 3 to 4 block
// builders and back while load runs; the router reloads it without a
// restart and nothing is lost.
func TestHashringGrowsAndShrinks(t *testing.T) {
	c := startCluster(t, 3)
	r := c.startRouter(c.bbs)
	l := startLoad(t, r.URL())
	progress(t, l, 20000, "writes on three block builders")

	fourth := c.addBlockBuilder()
	hits := func() float64 { return metric(t, fourth.Addr, "strata_blockbuilder_appended_total") }
	c.writeRing(c.bbs)
	waitFor(t, 60*time.Second, "the fourth block builder to get writes", func() bool { return hits() > 0 })
	progress(t, l, 20000, "writes on four block builders")

	c.writeRing(c.bbs[:3])
	time.Sleep(seconds(1))
	stopped := hits()
	progress(t, l, 20000, "writes on three block builders again")
	if after := hits(); after != stopped {
		t.Errorf("the removed block builder still gets writes: %v then %v samples", stopped, after)
	}
	if got := metric(t, r.Addr, "strata_hashring_config_reloads_total"); got < 3 {
		t.Errorf("router reloaded its hashring %v times, want 3 (start, grow, shrink)", got)
	}
	noFailures(t, l.finish(t))
	c.flushAndCheck(t, l.ledger)
}

// TestS3Outage: the S3 server stops while load runs. Blocks queue on
// disk and the backlog metric shows them; when S3 is back everything is
// uploaded, nothing twice, nothing left partial.
func TestS3Outage(t *testing.T) {
	c := startCluster(t, 3)
	r := c.startRouter(c.bbs)
	l := startLoad(t, r.URL())
	progress(t, l, 10000, "writes before the outage")

	c.s3.Stop()
	waitFor(t, 2*time.Minute, "blocks to queue on disk", func() bool {
		return metric(t, c.bbs[0].Addr, "strata_shipper_pending_blocks") >= 2
	})
	time.Sleep(seconds(10))
	if age := metric(t, c.bbs[0].Addr, "strata_shipper_oldest_pending_block_age_seconds"); age <= 0 {
		t.Errorf("oldest pending block age %v during the outage", age)
	}
	c.s3.Start()
	// Uploads have been backing off through the outage: a block builder
	// tries again up to the shipper's longest wait (+10% jitter) later.
	waitFor(t, 2*time.Minute+shipper.MaxBackoff*11/10, "the backlog to drain", func() bool {
		for _, b := range c.bbs {
			if metric(t, b.Addr, "strata_shipper_pending_blocks") > 0 {
				return false
			}
		}
		return true
	})
	noFailures(t, l.finish(t))
	c.flushAndCheck(t, l.ledger)
	checkNoPartialBlocks(t, c.s3)
}

// checkNoPartialBlocks: every block directory in the bucket has its
// meta.json: an upload cut short by the outage was completed later.
func checkNoPartialBlocks(t *testing.T, s3 *harness.S3) {
	t.Helper()
	root := filepath.Join(s3.Dir, s3.Bucket)
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if _, err := ulid.Parse(e.Name()); err != nil || !e.IsDir() {
			continue // the S3 server's own files
		}
		if _, err := os.Stat(filepath.Join(root, e.Name(), "meta.json")); err != nil {
			t.Errorf("block %s has no meta.json: a partial upload was left behind", e.Name())
		}
	}
}

// TestDiskFull: a block builder whose disk fills up answers writes with a
// retryable error that says why; once space is back it takes writes again
// and nothing it acknowledged before is lost or corrupted.
func TestDiskFull(t *testing.T) {
	dir := harness.SmallFileSystem(t, "160m")
	s3 := harness.StartS3(t)
	b := harness.StartBlockBuilder(t, "disk-0", s3.Env(), append(bbEnv, "STRATA_DATA_DIR="+filepath.Join(dir, "data"))...)
	c := &cluster{t: t, s3: s3, bbs: []*harness.Component{b}}

	l := startLoad(t, b.URL())
	progress(t, l, 5000, "writes before the disk fills")
	free := harness.Fill(t, dir)
	// The load's own writes must fail, retryably, saying why. (A probe of
	// its own with samples at the wall clock would move the tenant's head
	// an hour past the load's sample time and make every later write of
	// the load out of bounds.)
	var example string
	waitFor(t, 2*time.Minute, "writes to fail with the disk full", func() bool {
		var ok bool
		example, ok = l.answers.first(http.StatusServiceUnavailable)
		return ok
	})
	t.Logf("answer with the disk full: 503 %s", example)
	if !strings.Contains(example, "no space") {
		t.Errorf("the answer does not say the disk is full: %s", example)
	}
	free()
	progress(t, l, 5000, "writes after space is back")
	rep := l.finish(t)
	if rep.DroppedSamples > 0 {
		t.Fatalf("%d samples dropped with a 4xx: a full disk must be retryable; errors %v", rep.DroppedSamples, rep.ErrorExamples)
	}
	if rep.Retries == 0 {
		t.Fatal("the sender retried nothing: the full disk never reached its writes")
	}
	c.flushAndCheck(t, l.ledger)
}

// TestTwoRoutersOneDies: two routers behind one address (a round-robin
// TCP balancer, as a Service gives), one killed mid-load: the other keeps
// serving and the sender loses nothing.
func TestTwoRoutersOneDies(t *testing.T) {
	c := startCluster(t, 3)
	r1 := c.startRouter(c.bbs)
	r2 := c.startRouter(c.bbs)
	lb := startBalancer(t, r1.Addr, r2.Addr)
	l := startLoad(t, "http://"+lb+"/api/v1/receive")
	progress(t, l, 20000, "writes through both routers")
	if err := r1.Kill(); err == nil {
		t.Fatal("router exited cleanly on SIGKILL")
	}
	progress(t, l, 20000, "writes through the surviving router")
	noFailures(t, l.finish(t))
	c.flushAndCheck(t, l.ledger)
}

// idleTimeout is STRATA_TENANT_IDLE_TIMEOUT in TestIdleTenantClosedAndReopened.
const idleTimeout = 3 * time.Second

// TestIdleTenantClosedAndReopened: a second tenant writes a little, goes
// idle until every block builder has flushed, uploaded and closed it,
// then writes again, while the main load runs. The blocks cut after the
// reopening must not overlap the one the close flushed (the Compactor of
// checkBucket halts on that), and nothing of either tenant is lost.
func TestIdleTenantClosedAndReopened(t *testing.T) {
	c := startCluster(t, 3, "STRATA_TENANT_IDLE_TIMEOUT="+idleTimeout.String())
	r := c.startRouter(c.bbs)
	l := startLoad(t, r.URL())
	idle := newLedger("idle")
	// Each write of the idle tenant is a few seconds of samples at the
	// clock, begun early in a block, so that after the close it writes on
	// in the block the close flushed part of: where an overlap would come
	// from.
	writeIdle := func(what string) {
		t.Helper()
		cfg := loadgen.DefaultConfig()
		cfg.URL = r.URL()
		cfg.Tenant = idle.tenant
		cfg.Series = 20
		cfg.SamplesPerRequest = 20
		cfg.Concurrency = 1
		cfg.Duration = 0
		cfg.Rounds = 10
		cfg.Interval = 250 * time.Millisecond
		cfg.Backfill = 0
		cfg.Timeout = 10 * time.Second
		cfg.MaxBackoff = time.Second
		cfg.Acked = idle.ack
		rep, err := loadgen.Run(context.Background(), cfg)
		if err != nil {
			t.Fatalf("tenant %s, %s: %v", idle.tenant, what, err)
		}
		noFailures(t, rep)
		t.Logf("tenant %s, %s: %d samples acknowledged", idle.tenant, what, rep.AckedSamples)
	}
	if into := time.Since(time.Now().Truncate(blockDuration)); into > blockDuration/3 {
		time.Sleep(blockDuration - into)
	}
	start := time.Now()
	writeIdle("before going idle")
	progress(t, l, 10000, "writes of the main tenant while the other is idle")
	// The close takes the idle timeout, a flush and an upload.
	waitFor(t, 2*time.Minute, "every block builder to close the idle tenant", func() bool {
		for _, b := range c.bbs {
			if closedIdle(b, idle.tenant) == 0 {
				return false
			}
		}
		return true
	})
	for _, b := range c.bbs {
		if n := tenantMetric(t, b.Addr, "prometheus_tsdb_head_series", idle.tenant); n > 0 {
			t.Errorf("block builder %s logged the close of tenant %s but still has its TSDB open (%v head series)", b.Addr, idle.tenant, n)
		}
	}
	t.Logf("tenant %s closed by every block builder %s after its first write began", idle.tenant, time.Since(start).Round(time.Millisecond))
	writeIdle("reopened")
	progress(t, l, 10000, "writes of the main tenant after the other reopened")
	noFailures(t, l.finish(t))
	c.flushAndCheck(t, l.ledger, idle)
}

// closedIdle counts the closes of tenant for idleness in b's log.
func closedIdle(b *harness.Component, tenant string) int {
	re := regexp.MustCompile(`(?m)msg="closed idle tenant".* tenant=` + regexp.QuoteMeta(tenant) + `( |$)`)
	return len(re.FindAllString(b.Logs(), -1))
}

// startBalancer is a round-robin TCP balancer that skips backends it
// cannot connect to, like a Service whose endpoints are being updated.
func startBalancer(t *testing.T, backends ...string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var next atomic.Uint64
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				for i := 0; i < len(backends); i++ {
					be := backends[int(next.Add(1))%len(backends)]
					up, err := net.DialTimeout("tcp", be, time.Second)
					if err != nil {
						continue
					}
					defer up.Close()
					var wg sync.WaitGroup
					wg.Add(2)
					go func() { defer wg.Done(); io.Copy(up, conn); up.(*net.TCPConn).CloseWrite() }()
					go func() { defer wg.Done(); io.Copy(conn, up); conn.(*net.TCPConn).CloseWrite() }()
					wg.Wait()
					return
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// metric reads a metric from a component's /metrics, summed over series;
// -1 when the component does not answer.
func metric(t *testing.T, addr, name string) float64 {
	t.Helper()
	return metricWhere(t, addr, name, nil)
}

// tenantMetric is metric for the series of one tenant.
func tenantMetric(t *testing.T, addr, name, tenant string) float64 {
	t.Helper()
	return metricWhere(t, addr, name, harness.Label("tenant", tenant))
}

func metricWhere(t *testing.T, addr, name string, keep func(map[string]string) bool) float64 {
	t.Helper()
	m, err := harness.ScrapeMetrics(context.Background(), "http://"+addr+"/metrics")
	if err != nil {
		return -1
	}
	return m.Sum(name, keep)
}
