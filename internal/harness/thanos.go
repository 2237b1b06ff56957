// The Thanos Compactor over a test's S3 server, and a count of how often
// each sample is in the blocks readers see.

package harness

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/thanos-io/objstore"

	"github.com/stratametrics/strata/bucket/metadata"
)

// Marker files Thanos writes into a block directory. A block with a
// deletion mark is gone for every reader (the Compactor deletes it after
// --delete-delay); one with a no-compact mark is still read, but the
// Compactor found something wrong with it.
const (
	DeletionMarkFilename  = "deletion-mark.json"
	NoCompactMarkFilename = "no-compact-mark.json"
)

// ThanosObjstoreConfig is s's bucket as a Thanos --objstore.config-file.
// versitygw serves path-style requests only.
func (s *S3) ThanosObjstoreConfig() string {
	return fmt.Sprintf("type: S3\nconfig:\n  bucket: %s\n  endpoint: %s\n  region: %s\n  access_key: %s\n  secret_key: %s\n  insecure: true\n  bucket_lookup_type: path\n",
		s.Bucket, s.Addr, s.Region, s.AccessKey, s.SecretKey)
}

// ThanosObjstoreFile writes ThanosObjstoreConfig into a file of the test
// and returns its path.
func (s *S3) ThanosObjstoreFile(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "objstore.yml")
	if err := os.WriteFile(p, []byte(s.ThanosObjstoreConfig()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// compactTimeout bounds one Compactor pass: seconds on the buckets tests
// make, but the machine may be busy.
const compactTimeout = 10 * time.Minute

// CompactRun is what one pass of the Thanos Compactor did.
type CompactRun struct {
	// Log is its whole output.
	Log string
	// Synced is the number of blocks its first sync of the bucket
	// returned: those it would work on, after its own filters (deletion
	// marks, consistency delay). -1 if it logged none.
	Synced int
}

// compactFailure matches what the Compactor logs when it refuses the
// bucket: a halt (overlapping blocks of one stream, an unhealthy index, a
// compacted block overlapping others) or any other error. Without --wait
// a halt ends the process with a non-zero status too; the log is checked
// as well so that a release that only logs it still fails the test.
var compactFailure = regexp.MustCompile(`(?m)^.*(level=error|pre compaction overlap check|overlaps found|critical error|halting).*$`)

var syncedBlocks = regexp.MustCompile(`msg="successfully synchronized block metadata".* returned=(\d+)`)

// ThanosCompact runs one pass of the unmodified Thanos Compactor (the
// binary STRATA_TEST_THANOS names) over s's bucket: `thanos compact` with
// flags added. It returns an error, with the lines that say why, when the
// Compactor exits non-zero or logs an error or a halt.
//
// --consistency-delay=0s is always given: the Compactor leaves alone
// blocks uploaded less than 30 minutes ago by default, which in a test is
// every block, and would then pass without having looked at any. Pass
// flags after it to override it.
func (s *S3) ThanosCompact(t testing.TB, flags ...string) (CompactRun, error) {
	t.Helper()
	// Without --wait (its default) the Compactor makes one pass and exits.
	args := append([]string{"compact",
		"--data-dir=" + t.TempDir(),
		"--objstore.config-file=" + s.ThanosObjstoreFile(t),
		// Not its default port: tests run side by side.
		"--http-address=" + FreeAddr(t),
		"--consistency-delay=0s",
	}, flags...)
	p := StartProcess(t, Tool(t, "thanos"), args, nil)
	err := p.Wait(compactTimeout)
	run := CompactRun{Log: p.Logs(), Synced: -1}
	if m := syncedBlocks.FindStringSubmatch(run.Log); m != nil {
		run.Synced, _ = strconv.Atoi(m[1])
	}
	var why []string
	if err != nil {
		why = append(why, "exit: "+exitStatus(err))
	}
	// The cause is logged by several components at once: its error
	// line says it all, when there is one.
	lines := compactFailure.FindAllString(run.Log, 20)
	var errLines []string
	for _, l := range lines {
		if strings.Contains(l, "level=error") {
			errLines = append(errLines, l)
		}
	}
	if len(errLines) > 0 {
		lines = errLines
	}
	why = append(why, lines...)
	if len(why) > 0 {
		return run, fmt.Errorf("thanos %s: %s", strings.Join(args, " "), strings.Join(why, "\n"))
	}
	return run, nil
}

// Occurrences is how often each sample is in a bucket's live blocks,
// block by block, not merged: tenant -> series (labels as a string) ->
// timestamp -> occurrences. Float samples keep their value; the values of
// one sample in several blocks must agree.
type Occurrences map[string]map[string]map[int64]Occurrence

// Occurrence is one sample's value (floats only; histograms count, with
// Value 0) and the number of blocks holding it.
type Occurrence struct {
	Value float64
	N     int
}

// Total is the number of samples counted, repeats included.
func (o Occurrences) Total() int {
	n := 0
	for _, series := range o {
		for _, ts := range series {
			for _, oc := range ts {
				n += oc.N
			}
		}
	}
	return n
}

// NotIn returns how many samples are in other than n blocks, and up to 5
// of them, described.
func (o Occurrences) NotIn(n int) (int, []string) {
	count := 0
	var examples []string
	for tenant, series := range o {
		for key, samples := range series {
			for ts, oc := range samples {
				if oc.N == n {
					continue
				}
				if count++; len(examples) < 5 {
					examples = append(examples, fmt.Sprintf("tenant %s: %s at %d in %d blocks", tenant, key, ts, oc.N))
				}
			}
		}
	}
	return count, examples
}

// LiveBlocks is what CountLiveSamples found besides the samples.
type LiveBlocks struct {
	// Blocks are the blocks read: complete, without a deletion mark.
	Blocks []BlockInfo
	// Deleted are the complete blocks skipped for their deletion mark.
	Deleted []ulid.ULID
	// NoCompact are the blocks (among Blocks) with a no-compact mark.
	NoCompact []ulid.ULID
}

// CountLiveSamples reads every block of bkt a Thanos reader would (one
// with a meta.json and no deletion mark) and counts each sample once per
// block that holds it, grouped by the tenant label of the block's
// meta.json. Unlike ReadBucket, which merges replicas as queries do, it
// shows a sample stored twice.
func CountLiveSamples(t testing.TB, bkt objstore.Bucket, tenantLabel, replicaLabel string) (Occurrences, LiveBlocks) {
	t.Helper()
	ctx := context.Background()
	var ids []ulid.ULID
	if err := bkt.Iter(ctx, "", func(name string) error {
		if id, err := ulid.Parse(strings.TrimSuffix(name, "/")); err == nil {
			ids = append(ids, id)
		}
		return nil
	}); err != nil {
		t.Fatalf("list bucket: %v", err)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].Compare(ids[j]) < 0 })
	occ := Occurrences{}
	var live LiveBlocks
	tmp := t.TempDir()
	for _, id := range ids {
		meta, err := metadata.ReadMetaFromBucket(ctx, bkt, id)
		if err != nil {
			continue // partial upload: no reader sees it
		}
		if marked(t, bkt, id, DeletionMarkFilename) {
			live.Deleted = append(live.Deleted, id)
			continue
		}
		info := BlockInfo{Meta: meta, Tenant: meta.Thanos.Labels[tenantLabel], Replica: meta.Thanos.Labels[replicaLabel]}
		live.Blocks = append(live.Blocks, info)
		if marked(t, bkt, id, NoCompactMarkFilename) {
			live.NoCompact = append(live.NoCompact, id)
		}
		dir := filepath.Join(tmp, id.String())
		if err := downloadBlock(ctx, bkt, id.String(), dir); err != nil {
			t.Fatalf("download block %s: %v", id, err)
		}
		if occ[info.Tenant] == nil {
			occ[info.Tenant] = map[string]map[int64]Occurrence{}
		}
		if err := countBlock(dir, occ[info.Tenant]); err != nil {
			t.Fatalf("read block %s (tenant %s, replica %q): %v", id, info.Tenant, info.Replica, err)
		}
		// Blocks can be many: keep the disk to one at a time.
		os.RemoveAll(dir)
	}
	return occ, live
}

