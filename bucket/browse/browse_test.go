package browse

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/thanos-io/objstore/providers/filesystem"

	"github.com/stratametrics/strata/bucket"
	"github.com/stratametrics/strata/bucket/metadata"
)

func TestParseTime(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
		err  bool
	}{
		{in: "", want: time.Time{}},
		{in: "now", want: now},
		{in: "-2h", want: now.Add(-2 * time.Hour)},
		{in: "-90m", want: now.Add(-90 * time.Minute)},
		{in: "-7d", want: now.Add(-7 * 24 * time.Hour)},
		{in: "-2w", want: now.Add(-14 * 24 * time.Hour)},
		{in: "+1h30m", want: now.Add(90 * time.Minute)},
		{in: "2025-02-01T10:00:00Z", want: time.Date(2025, 2, 1, 10, 0, 0, 0, time.UTC)},
		{in: "2025-02-01T10:00:00.5+01:00", want: time.Date(2025, 2, 1, 9, 0, 0, 5e8, time.UTC)},
		{in: "2025-02-01", want: time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC)},
		{in: "2025-02-01T10:30", want: time.Date(2025, 2, 1, 10, 30, 0, 0, time.UTC)},
		{in: "yesterday", err: true},
		{in: "-1.5d", err: true},
		{in: "--2h", err: true},
		{in: "-", err: true},
	} {
		got, err := ParseTime(tc.in, now)
		if (err != nil) != tc.err || (!tc.err && !got.Equal(tc.want)) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v (error %v)", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		2 * time.Hour:                           "2h",
		90 * time.Minute:                        "1h30m",
		time.Hour + time.Second:                 "1h0m1s",
		59*time.Minute + 59999*time.Millisecond: "59m59.999s",
		0:                                       "0s",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

// TestDirListerPages checks the paged directory listing against a plain
// sorted listing, across page boundaries and with things that are not
// blocks in the directory.
func TestDirListerPages(t *testing.T) {
	dir := t.TempDir()
	var want []ulid.ULID
	for i := 0; i < 57; i++ {
		id := ulid.MustNew(uint64(1700000000000+rand.IntN(1e9)), ulid.DefaultEntropy())
		want = append(want, id)
		if err := os.Mkdir(filepath.Join(dir, id.String()), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	slices.SortFunc(want, ulid.ULID.Compare)
	for _, junk := range []string{"debug", strings.ToLower(want[0].String())} {
		os.Mkdir(filepath.Join(dir, junk), 0o755)
	}
	os.WriteFile(filepath.Join(dir, ulid.Make().String()), []byte("a file, not a block"), 0o644)
	for _, size := range []int{1, 10, 57, 100} {
		var got []ulid.ULID
		err := dirLister{dir: dir, pageSize: size}.list(context.Background(), func(id ulid.ULID) error {
			got = append(got, id)
			return nil
		})
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("page size %d: %v, %d ids; want the %d in order", size, err, len(got), len(want))
		}
	}
	var got []ulid.ULID
	if err := (dirLister{dir: filepath.Join(dir, "absent"), pageSize: 10}).list(context.Background(), func(id ulid.ULID) error {
		got = append(got, id)
		return nil
	}); err != nil || got != nil {
		t.Errorf("absent directory: %v %v", got, err)
	}
}

func TestSpillKeepsGroupOrder(t *testing.T) {
	sp, err := newSpill(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	chains := make([]spillChain, 7)
	want := make([][]string, len(chains))
	for i := 0; i < 1000; i++ {
		g := rand.IntN(len(chains))
		cells := []string{fmt.Sprint(i), strings.Repeat("x", rand.IntN(300)), ""}
		want[g] = append(want[g], strings.Join(cells, "|"))
		if err := sp.add(&chains[g], appendCells(nil, cells)); err != nil {
			t.Fatal(err)
		}
	}
	for g, c := range chains {
		var got []string
		cells := make([]string, 3)
		if err := sp.each(c, func(b []byte) error {
			if err := readCells(b, cells); err != nil {
				return err
			}
			got = append(got, strings.Join(cells, "|"))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want[g]) {
			t.Errorf("group %d: %d records back, want %d in order", g, len(got), len(want[g]))
		}
	}
}

func TestOverlaps(t *testing.T) {
	id := func(i int) ulid.ULID { return ulid.MustNew(uint64(i), bytes.NewReader(make([]byte, 16))) }
	for _, tc := range []struct {
		name  string
		spans []Span
		want  []string // kind:block:other
	}{
		{name: "adjacent blocks do not overlap", spans: []Span{{ID: id(1), MinTime: 0, MaxTime: 10}, {ID: id(2), MinTime: 10, MaxTime: 20}}},
		{name: "same range", spans: []Span{{ID: id(1), MinTime: 0, MaxTime: 10}, {ID: id(2), MinTime: 0, MaxTime: 10}},
			want: []string{KindOverlap + ":" + id(2).String() + ":" + id(1).String()}},
		{name: "long block covers later ones", spans: []Span{{ID: id(3), MinTime: 20, MaxTime: 30}, {ID: id(1), MinTime: 0, MaxTime: 100}, {ID: id(2), MinTime: 40, MaxTime: 50}},
			want: []string{KindOverlap + ":" + id(3).String() + ":" + id(1).String(), KindOverlap + ":" + id(2).String() + ":" + id(1).String()}},
		{name: "compacted block and its leftover source", spans: []Span{{ID: id(1), MinTime: 0, MaxTime: 10}, {ID: id(2), MinTime: 10, MaxTime: 20}, {ID: id(3), MinTime: 0, MaxTime: 20, Sources: []ulid.ULID{id(1), id(2)}}},
			want: []string{KindLeftoverSource + ":" + id(1).String() + ":" + id(3).String(), KindLeftoverSource + ":" + id(2).String() + ":" + id(3).String()}},
	} {
		var got []string
		for _, p := range Overlaps(tc.spans, "t", "r") {
			got = append(got, p.Kind+":"+p.Block+":"+p.Others[0])
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// writeMeta writes a small, valid meta.json for a synthetic bucket.
func writeMeta(t testing.TB, dir string, id ulid.ULID, tenant, replica string, minT int64) {
	m := metadata.Meta{
		BlockMeta: tsdb.BlockMeta{ULID: id, MinTime: minT, MaxTime: minT + 7200000, Version: metadata.TSDBVersion1,
			Stats:      tsdb.BlockStats{NumSeries: 100, NumSamples: 12000, NumChunks: 100},
			Compaction: tsdb.BlockMetaCompaction{Level: 1, Sources: []ulid.ULID{id}}},
		Thanos: metadata.Thanos{
			Labels: map[string]string{"tenant_id": tenant, "receive_replica": replica, "region": "eu-1"},
			Source: metadata.ReceiveSource,
			Files:  []metadata.File{{RelPath: "chunks/000001", SizeBytes: 4096}, {RelPath: "index", SizeBytes: 2048}, {RelPath: "meta.json"}},
		},
	}
	bdir := filepath.Join(dir, id.String())
	if err := os.Mkdir(bdir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bdir, metadata.MetaFilename), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// hookLister calls hook after every `every` blocks listed.
type hookLister struct {
	lister
	every int
	hook  func(n int)
}

func (h hookLister) list(ctx context.Context, fn func(ulid.ULID) error) error {
	n := 0
	return h.lister.list(ctx, func(id ulid.ULID) error {
		n++
		if n%h.every == 0 {
			h.hook(n)
		}
		return fn(id)
	})
}

func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestListMemoryIsBounded lists a synthetic filesystem bucket of 100,000
// blocks (60 tenant and replica groups) in every format and checks that
// the live heap, sampled every 10,000 blocks, stays within 1 MB of what
// it was before listing: far below what holding the blocks would take
// (their meta.json files decoded are some 90 MB, their ULIDs alone 1.6 MB)
// and with no growth from 10,000 blocks to 100,000.
func TestListMemoryIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 100,000 meta.json files")
	}
	const blocks = 100_000
	dir := memDir(t)
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	entropy := ulid.Monotonic(rand.NewChaCha8([32]byte{}), 0)
	for i := 0; i < blocks; i++ {
		id := ulid.MustNew(uint64(start+int64(i)*1000), entropy)
		writeMeta(t, dir, id, fmt.Sprintf("tenant-%02d", i%20), fmt.Sprintf("replica-%d", i%3), start+int64(i/60)*7200000)
	}
	cfg := DefaultConfig()
	cfg.Bucket = bucket.Config{Dir: dir}
	br, closeBucket, err := Open(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeBucket()

	// The window of metas, a directory page (at most 20,000 ULIDs, 320
	// kB) and the output buffer fit in 1 MB; keeping even 16 bytes per
	// block would not.
	const slack = 1 << 20
	for _, format := range []Format{FormatJSON, FormatCSV, FormatTable, FormatWide} {
		var at10k, peak uint64
		br.lister = hookLister{lister: dirLister{dir: dir, pageSize: dirPageSize}, every: 10_000, hook: func(n int) {
			h := liveHeap()
			if n == 10_000 {
				at10k = h
			}
			peak = max(peak, h)
		}}
		out := &countingWriter{}
		before := liveHeap()
		sum, err := br.List(context.Background(), out, ListOptions{Format: format, TempDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		if sum.Blocks != blocks || sum.Groups != 60 {
			t.Fatalf("%s: listed %d blocks in %d groups, want %d in 60", format, sum.Blocks, sum.Groups, blocks)
		}
		t.Logf("%s: live heap %.2f MB before, %.2f MB after 10,000 blocks, at most %.2f MB up to 100,000; %.1f MB written",
			format, float64(before)/1e6, float64(at10k)/1e6, float64(peak)/1e6, float64(out.n)/1e6)
		if peak > before+slack {
			t.Errorf("%s: listing holds %d bytes more than before it started (%d after 10,000 blocks)", format, peak-before, at10k-min(at10k, before))
		}
	}
}

// memDir is a temporary directory in memory (/dev/shm) where there is
// one: writing and removing 200,000 files and directories takes minutes
// on a busy disk and seconds there.
func memDir(t *testing.T) string {
	dir, err := os.MkdirTemp("/dev/shm", "strata-browse-test-*")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// TestListFormats checks the output formats on a small synthetic bucket.
func TestListFormats(t *testing.T) {
	dir := t.TempDir()
	ids := []ulid.ULID{}
	for i, g := range [][2]string{{"b", "r1"}, {"a", "r2"}, {"a", "r1"}, {"a", "r1"}} {
		id := ulid.MustNew(uint64(1700000000000+i), ulid.DefaultEntropy())
		ids = append(ids, id)
		writeMeta(t, dir, id, g[0], g[1], 1700000000000+int64(i)*7200000)
	}
	os.MkdirAll(filepath.Join(dir, ulid.Make().String(), "chunks"), 0o755)
	os.WriteFile(filepath.Join(dir, ulid.Make().String()+"x"), nil, 0o644)
	bkt, err := filesystem.NewBucket(dir)
	if err != nil {
		t.Fatal(err)
	}
	br := New(bkt, DefaultConfig())
	var buf bytes.Buffer
	if _, err := br.List(context.Background(), &buf, ListOptions{Format: FormatTable, TempDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	ia, ib := strings.Index(out, "TENANT a  REPLICA r1  2 blocks"), strings.Index(out, "TENANT b  REPLICA r1  1 block")
	if ia < 0 || ib < ia || strings.Index(out, ids[2].String()) > strings.Index(out, ids[3].String()) {
		t.Errorf("table not grouped by tenant and replica in ULID order:\n%s", out)
	}
	buf.Reset()
	if _, err := br.List(context.Background(), &buf, ListOptions{Format: FormatJSON, Filter: Filter{Tenant: "a", Replica: "r1"}}); err != nil {
		t.Fatal(err)
	}
	var rows []Row
	if err := json.Unmarshal(buf.Bytes(), &rows); err != nil || len(rows) != 2 || rows[0].ULID != ids[2].String() || rows[1].SizeBytes != 6144 {
		t.Errorf("json: %v %+v\n%s", err, rows, buf.String())
	}
	buf.Reset()
	if _, err := br.List(context.Background(), &buf, ListOptions{Format: FormatJSON, Filter: Filter{Tenant: "nobody"}}); err != nil || buf.String() != "[]\n" {
		t.Errorf("empty json: %v %q", err, buf.String())
	}
	buf.Reset()
	sum, err := br.List(context.Background(), io.Discard, ListOptions{Format: FormatCSV})
	if err != nil || sum.Blocks != 4 || sum.Partial != 1 {
		t.Errorf("csv summary %+v, %v; want 4 blocks and 1 directory without meta.json", sum, err)
	}
}
