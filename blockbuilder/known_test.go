package blockbuilder

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/storage"
	"github.com/thanos-io/objstore/providers/filesystem"

	"github.com/stratametrics/strata/internal/harness"
	"github.com/stratametrics/strata/loadgen"
	"github.com/stratametrics/strata/remotewrite"
)

// TestKnownRefsAfterHeadGC: series written twice (the second time found
// by their label bytes), then flushed out of the head, which
// garbage-collects them, then written again are taken: their references
// in t.known are stale, fail their first append, and the series are
// created anew under new references, which t.known then holds. The
// bucket holds every sample.
func TestKnownRefsAfterHeadGC(t *testing.T) {
	const n = 20
	bkt, _ := filesystem.NewBucket(t.TempDir())
	b := newTestBlockBuilder(t, bkt, nil, nil)
	start := time.Now().Add(-4 * time.Minute).UnixMilli()
	reqs := []*prompb.WriteRequest{minuteSeries(n, start, 30*time.Second), minuteSeries(n, start+30000, 30*time.Second)}
	write := func(what string, req *prompb.WriteRequest) {
		t.Helper()
		if w := send(t, b.Handler(), "g", req, false); w.Code != http.StatusNoContent {
			t.Fatalf("%s: %d %s", what, w.Code, w.Body)
		}
	}
	write("first", reqs[0])
	write("second", reqs[1])
	tdb, err := b.tenant("g", false)
	if err != nil {
		t.Fatal(err)
	}
	keys := labelKeys(t, reqs[0])
	before := knownAs(t, tdb, keys)

	if err := b.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := tdb.db.Head().NumSeries(); got != 0 {
		t.Fatalf("%d series left in the head after a flush: nothing was garbage-collected", got)
	}
	again := minuteSeries(n, start+120000, 30*time.Second)
	write("after the flush", again)
	reqs = append(reqs, again)
	if got := tdb.db.Head().NumSeries(); got != n {
		t.Fatalf("%d series in the head, want %d", got, n)
	}
	checkRenewed(t, tdb, keys, before)
	if err := b.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	got, _ := harness.BucketSamples(t, bkt, "tenant_id", "receive_replica")
	compareSamples(t, got["g"], expected(reqs...))
}

// knownAs is the reference t.known holds for each key; each must have one.
func knownAs(t *testing.T, tdb *tenantDB, keys []refKey) []storage.SeriesRef {
	t.Helper()
	refs := make([]storage.SeriesRef, len(keys))
	for i, k := range keys {
		var ok bool
		if refs[i], ok = tdb.known.get(k); !ok {
			t.Fatalf("series %d not known after two writes", i)
		}
	}
	return refs
}

// checkRenewed checks that t.known holds a reference for each key other
// than before's: the series was created anew.
func checkRenewed(t *testing.T, tdb *tenantDB, keys []refKey, before []storage.SeriesRef) {
	t.Helper()
	for i, k := range keys {
		if ref, ok := tdb.known.get(k); !ok || ref == before[i] {
			t.Fatalf("series %d: known as %d (%v), was %d before the flush", i, ref, ok, before[i])
		}
	}
}

// labelKeys is t.known's key of every series of req.
func labelKeys(t *testing.T, req *prompb.WriteRequest) []refKey {
	t.Helper()
	raw, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var r remotewrite.Request
	if err := r.Parse(remotewrite.V1, raw); err != nil {
		t.Fatal(err)
	}
	keys := make([]refKey, r.NumSeries())
	for i := range keys {
		run, ok := r.LabelRun(i)
		if !ok {
			t.Fatalf("series %d has no label run", i)
		}
		keys[i] = keyOfRun(run)
	}
	return keys
}

