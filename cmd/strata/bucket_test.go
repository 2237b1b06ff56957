package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/prompb"
	"github.com/thanos-io/objstore"

	"github.com/stratametrics/strata/blockbuilder"
	"github.com/stratametrics/strata/blockbuilder/shipper"
	"github.com/stratametrics/strata/bucket/browse"
	"github.com/stratametrics/strata/bucket/metadata"
	"github.com/stratametrics/strata/internal/harness"
)

// bucketFixture is a real S3 server whose bucket real block builders
// filled over real HTTP.
type bucketFixture struct {
	t   *testing.T
	s3  *harness.S3
	bkt objstore.Bucket
	// now anchors the samples' timestamps.
	now time.Time
}

func newBucketFixture(t *testing.T) *bucketFixture {
	t.Helper()
	s3 := harness.StartS3(t)
	bkt, err := s3.BucketConfig().Open(context.Background(), nil, nil, "bucket-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bkt.Close() })
	// The samples (the ten minutes before now) must fall in one 2h block
	// window, so that a block builder cuts one block of each tenant: near
	// the start of a window they end just before it instead.
	now := time.Now()
	if start := now.Truncate(2 * time.Hour); now.Sub(start) < 15*time.Minute {
		now = start.Add(-time.Minute)
	}
	return &bucketFixture{t: t, s3: s3, bkt: bkt, now: now}
}

// testBlockBuilder is a block builder in this process, served by httptest.
type testBlockBuilder struct {
	bb  *blockbuilder.BlockBuilder
	url string
	// dataDir is its STRATA_DATA_DIR.
	dataDir string
	// stop stops it as SIGTERM would (a final flush); the test's end
	// calls it too.
	stop func()
}

// blockBuilder starts a block builder with replica name replica writing to
// the fixture's bucket; it stops when the test ends.
func (f *bucketFixture) blockBuilder(replica string) *testBlockBuilder {
	f.t.Helper()
	return f.blockBuilderIn(replica, f.t.TempDir())
}

// blockBuilderIn is blockBuilder on the data directory dataDir, for a
// block builder that starts again where a stopped one left off.
func (f *bucketFixture) blockBuilderIn(replica, dataDir string) *testBlockBuilder {
	t := f.t
	t.Helper()
	cfg := blockbuilder.DefaultConfig()
	cfg.DataDir = dataDir
	cfg.ReplicaName = replica
	cfg.Bucket = f.s3.BucketConfig()
	bkt, err := cfg.Bucket.Open(context.Background(), nil, nil, "blockbuilder-"+replica)
	if err != nil {
		t.Fatal(err)
	}
	bb, err := blockbuilder.New(cfg, bkt, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := bb.Open(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- bb.Run(ctx) }()
	srv := httptest.NewServer(bb.Handler())
	stop := sync.OnceFunc(func() {
		srv.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("block builder %s: %v", replica, err)
		}
		bkt.Close()
	})
	t.Cleanup(stop)
	return &testBlockBuilder{bb: bb, url: srv.URL + "/api/v1/receive", dataDir: dataDir, stop: stop}
}

// write sends remote-write 1.0 for tenant: series series with samples
// one per minute over the ten minutes before the fixture's now.
func (f *bucketFixture) write(b *testBlockBuilder, tenant string, series int) {
	t := f.t
	t.Helper()
	req := &prompb.WriteRequest{}
	for i := 0; i < series; i++ {
		ts := prompb.TimeSeries{Labels: []prompb.Label{
			{Name: "__name__", Value: "http_requests_total"},
			{Name: "instance", Value: fmt.Sprintf("host-%d", i)},
			{Name: "job", Value: "api"},
		}}
		for m := 10; m >= 1; m-- {
			ts.Samples = append(ts.Samples, prompb.Sample{Value: float64(i * m), Timestamp: f.now.Add(-time.Duration(m) * time.Minute).UnixMilli()})
		}
		req.Timeseries = append(req.Timeseries, ts)
	}
	remoteWrite(t, b.url, http.Header{"THANOS-TENANT": {tenant}}, req)
}

// remoteWrite sends req as remote-write 1.0 to url with the headers h,
// failing the test unless it is accepted.
func remoteWrite(t *testing.T, url string, h http.Header, req *prompb.WriteRequest) {
	t.Helper()
	if resp, body := harness.PostWrite(t, nil, url, h, req); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("remote-write to %s with %v: %s: %s", url, h, resp.Status, body)
	}
}

