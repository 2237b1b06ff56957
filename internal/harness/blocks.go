package harness

import (
	"context"
	"fmt"
	"math"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/go-kit/log"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/thanos-io/objstore"

	"github.com/stratametrics/strata/bucket/metadata"
)

// Samples holds every float sample of a bucket: tenant -> series (labels
// as a string) -> timestamp -> value. Replicas of a series merge into one
// entry, which is how Thanos Query deduplicates them.
type Samples map[string]map[string]map[int64]float64

// Count is the number of distinct samples.
func (s Samples) Count() int {
	n := 0
	for _, series := range s {
		for _, ts := range series {
			n += len(ts)
		}
	}
	return n
}

// TenantCount is the number of distinct samples of one tenant.
func (s Samples) TenantCount(tenant string) int { return tenantCount(s[tenant]) }

// tenantCount counts the samples of one tenant's series -> timestamp map.
func tenantCount[V any](series map[string]map[int64]V) int {
	n := 0
	for _, ts := range series {
		n += len(ts)
	}
	return n
}

// Histograms holds every native histogram sample of a bucket the way
// Samples holds floats: tenant -> series -> timestamp -> histogram.
type Histograms map[string]map[string]map[int64]Histogram

// Histogram is one native histogram sample as a block holds it: H for an
// integer histogram, FH for a float one; the other is nil.
type Histogram struct {
	H  *histogram.Histogram
	FH *histogram.FloatHistogram
}

// Equal tells whether h and o are the same histogram of the same kind.
// Counter reset hints are not compared: the chunk encoding sets its own.
func (h Histogram) Equal(o Histogram) bool {
	if (h.H == nil) != (o.H == nil) || (h.FH == nil) != (o.FH == nil) {
		return false
	}
	if h.H != nil {
		return h.H.Equals(o.H)
	}
	return h.FH == nil || h.FH.Equals(o.FH)
}

func (h Histogram) String() string {
	switch {
	case h.H != nil:
		return "integer " + h.H.String()
	case h.FH != nil:
		return "float " + h.FH.String()
	}
	return "none"
}

// TenantCount is the number of distinct histogram samples of one tenant.
func (h Histograms) TenantCount(tenant string) int { return tenantCount(h[tenant]) }

// BucketContents is what ReadBucket found in a bucket.
type BucketContents struct {
	Samples    Samples
	Histograms Histograms
	Blocks     []BlockInfo
	// Replicas holds each replica's float samples apart (replica label
	// value -> its Samples), to check that every replica is complete.
	Replicas map[string]Samples
}

// BlockInfo is a block found in a bucket with its replica and tenant.
type BlockInfo struct {
	Meta    *metadata.Meta
	Tenant  string
	Replica string
}

// BucketSamples is ReadBucket for tests that look at float samples only.
func BucketSamples(t testing.TB, bkt objstore.Bucket, tenantLabel, replicaLabel string) (Samples, []BlockInfo) {
	t.Helper()
	c := ReadBucket(t, bkt, tenantLabel, replicaLabel)
	return c.Samples, c.Blocks
}

// ReadBucket downloads every complete block (one with a meta.json) of bkt,
// opens it with the real TSDB block reader and returns all its float and
// native histogram samples, grouped by the tenant label of its meta.json.
// A sample stored twice in the blocks of one replica with different values
// fails the test.
func ReadBucket(t testing.TB, bkt objstore.Bucket, tenantLabel, replicaLabel string) BucketContents {
	t.Helper()
	ctx := context.Background()
	var ids []ulid.ULID
	err := bkt.Iter(ctx, "", func(name string) error {
		id, err := ulid.Parse(strings.TrimSuffix(name, "/"))
		if err == nil {
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("list bucket: %v", err)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].Compare(ids[j]) < 0 })
	out := BucketContents{Samples: Samples{}, Histograms: Histograms{}, Replicas: map[string]Samples{}}
	tmp := t.TempDir()
	for _, id := range ids {
		meta, err := metadata.ReadMetaFromBucket(ctx, bkt, id)
		if err != nil {
			continue // partial upload: no meta.json yet
		}
		info := BlockInfo{Meta: meta, Tenant: meta.Thanos.Labels[tenantLabel], Replica: meta.Thanos.Labels[replicaLabel]}
		out.Blocks = append(out.Blocks, info)
		dir := filepath.Join(tmp, id.String())
		if err := downloadBlock(ctx, bkt, id.String(), dir); err != nil {
			t.Fatalf("download block %s: %v", id, err)
		}
		if err := readBlock(dir, &out, info.Tenant); err != nil {
			t.Fatalf("read block %s (tenant %s, replica %s): %v", id, info.Tenant, info.Replica, err)
		}
		if out.Replicas[info.Replica] == nil {
			out.Replicas[info.Replica] = Samples{}
		}
		replica := BucketContents{Samples: out.Replicas[info.Replica], Histograms: Histograms{}}
		if err := readBlock(dir, &replica, info.Tenant); err != nil {
			t.Fatalf("read block %s (tenant %s, replica %s): %v", id, info.Tenant, info.Replica, err)
		}
	}
	return out
}