// TestKnownRefsTable: what is put is got, under its 128-bit key only; a
// key put again replaces its entry; the table grows with the head's
// series but not past twice them; readers racing writers never get a
// value put under another key.
func TestKnownRefsTable(t *testing.T) {
	k := newKnownRefs()
	head := uint64(0)
	headSeries := func() uint64 { return head }
	key := func(i int) refKey { return keyOfRun([]byte{byte(i), byte(i >> 8), byte(i >> 16), 'x'}) }
	if _, ok := k.get(key(1)); ok {
		t.Fatal("an empty table knows a key")
	}
	k.put(key(1), 10, headSeries)
	k.put(key(1), 11, headSeries)
	if ref, ok := k.get(key(1)); !ok || ref != 11 {
		t.Fatalf("got %d %v, want 11", ref, ok)
	}
	if _, ok := k.get(refKey{key(1).a, key(1).b ^ 1}); ok {
		t.Fatal("half a key matched")
	}

	// No growth past twice the head's series, however many are put.
	head = 1000
	for i := range 100_000 {
		k.put(key(i), storage.SeriesRef(i+1), headSeries)
	}
	if slots := k.bytes() / 24; slots < 2000 || slots > 4096 {
		t.Fatalf("%d entries for a head of 1000 series", slots)
	}
	// Grown empty as the head grows (twice in the first rounds), then at
	// its size: series sent round after round, each put when not found,
	// as a block builder does. Series whose buckets are both full evict
	// each other in every round: almost none may be.
	head = 100_000
	missed := 0
	for range 10 {
		missed = 0
		for i := range 100_000 {
			ref, ok := k.get(key(i))
			if ok && ref != storage.SeriesRef(i+1) {
				t.Fatalf("key %d: got %d", i, ref)
			}
			if !ok {
				missed++
				k.put(key(i), storage.SeriesRef(i+1), headSeries)
			}
		}
	}
	if missed > 100 {
		t.Fatalf("%d of 100000 series not found in the tenth round", missed)
	}

	// Writers overwrite entries of a full table while readers check
	// that every answer is the value of their key.
	small := newKnownRefs()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 2 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				j := (i*7 + w) % 5000
				small.put(key(j), storage.SeriesRef(j+1), func() uint64 { return 0 })
			}
		})
	}
	for range 200_000 {
		for j := range 10 {
			if ref, ok := small.get(key(j)); ok && ref != storage.SeriesRef(j+1) {
				close(stop)
				t.Fatalf("key %d: got %d", j, ref)
			}
		}
	}
	close(stop)
	wg.Wait()
}

// TestKnownRefsV2: 2.0 series are found by their decoded labels, and a
// reference gone stale after a flush falls back as for 1.0: every write
// of three rounds over a flush is taken and the bucket holds each sample.
func TestKnownRefsV2(t *testing.T) {
	const n = 50
	bkt, _ := filesystem.NewBucket(t.TempDir())
	b := newTestBlockBuilder(t, bkt, nil, nil)
	start := time.Now().Add(-5 * time.Minute).UnixMilli()
	st := &appendState{}
	write := func(round int64) []refKey {
		t.Helper()
		body := loadgen.Encode(remotewrite.V2, 0, n, 1, round, start, 15000)
		if err := st.req.Parse(remotewrite.V2, body); err != nil {
			t.Fatal(err)
		}
		res, err := b.write(t.Context(), "v2", b.limits.Set(), st, time.Now().UnixMilli())
		if err != nil || len(res.rejected) > 0 || res.written.Samples != n {
			t.Fatalf("round %d: %v, %d rejected, %d written", round, err, len(res.rejected), res.written.Samples)
		}
		keys := make([]refKey, n)
		for i := range keys {
			if err := st.req.Series(i, &st.series); err != nil {
				t.Fatal(err)
			}
			keys[i] = keyOfSymbols(keyOf(nil, st.series.Labels))
		}
		return keys
	}
	write(0)
	keys := write(1)
	tdb, err := b.tenant("v2", false)
	if err != nil {
		t.Fatal(err)
	}
	before := knownAs(t, tdb, keys)
	if err := b.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	write(2)
	checkRenewed(t, tdb, keys, before)
	if err := b.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	got, _ := harness.BucketSamples(t, bkt, "tenant_id", "receive_replica")
	if len(got["v2"]) != n || got.Count() != 3*n {
		t.Fatalf("%d series and %d samples in the bucket, want %d and %d", len(got["v2"]), got.Count(), n, 3*n)
	}
}