func (f *bucketFixture) flush(bbs ...*testBlockBuilder) {
	f.t.Helper()
	for _, b := range bbs {
		if err := b.bb.Flush(context.Background()); err != nil {
			f.t.Fatalf("flush: %v", err)
		}
	}
}

// blocks reads the complete blocks back with the harness's own reader,
// which opens each block with TSDB: the reference ls must agree with.
func (f *bucketFixture) blocks() []harness.BlockInfo {
	f.t.Helper()
	_, infos := harness.BucketSamples(f.t, f.bkt, "tenant_id", "receive_replica")
	return infos
}

// partialUpload copies the chunks and index of block src to a new ULID
// without meta.json, as an uploader that died before its last object
// leaves it.
func (f *bucketFixture) partialUpload(src ulid.ULID) ulid.ULID {
	t := f.t
	t.Helper()
	ctx := context.Background()
	id := ulid.Make()
	err := f.bkt.Iter(ctx, src.String()+"/", func(name string) error {
		rel := strings.TrimPrefix(name, src.String()+"/")
		if rel == metadata.MetaFilename {
			return nil
		}
		rc, err := f.bkt.Get(ctx, name)
		if err != nil {
			return err
		}
		defer rc.Close()
		return f.bkt.Upload(ctx, harness.BlockPath(id, rel), rc)
	}, objstore.WithRecursiveIter())
	if err != nil {
		t.Fatalf("copy block %s to %s: %v", src, id, err)
	}
	return id
}

// age sets the modification time of every object of block id, as the S3
// server reports it, to d ago: the server keeps objects as files.
func (f *bucketFixture) age(id ulid.ULID, d time.Duration) {
	t := f.t
	t.Helper()
	old := time.Now().Add(-d)
	root := filepath.Join(f.s3.Dir, f.s3.Bucket, id.String())
	err := filepath.WalkDir(root, func(p string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		return os.Chtimes(p, old, old)
	})
	if err != nil {
		t.Fatalf("age block %s: %v", id, err)
	}
}

// setEnv points the strata process environment at the fixture's bucket.
func (f *bucketFixture) setEnv() {
	for _, kv := range f.s3.Env() {
		k, v, _ := strings.Cut(kv, "=")
		f.t.Setenv(k, v)
	}
	for _, k := range []string{"STRATA_OBJSTORE_CONFIG_FILE", "STRATA_BUCKET_DIR", "STRATA_TENANT_LABEL", "STRATA_REPLICA_LABEL", "STRATA_BUCKET_CONCURRENCY"} {
		f.t.Setenv(k, "")
		os.Unsetenv(k)
	}
}