func downloadBlock(ctx context.Context, bkt objstore.Bucket, id, dir string) error {
	return bkt.Iter(ctx, id+"/", func(name string) error {
		dst := filepath.Join(dir, filepath.FromSlash(strings.TrimPrefix(name, id+"/")))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return objstore.DownloadFile(ctx, log.NewNopLogger(), bkt, name, dst)
	}, objstore.WithRecursiveIter())
}

// readBlock adds every sample of the block in dir to out's maps for
// tenant.
func readBlock(dir string, out *BucketContents, tenant string) error {
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
	if out.Samples[tenant] == nil {
		out.Samples[tenant] = map[string]map[int64]float64{}
	}
	if out.Histograms[tenant] == nil {
		out.Histograms[tenant] = map[string]map[int64]Histogram{}
	}
	set := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+"))
	for set.Next() {
		s := set.At()
		key := s.Labels().String()
		it := s.Iterator(nil)
		for typ := it.Next(); typ != chunkenc.ValNone; typ = it.Next() {
			if typ == chunkenc.ValFloat {
				ts, v := it.At()
				m := out.Samples[tenant][key]
				if m == nil {
					m = map[int64]float64{}
					out.Samples[tenant][key] = m
				}
				if old, ok := m[ts]; ok && old != v && !(math.IsNaN(old) && math.IsNaN(v)) {
					return fmt.Errorf("series %s at %d: %v in one block, %v in another", key, ts, old, v)
				}
				m[ts] = v
				continue
			}
			// The iterator reuses what it is given: nil gets a copy.
			var ts int64
			var h Histogram
			switch typ {
			case chunkenc.ValHistogram:
				ts, h.H = it.AtHistogram(nil)
			case chunkenc.ValFloatHistogram:
				ts, h.FH = it.AtFloatHistogram(nil)
			default:
				return fmt.Errorf("series %s: unknown sample type %v", key, typ)
			}
			m := out.Histograms[tenant][key]
			if m == nil {
				m = map[int64]Histogram{}
				out.Histograms[tenant][key] = m
			}
			if old, ok := m[ts]; ok && !old.Equal(h) {
				return fmt.Errorf("series %s at %d: %v in one block, %v in another", key, ts, old, h)
			}
			m[ts] = h
		}
		if err := it.Err(); err != nil {
			return err
		}
	}
	return set.Err()
}

// BlockPath is the object name of a file of a block.
func BlockPath(id ulid.ULID, file string) string { return path.Join(id.String(), file) }

// QuerierSamples reads every float sample q selects with ms (every series
// when none are given) by series (labels as a string) and timestamp: the
// samples of a TSDB, head and blocks, as a query sees them. It closes q.
func QuerierSamples(t testing.TB, q storage.Querier, ms ...*labels.Matcher) map[string]map[int64]float64 {
	t.Helper()
	defer q.Close()
	if len(ms) == 0 {
		ms = []*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+")}
	}
	out := map[string]map[int64]float64{}
	set := q.Select(context.Background(), false, nil, ms...)
	for set.Next() {
		s := set.At()
		m := map[int64]float64{}
		it := s.Iterator(nil)
		for it.Next() == chunkenc.ValFloat {
			ts, v := it.At()
			m[ts] = v
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		out[s.Labels().String()] = m
	}
	if err := set.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
