package chaos

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stratametrics/strata/internal/harness"
)

// verifyTimeout bounds `strata bucket verify --full`, which reads every
// index of the bucket.
const verifyTimeout = 5 * time.Minute

// checkBucket is the end of every scenario, once the block builders have
// stopped. Each step reads the bucket as Thanos' readers do (blocks with
// a deletion mark are gone):
//
//  1. `strata bucket verify --full` finds no problem, and every
//     acknowledged sample is in the bucket;
//  2. the unmodified Thanos Compactor with its default flags (no vertical
//     compaction, no deduplication) compacts the bucket without an error:
//     it halts on two blocks of one stream that overlap, whether or not
//     it has anything to compact. Nothing may be lost by it;
//  3. the Compactor again, deduplicating receive_replica (vertical
//     compaction: the replicas' overlapping blocks are merged). Then
//     every sample that was in the bucket, acknowledged or not, is in
//     exactly one block, counted block by block, and verify is clean.
func (c *cluster) checkBucket(t *testing.T, ledgers ...*ledger) {
	t.Helper()
	begin := time.Now()
	bkt, err := c.s3.BucketConfig().Open(context.Background(), quiet, nil, "chaos")
	if err != nil {
		t.Fatal(err)
	}
	count := func(what string) (harness.Occurrences, harness.LiveBlocks) {
		t.Helper()
		start := time.Now()
		occ, live := harness.CountLiveSamples(t, bkt, "tenant_id", "receive_replica")
		if len(live.NoCompact) > 0 {
			t.Errorf("%s: the Compactor marked blocks no-compact (it found something wrong with them): %v", what, live.NoCompact)
		}
		t.Logf("%s: %d samples in %d blocks (%d marked for deletion), read in %s",
			what, occ.Total(), len(live.Blocks), len(live.Deleted), time.Since(start).Round(time.Millisecond))
		return occ, live
	}

	const flushed = "flushed"
	c.verifyBucket(t, flushed)
	before, live := count(flushed)
	for _, l := range ledgers {
		l.check(t, before, false, flushed)
	}

	const compacted = "compacted"
	c.compact(t, compacted, len(live.Blocks))
	after, live := count(compacted)
	for _, l := range ledgers {
		l.check(t, after, false, compacted)
	}
	c.verifyBucket(t, compacted)

	// The compacted sources are deleted right away, which readers would
	// skip anyway: the count is then of the blocks that stay.
	const deduplicated = "deduplicated"
	c.compact(t, deduplicated, len(live.Blocks), "--deduplication.replica-label=receive_replica", "--delete-delay=0s")
	dedup, _ := count(deduplicated)
	for _, l := range ledgers {
		l.check(t, dedup, true, deduplicated)
	}
	checkEachOnce(t, before, dedup)
	c.verifyBucket(t, deduplicated)
	t.Logf("bucket checked in %s", time.Since(begin).Round(time.Millisecond))
}

// compact runs one pass of the Thanos Compactor with flags, which must
// succeed and see all the blocks live before it.
func (c *cluster) compact(t *testing.T, what string, blocks int, flags ...string) {
	t.Helper()
	start := time.Now()
	run, err := c.s3.ThanosCompact(t, flags...)
	if err != nil {
		t.Fatalf("%s: the Thanos Compactor refused the bucket: %v", what, err)
	}
	if run.Synced != blocks {
		t.Fatalf("%s: the Thanos Compactor saw %d blocks of the %d in the bucket:\n%s", what, run.Synced, blocks, run.Log)
	}
	how := "default flags"
	if len(flags) > 0 {
		how += " but " + strings.Join(flags, " ")
	}
	t.Logf("%s: the Thanos Compactor (%s) passed over %d blocks in %s", what, how, blocks, time.Since(start).Round(time.Millisecond))
}

// checkEachOnce: every sample in the bucket before compaction is in
// exactly one block after deduplication, with its value, and nothing
// else is.
func checkEachOnce(t *testing.T, before, after harness.Occurrences) {
	t.Helper()
	var bad []string
	n := 0
	note := func(format string, args ...any) {
		n++
		if len(bad) < 5 {
			bad = append(bad, fmt.Sprintf(format, args...))
		}
	}
	distinct := 0
	for tenant, series := range before {
		for key, samples := range series {
			for ts, o := range samples {
				distinct++
				a, ok := after[tenant][key][ts]
				switch {
				case !ok:
					note("%s %s@%d lost", tenant, key, ts)
				case a.N != 1:
					note("%s %s@%d in %d blocks", tenant, key, ts, a.N)
				case !(a.Value == o.Value || math.IsNaN(a.Value) && math.IsNaN(o.Value)):
					note("%s %s@%d is %v, was %v", tenant, key, ts, a.Value, o.Value)
				}
			}
		}
	}
	for tenant, series := range after {
		for key, samples := range series {
			for ts := range samples {
				if _, ok := before[tenant][key][ts]; !ok {
					note("%s %s@%d appeared", tenant, key, ts)
				}
			}
		}
	}
	if n > 0 {
		t.Fatalf("deduplicated: %d of %d distinct samples are not in exactly one block as they were, e.g. %s", n, distinct, strings.Join(bad, "; "))
	}
	t.Logf("deduplicated: each of the bucket's %d distinct samples is in exactly one block", distinct)
}

// verifyBucket runs `strata bucket verify --full` on the bucket, which
// must find no problem, warnings included.
func (c *cluster) verifyBucket(t *testing.T, what string) {
	t.Helper()
	p := harness.StartProcess(t, harness.Tool(t, "strata"), []string{"bucket", "verify", "--full"}, c.s3.Env())
	err := p.Wait(verifyTimeout)
	out := p.Logs()
	if err != nil || !strings.Contains(out, ": no problems.") {
		t.Fatalf("%s: strata bucket verify is not clean (%v):\n%s", what, err, out)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "Checked ") {
			t.Logf("%s: strata bucket verify: %s", what, line)
		}
	}
}