// strata runs the strata command line in this process and returns its
// exit code, stdout and stderr.
func strata(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func mustStrata(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := strata(args...)
	if code != 0 {
		t.Fatalf("strata %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func idsOf(infos []harness.BlockInfo, keep func(harness.BlockInfo) bool) []string {
	var ids []string
	for _, b := range infos {
		if keep == nil || keep(b) {
			ids = append(ids, b.Meta.ULID.String())
		}
	}
	slices.Sort(ids)
	return ids
}

// TestBucketCommands fills a real S3 bucket with two tenants through two
// real block builders and checks ls, inspect and verify against what
// TSDB reads back from it.
func TestBucketCommands(t *testing.T) {
	f := newBucketFixture(t)
	bb0, bb1 := f.blockBuilder("bb-0"), f.blockBuilder("bb-1")
	f.write(bb0, "team-a", 5)
	f.write(bb1, "team-a", 5)
	f.write(bb0, "team-b", 3)
	f.flush(bb0, bb1)
	infos := f.blocks()
	groups := map[[2]string]int{}
	for _, b := range infos {
		groups[[2]string{b.Tenant, b.Replica}]++
	}
	if len(groups) != 3 || groups[[2]string{"team-b", "bb-1"}] != 0 {
		t.Fatalf("block builders wrote %v, want blocks of team-a/bb-0, team-a/bb-1 and team-b/bb-0", groups)
	}
	f.setEnv()

	t.Run("ls json", func(t *testing.T) {
		var rows []browse.Row
		if err := json.Unmarshal([]byte(mustStrata(t, "bucket", "ls", "-o", "json")), &rows); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range rows {
			got = append(got, r.ULID)
			i := slices.IndexFunc(infos, func(b harness.BlockInfo) bool { return b.Meta.ULID.String() == r.ULID })
			if i < 0 {
				t.Errorf("ls lists %s, which TSDB does not read", r.ULID)
				continue
			}
			m := infos[i].Meta
			if r.Tenant != infos[i].Tenant || r.Replica != infos[i].Replica || r.Series != m.Stats.NumSeries || r.Samples != m.Stats.NumSamples ||
				r.MinTime != m.MinTime || r.MaxTime != m.MaxTime || r.Source != "receive" || r.SizeBytes <= 0 || r.Labels["tenant_id"] != r.Tenant {
				t.Errorf("ls row %+v does not match meta.json %+v", r, m)
			}
		}
		if !slices.IsSorted(got) {
			t.Errorf("ls -o json is not in ULID order: %v", got)
		}
		slices.Sort(got)
		if want := idsOf(infos, nil); !slices.Equal(got, want) {
			t.Errorf("ls -o json lists %v, want %v", got, want)
		}
	})

	t.Run("ls table", func(t *testing.T) {
		out := mustStrata(t, "bucket", "ls")
		heads := []string{"TENANT team-a  REPLICA bb-0", "TENANT team-a  REPLICA bb-1", "TENANT team-b  REPLICA bb-0"}
		last := -1
		for _, h := range heads {
			i := strings.Index(out, h)
			if i < 0 || i < last {
				t.Errorf("table lacks %q in order:\n%s", h, out)
			}
			last = i
		}
		for _, id := range idsOf(infos, nil) {
			if !strings.Contains(out, id) {
				t.Errorf("table lacks block %s:\n%s", id, out)
			}
		}
		for _, col := range []string{"ULID", "FROM", "UNTIL", "RANGE", "SERIES", "SAMPLES", "SIZE"} {
			if !strings.Contains(out, col) {
				t.Errorf("table lacks column %s", col)
			}
		}
		wide := mustStrata(t, "bucket", "ls", "-o", "wide")
		for _, col := range []string{"CHUNKS", "LEVEL", "SOURCE", "LABELS", "receive"} {
			if !strings.Contains(wide, col) {
				t.Errorf("wide table lacks %s:\n%s", col, wide)
			}
		}
	})

	t.Run("ls filters", func(t *testing.T) {
		out := mustStrata(t, "bucket", "ls", "--tenant", "team-b", "-o", "csv")
		recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(recs[0], browse.CSVHeader) {
			t.Errorf("csv header %v", recs[0])
		}
		var got []string
		for _, r := range recs[1:] {
			got = append(got, r[2])
		}
		slices.Sort(got)
		if want := idsOf(infos, func(b harness.BlockInfo) bool { return b.Tenant == "team-b" }); !slices.Equal(got, want) {
			t.Errorf("--tenant team-b lists %v, want %v", got, want)
		}
		// The samples are from the last ten minutes.
		for _, tc := range []struct {
			args []string
			all  bool
		}{
			{[]string{"--from", "-1h"}, true},
			{[]string{"--from", f.now.Add(-30 * time.Minute).UTC().Format(time.RFC3339), "--until", "now"}, true},
			// Blocks start at most one block duration (2h) before their
			// samples.
			{[]string{"--until", "-3h"}, false},
			{[]string{"--from", "+1h"}, false},
		} {
			out := mustStrata(t, append([]string{"bucket", "ls"}, tc.args...)...)
			for _, id := range idsOf(infos, nil) {
				if strings.Contains(out, id) != tc.all {
					t.Errorf("ls %v: block %s listed: %v, want %v\n%s", tc.args, id, !tc.all, tc.all, out)
				}
			}
			if !tc.all && !strings.Contains(out, "No blocks.") {
				t.Errorf("ls %v: want No blocks.:\n%s", tc.args, out)
			}
		}
	})

	t.Run("usage errors", func(t *testing.T) {
		for _, args := range [][]string{
			{"bucket", "ls", "-o", "yaml"},
			{"bucket", "ls", "--from", "yesterday-ish"},
			{"bucket", "ls", "--from", "now", "--until", "-1h"},
			{"bucket", "inspect", "not-a-ulid"},
			{"bucket", "inspect"},
			{"bucket", "frobnicate"},
			{"bucket", "ls", "--tenant-label", "x", "--replica-label", "x"},
		} {
			if code, _, errOut := strata(args...); code != 2 || errOut == "" {
				t.Errorf("strata %v: exit %d, stderr %q; want 2 and a message", args, code, errOut)
			}
		}
	})

	t.Run("inspect", func(t *testing.T) {
		i := slices.IndexFunc(infos, func(b harness.BlockInfo) bool { return b.Tenant == "team-a" })
		m := infos[i].Meta
		out := mustStrata(t, "bucket", "inspect", m.ULID.String(), "--top", "5")
		for _, want := range []string{
			"BLOCK " + m.ULID.String(), "tenant:", "team-a", "replica:", "bb-0",
			"chunks/000001", "index", "meta.json", "TOP LABEL NAMES BY SERIES", "TOP LABEL PAIRS BY SERIES", `job="api"`,
		} {
			if !strings.Contains(out, want) {
				t.Errorf("inspect lacks %q:\n%s", want, out)
			}
		}
		if !regexp.MustCompile(fmt.Sprintf(`series:\s+%d\n`, m.Stats.NumSeries)).MatchString(out) {
			t.Errorf("inspect does not say %d series:\n%s", m.Stats.NumSeries, out)
		}
		var in browse.Inspection
		if err := json.Unmarshal([]byte(mustStrata(t, "bucket", "inspect", "-o", "json", m.ULID.String())), &in); err != nil {
			t.Fatal(err)
		}
		if in.Index == nil || in.Index.Series != m.Stats.NumSeries {
			t.Fatalf("inspect index %+v (%s), want %d series", in.Index, in.IndexError, m.Stats.NumSeries)
		}
		names := map[string]browse.NameStat{}
		for _, n := range in.Index.TopNames {
			names[n.Name] = n
		}
		if n := names["instance"]; n.Series != m.Stats.NumSeries || n.Values != int(m.Stats.NumSeries) {
			t.Errorf("instance label: %+v, want %d series and values", n, m.Stats.NumSeries)
		}
		if n := names["__name__"]; n.Series != m.Stats.NumSeries || n.Values != 1 {
			t.Errorf("__name__ label: %+v, want %d series, 1 value", n, m.Stats.NumSeries)
		}
		if p := in.Index.TopPairs[0]; p.Series != m.Stats.NumSeries {
			t.Errorf("top pair %+v, want one in all %d series", p, m.Stats.NumSeries)
		}
		for _, fi := range in.Files {
			if fi.Status() != "ok" {
				t.Errorf("file %+v: %s", fi, fi.Status())
			}
		}
		if code, _, errOut := strata("bucket", "inspect", ulid.Make().String()); code != 1 || !strings.Contains(errOut, "no such block") {
			t.Errorf("inspect of an unknown block: exit %d, %q", code, errOut)
		}
	})

	t.Run("verify clean", func(t *testing.T) {
		code, out, errOut := strata("bucket", "verify", "--full")
		if code != 0 || !strings.Contains(out, "no problems") || strings.Contains(out, "ERROR") || strings.Contains(out, "WARNING") {
			t.Fatalf("verify of a clean bucket: exit %d\n%s%s", code, out, errOut)
		}
		if want := fmt.Sprintf("Checked %d blocks of 2 tenants", len(infos)); !strings.Contains(out, want) {
			t.Errorf("verify says %q, want %q", out, want)
		}
	})

	// A fresh upload without meta.json is one in progress: a warning, and
	// once old, a dead upload: an error.
	t.Run("partial upload ages", func(t *testing.T) {
		id := f.partialUpload(infos[0].Meta.ULID)
		code, out, _ := strata("bucket", "verify")
		if code != 0 || !strings.Contains(out, "WARNING upload-in-progress "+id.String()) {
			t.Fatalf("verify with a fresh partial upload: exit %d, want 0 and a warning:\n%s", code, out)
		}
		f.age(id, 3*time.Hour)
		code, out, _ = strata("bucket", "verify")
		if code != 1 || !strings.Contains(out, "ERROR partial-upload "+id.String()) || !strings.Contains(out, "ago (older than 2h)") {
			t.Fatalf("verify with a 3h old partial upload: exit %d, want 1 and an error:\n%s", code, out)
		}
		// ls lists complete blocks only and says what it left out.
		code, out, errOut := strata("bucket", "ls")
		if code != 0 || strings.Contains(out, id.String()) || !strings.Contains(errOut, id.String()) {
			t.Errorf("ls with a partial upload: exit %d\n%s\n%s", code, out, errOut)
		}
		// Deleting it, as verify says, makes the bucket clean again.
		if err := f.bkt.Iter(context.Background(), id.String()+"/", func(name string) error {
			return f.bkt.Delete(context.Background(), name)
		}, objstore.WithRecursiveIter()); err != nil {
			t.Fatal(err)
		}
		if out := mustStrata(t, "bucket", "verify"); !strings.Contains(out, "no problems") {
			t.Errorf("verify after deleting the partial upload:\n%s", out)
		}
	})
}

// TestBucketVerifyProblems breaks a bucket written by real block builders
// the ways buckets break and checks verify names each problem.
func TestBucketVerifyProblems(t *testing.T) {
	f := newBucketFixture(t)
	bb0, bb1 := f.blockBuilder("bb-0"), f.blockBuilder("bb-1")
	f.write(bb0, "team-a", 4)
	f.write(bb1, "team-b", 4)
	f.flush(bb0, bb1)
	// A second block builder with bb-0's replica name writes the same
	// tenant over the same time: its blocks overlap bb-0's.
	twin := f.blockBuilder("bb-0")
	f.write(twin, "team-a", 4)
	f.flush(twin)
	infos := f.blocks()
	teamA := idsOf(infos, func(b harness.BlockInfo) bool { return b.Tenant == "team-a" })
	teamB := idsOf(infos, func(b harness.BlockInfo) bool { return b.Tenant == "team-b" })
	if len(teamA) < 2 || len(teamB) < 1 {
		t.Fatalf("blocks: team-a %v, team-b %v", teamA, teamB)
	}
	partial := f.partialUpload(ulid.MustParse(teamB[0]))
	f.age(partial, 3*time.Hour)
	// A block whose chunks went missing after upload.
	damaged := ulid.MustParse(teamB[0])
	if err := f.bkt.Delete(context.Background(), harness.BlockPath(damaged, "chunks/000001")); err != nil {
		t.Fatal(err)
	}
	f.setEnv()

	code, out, errOut := strata("bucket", "verify")
	if code != 1 || !strings.Contains(errOut, "errors in") {
		t.Errorf("verify: exit %d, stderr %q; want 1", code, errOut)
	}
	for _, want := range []string{
		"ERROR partial-upload " + partial.String(),
		"ERROR missing-file " + damaged.String(),
		"meta.json lists chunks/000001",
		"ERROR overlap ",
		"tenant team-a, replica bb-0",
		"STRATA_REPLICA_NAME",
		"uploader died mid-upload",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("verify output lacks %q:\n%s", want, out)
		}
	}
	problems := 0
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "ERROR ") || strings.HasPrefix(l, "WARNING ") {
			problems++
		}
	}
	for _, line := range []string{"  found:  ", "  means:  ", "  do:     "} {
		if strings.Count(out, line) != problems {
			t.Errorf("every problem must say what was found, what it means and what to do (%q):\n%s", line, out)
		}
	}

	code, out, _ = strata("bucket", "verify", "-o", "json")
	var res struct {
		Report   browse.VerifyReport `json:"report"`
		Problems []browse.Problem    `json:"problems"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 1 {
		t.Fatalf("verify -o json: exit %d, %v\n%s", code, err, out)
	}
	kinds := map[string][]browse.Problem{}
	for _, p := range res.Problems {
		kinds[p.Kind] = append(kinds[p.Kind], p)
	}
	if ps := kinds[browse.KindOverlap]; len(ps) != 1 || ps[0].Tenant != "team-a" || ps[0].Replica != "bb-0" ||
		!slices.Contains(teamA, ps[0].Block) || !slices.Contains(teamA, ps[0].Others[0]) {
		t.Errorf("overlaps %+v, want one between blocks of %v", ps, teamA)
	}
	if ps := kinds[browse.KindPartialUpload]; len(ps) != 1 || ps[0].Block != partial.String() {
		t.Errorf("partial uploads %+v, want %s", ps, partial)
	}
	if ps := kinds[browse.KindMissingFile]; len(ps) != 1 || ps[0].Block != damaged.String() {
		t.Errorf("missing files %+v, want in %s", ps, damaged)
	}
	if res.Report.Errors != len(res.Problems) || res.Report.Partial != 1 || res.Report.Blocks != len(infos) {
		t.Errorf("report %+v with %d problems and %d blocks", res.Report, len(res.Problems), len(infos))
	}
}

// TestBucketVerifyDamagedBlocks damages blocks a real block builder
// uploaded the ways objects go bad after upload: a chunks file cut short,
// an index overwritten, an index with one series damaged, a meta.json
// that no longer parses. Verify must report each as an error of its kind
// that says what it means and what to do; doing what it says must leave
// a bucket that verifies clean, with every block back.
func TestBucketVerifyDamagedBlocks(t *testing.T) {
	f := newBucketFixture(t)
	bb := f.blockBuilder("bb-0")
	tenants := []string{"team-a", "team-b", "team-c", "team-d"}
	for _, tenant := range tenants {
		f.write(bb, tenant, 4)
	}
	f.flush(bb)
	block := map[string]ulid.ULID{}
	for _, b := range f.blocks() {
		if _, dup := block[b.Tenant]; dup {
			t.Fatalf("tenant %s has more than one block", b.Tenant)
		}
		block[b.Tenant] = b.Meta.ULID
	}
	if len(block) != len(tenants) {
		t.Fatalf("blocks by tenant %v, want one for each of %v", block, tenants)
	}
	f.setEnv()
	// The bucket is clean before the damage, so every problem below is
	// the damage's.
	if out := mustStrata(t, "bucket", "verify", "--full"); !strings.Contains(out, "no problems") {
		t.Fatalf("verify before any damage:\n%s", out)
	}

	ctx := context.Background()
	get := func(id ulid.ULID, rel string) []byte {
		t.Helper()
		rc, err := f.bkt.Get(ctx, harness.BlockPath(id, rel))
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	put := func(id ulid.ULID, rel string, data []byte) {
		t.Helper()
		if err := f.bkt.Upload(ctx, harness.BlockPath(id, rel), bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
	}
	// localCopy is the file as the block builder keeps it, where the
	// damaged-block action says it is.
	localCopy := func(tenant, rel string) []byte {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(bb.dataDir, tenant, block[tenant].String(), filepath.FromSlash(rel)))
		if err != nil {
			t.Fatalf("the block builder's copy of %s of %s: %v", rel, tenant, err)
		}
		return b
	}

	// team-a: a chunks file cut short, as by an upload whose end was lost.
	chunks := get(block["team-a"], "chunks/000001")
	put(block["team-a"], "chunks/000001", chunks[:len(chunks)/2])
	// team-b: an index overwritten with as many zero bytes, so only its
	// content, not its size, gives it away.
	index := get(block["team-b"], "index")
	put(block["team-b"], "index", make([]byte, len(index)))
	// team-c: one byte of its first series flipped. Header and table of
	// contents are intact, so only --full, which reads every series,
	// finds it. The table of contents is the index's last 52 bytes: six
	// big-endian section offsets (symbols, series, ...) and a CRC32;
	// series start 16-byte aligned in their section.
	index = get(block["team-c"], "index")
	toc := index[len(index)-52:]
	series := (binary.BigEndian.Uint64(toc[8:16]) + 15) / 16 * 16
	index[series+1] ^= 0xff
	put(block["team-c"], "index", index)
	// team-d: meta.json cut short.
	meta := get(block["team-d"], metadata.MetaFilename)
	put(block["team-d"], metadata.MetaFilename, meta[:len(meta)/2])

	type want struct {
		kind  string
		found []string
	}
	damage := map[string]want{
		"team-a": {browse.KindSizeMismatch, []string{fmt.Sprintf("chunks/000001 is %d bytes in the bucket, meta.json says %d", len(chunks)/2, len(chunks))}},
		"team-b": {browse.KindUnreadableIndex, []string{"bad magic number", "not a TSDB index"}},
		"team-c": {browse.KindUnreadableIndex, []string{"series", "checksum"}},
		"team-d": {browse.KindUnreadableMeta, []string{block["team-d"].String() + "/meta.json"}},
	}
	// What each problem must tell the person reading it, by tenant: what
	// it means for queries and what to do, naming this block's place on
	// the block builder.
	const damaged = "Store Gateway cannot load it"
	advice := map[string][]string{
		"team-a": {damaged, "STRATA_DATA_DIR/team-a/" + block["team-a"].String() + "/", "copy the file from there into the bucket"},
		"team-b": {damaged, "STRATA_DATA_DIR/team-b/" + block["team-b"].String() + "/", "copy the file from there into the bucket"},
		"team-c": {damaged, "STRATA_DATA_DIR/team-c/" + block["team-c"].String() + "/", "copy the file from there into the bucket"},
		"team-d": {"Readers cannot tell what the block holds", "strata bucket inspect " + block["team-d"].String(),
			"delete " + block["team-d"].String() + "/ from the bucket", shipper.LedgerFilename},
	}

	for _, tc := range []struct {
		args  []string
		found []string // the damaged tenants verify finds
	}{
		{[]string{"bucket", "verify"}, []string{"team-a", "team-b", "team-d"}},
		{[]string{"bucket", "verify", "--full"}, []string{"team-a", "team-b", "team-c", "team-d"}},
	} {
		t.Run(strings.Join(tc.args[1:], " "), func(t *testing.T) {
			code, out, errOut := strata(tc.args...)
			if code != 1 || !strings.Contains(errOut, fmt.Sprintf("%d errors in", len(tc.found))) {
				t.Errorf("exit %d, stderr %q; want 1 and %d errors", code, errOut, len(tc.found))
			}
			for _, tenant := range tc.found {
				w := damage[tenant]
				if !strings.Contains(out, "ERROR "+w.kind+" "+block[tenant].String()) {
					t.Errorf("no %s error for %s's block %s:\n%s", w.kind, tenant, block[tenant], out)
				}
			}

			code, out, _ = strata(append(tc.args, "-o", "json")...)
			var res struct {
				Report   browse.VerifyReport `json:"report"`
				Problems []browse.Problem    `json:"problems"`
			}
			if err := json.Unmarshal([]byte(out), &res); err != nil || code != 1 {
				t.Fatalf("-o json: exit %d, %v\n%s", code, err, out)
			}
			byBlock := map[string]browse.Problem{}
			for _, p := range res.Problems {
				if _, dup := byBlock[p.Block]; dup {
					t.Errorf("more than one problem for block %s: %+v", p.Block, res.Problems)
				}
				byBlock[p.Block] = p
			}
			if len(res.Problems) != len(tc.found) || res.Report.Errors != len(tc.found) {
				t.Errorf("%d problems, report %+v; want %d errors: %+v", len(res.Problems), res.Report, len(tc.found), res.Problems)
			}
			for _, tenant := range tc.found {
				p, ok := byBlock[block[tenant].String()]
				w := damage[tenant]
				if !ok || p.Kind != w.kind || p.Severity != browse.SeverityError {
					t.Errorf("%s's block: problem %+v, want an error of kind %s", tenant, p, w.kind)
					continue
				}
				// meta.json names the tenant; without it, verify cannot.
				if wantTenant := map[bool]string{true: tenant}[w.kind != browse.KindUnreadableMeta]; p.Tenant != wantTenant {
					t.Errorf("%s's block: problem names tenant %q, want %q", tenant, p.Tenant, wantTenant)
				}
				for _, s := range w.found {
					if !strings.Contains(p.Found, s) {
						t.Errorf("%s's block: found %q lacks %q", tenant, p.Found, s)
					}
				}
				for _, s := range advice[tenant] {
					if !strings.Contains(p.Meaning+" "+p.Action, s) {
						t.Errorf("%s's block: meaning and action lack %q:\n  means: %s\n  do:    %s", tenant, s, p.Meaning, p.Action)
					}
				}
			}
		})
	}

	// Do what verify says. The damaged data files: copy the block
	// builder's copy into the bucket.
	put(block["team-a"], "chunks/000001", localCopy("team-a", "chunks/000001"))
	put(block["team-b"], "index", localCopy("team-b", "index"))
	put(block["team-c"], "index", localCopy("team-c", "index"))

	// The unreadable meta.json: inspect shows what the block still has.
	d := block["team-d"].String()
	out := mustStrata(t, "bucket", "inspect", d)
	for _, s := range []string{"chunks/000001", "index", "meta.json"} {
		if !strings.Contains(out, s) {
			t.Errorf("inspect of the block with a broken meta.json lacks %s:\n%s", s, out)
		}
	}
	// The block builder's meta.json is not one to put back, as verify
	// says: it has no external labels.
	local, err := metadata.ReadMeta(filepath.Join(bb.dataDir, "team-d", d))
	if err != nil {
		t.Fatal(err)
	}
	if len(local.Thanos.Labels) != 0 {
		t.Errorf("the block builder's meta.json has external labels %v; verify says it has none", local.Thanos.Labels)
	}
	// Delete the block from the bucket, stop the block builder, delete
	// its ledger, start it: it uploads the block again.
	if err := f.bkt.Iter(ctx, d+"/", func(name string) error { return f.bkt.Delete(ctx, name) }, objstore.WithRecursiveIter()); err != nil {
		t.Fatal(err)
	}
	bb.stop()
	if err := os.Remove(filepath.Join(bb.dataDir, "team-d", shipper.LedgerFilename)); err != nil {
		t.Fatal(err)
	}
	f.flush(f.blockBuilderIn("bb-0", bb.dataDir))

	if code, out, errOut := strata("bucket", "verify", "--full"); code != 0 || !strings.Contains(out, "no problems") {
		t.Fatalf("verify --full after the repairs: exit %d\n%s%s", code, out, errOut)
	}
	after := map[string]ulid.ULID{}
	for _, b := range f.blocks() {
		after[b.Tenant] = b.Meta.ULID
	}
	if !maps.Equal(after, block) {
		t.Errorf("blocks by tenant after the repairs %v, want those before the damage %v", after, block)
	}
}