func marked(t testing.TB, bkt objstore.Bucket, id ulid.ULID, marker string) bool {
	t.Helper()
	ok, err := bkt.Exists(context.Background(), BlockPath(id, marker))
	if err != nil {
		t.Fatalf("look for %s of block %s: %v", marker, id, err)
	}
	return ok
}

// countBlock adds one occurrence of each sample of the block in dir.
func countBlock(dir string, out map[string]map[int64]Occurrence) error {
	b, err := tsdb.OpenBlock(nil, dir, nil, nil)
	if err != nil {
		return err
	}
	defer b.Close()
	q, err := tsdb.NewBlockQuerier(b, math.MinInt64, math.MaxInt64)
	if err != nil {
		return err
	}
	defer q.Close()
	set := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+"))
	for set.Next() {
		s := set.At()
		key := s.Labels().String()
		m := out[key]
		if m == nil {
			m = map[int64]Occurrence{}
			out[key] = m
		}
		it := s.Iterator(nil)
		for typ := it.Next(); typ != chunkenc.ValNone; typ = it.Next() {
			ts := it.AtT()
			var v float64
			if typ == chunkenc.ValFloat {
				_, v = it.At()
			}
			o := m[ts]
			if o.N > 0 && o.Value != v && !(math.IsNaN(o.Value) && math.IsNaN(v)) {
				return fmt.Errorf("series %s at %d: %v in one block, %v in another", key, ts, o.Value, v)
			}
			m[ts] = Occurrence{Value: v, N: o.N + 1}
		}
		if err := it.Err(); err != nil {
			return err
		}
	}
	return set.Err()
}
