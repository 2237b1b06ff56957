package metadata

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/thanos-io/objstore"
)

// The golden files are written by hand from Thanos'
// pkg/block/metadata/meta.go (Thanos v0.42): the field names, their order
// (struct order, as encoding/json writes them), omitempty behaviour (note
// "index_stats": {} always present) and the tab indentation of
// Meta.Write. receive-meta.json is what Strata's shipper uploads;
// thanos-compactor-meta.json carries every optional field a Thanos
// Compactor may add.

func receiveMeta() *Meta {
	id := ulid.MustParse("01JD6Y4V4Q6XJ4Z2W3N5T8R9KM")
	return &Meta{
		BlockMeta: tsdb.BlockMeta{
			ULID:    id,
			MinTime: 1732500000000,
			MaxTime: 1732507200000,
			Stats:   tsdb.BlockStats{NumSamples: 14400, NumFloatSamples: 14400, NumSeries: 20, NumChunks: 120},
			Compaction: tsdb.BlockMetaCompaction{
				Level:   1,
				Sources: []ulid.ULID{id},
			},
			Version: TSDBVersion1,
		},
		Thanos: Thanos{
			Version:      ThanosVersion1,
			Labels:       map[string]string{"tenant_id": "default-tenant", "receive_replica": "bb-0"},
			Downsample:   Downsample{Resolution: 0},
			Source:       ReceiveSource,
			SegmentFiles: []string{"000001"},
			Files: []File{
				{RelPath: "chunks/000001", SizeBytes: 3523},
				{RelPath: "index", SizeBytes: 2170},
				{RelPath: "meta.json"},
				{RelPath: "tombstones", SizeBytes: 9},
			},
		},
	}
}

func TestWriteMatchesThanosGolden(t *testing.T) {
	golden, err := os.ReadFile("testdata/receive-meta.json")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := receiveMeta().Write(dir); err != nil {
		t.Fatal(err)
	}
	written, err := os.ReadFile(filepath.Join(dir, MetaFilename))
	if err != nil {
		t.Fatal(err)
	}

	// Field by field first, for a readable failure.
	var want, got any
	if err := json.Unmarshal(golden, &want); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(written, &got); err != nil {
		t.Fatal(err)
	}
	for _, d := range diffJSON("", want, got) {
		t.Error(d)
	}
	// Then the bytes: the same layout as Thanos' encoder.
	if !bytes.Equal(written, golden) {
		t.Errorf("meta.json differs from golden in formatting:\n%s", written)
	}
	if _, err := os.Stat(filepath.Join(dir, MetaFilename+".tmp")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file left behind: %v", err)
	}

	// And it reads back to the same value.
	m, err := ReadMeta(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m, receiveMeta()) {
		t.Errorf("ReadMeta = %+v\nwant %+v", m, receiveMeta())
	}
}

// A meta.json written by Thanos, with every optional field, survives a
// read and a write unchanged: Strata's tools never drop what Thanos put.
func TestThanosMetaRoundTrip(t *testing.T) {
	golden, err := os.ReadFile("testdata/thanos-compactor-meta.json")
	if err != nil {
		t.Fatal(err)
	}
	m, err := Decode(bytes.NewReader(golden))
	if err != nil {
		t.Fatal(err)
	}
	if m.Thanos.IndexStats.SeriesMaxSize != 512 || len(m.Thanos.Rewrites) != 1 || m.Thanos.Files[0].Hash == nil {
		t.Fatalf("optional fields not decoded: %+v", m.Thanos)
	}
	out, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	var want, got any
	json.Unmarshal(golden, &want)
	json.Unmarshal(out, &got)
	for _, d := range diffJSON("", want, got) {
		t.Error(d)
	}
	if !bytes.Equal(out, golden) {
		t.Errorf("re-encoded meta.json differs:\n%s", out)
	}
}

func TestDecodeChecksVersions(t *testing.T) {
	for _, tc := range []struct {
		name, json, wantErr string
	}{
		{"tsdb version 2", `{"ulid":"01JD6Y4V4Q6XJ4Z2W3N5T8R9KM","version":2,"thanos":{}}`, "unexpected version 2"},
		{"thanos version 2", `{"ulid":"01JD6Y4V4Q6XJ4Z2W3N5T8R9KM","version":1,"thanos":{"version":2}}`, "unexpected thanos section version 2"},
		{"not json", `{`, "decode meta.json"},
		{"prometheus meta (no thanos section)", `{"ulid":"01JD6Y4V4Q6XJ4Z2W3N5T8R9KM","version":1}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Decode(strings.NewReader(tc.json))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if m.Thanos.Labels == nil {
					t.Fatal("Labels is nil; Decode must allocate it like Thanos")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Decode = %v, want error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestReadMetaMissing(t *testing.T) {
	if _, err := ReadMeta(t.TempDir()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ReadMeta of an empty dir = %v, want ErrNotFound", err)
	}
}

func TestWriteReplaces(t *testing.T) {
	dir := t.TempDir()
	m := receiveMeta()
	if err := m.Write(dir); err != nil {
		t.Fatal(err)
	}
	m.Thanos.Labels["tenant_id"] = "other"
	if err := m.Write(dir); err != nil {
		t.Fatal(err)
	}
	got, err := ReadMeta(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.Thanos.Labels["tenant_id"] != "other" {
		t.Fatalf("second Write not visible: %v", got.Thanos.Labels)
	}
}

func TestReadMetaFromBucket(t *testing.T) {
	ctx := context.Background()
	bkt := objstore.NewInMemBucket()
	m := receiveMeta()
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	bkt.Upload(ctx, m.ULID.String()+"/meta.json", bytes.NewReader(b))

	got, err := ReadMetaFromBucket(ctx, bkt, m.ULID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Fatalf("got %+v\nwant %+v", got, m)
	}

	other := ulid.MustParse("01JD6Y4V4Q6XJ4Z2W3N5T8R9KN")
	if _, err := ReadMetaFromBucket(ctx, bkt, other); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing meta: %v, want ErrNotFound", err)
	}
	// A meta.json under the wrong block's prefix is not that block's.
	bkt.Upload(ctx, other.String()+"/meta.json", bytes.NewReader(b))
	if _, err := ReadMetaFromBucket(ctx, bkt, other); err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("misplaced meta: %v, want a mismatch error", err)
	}
}

// diffJSON lists the differences between two decoded JSON values, by path.
func diffJSON(path string, want, got any) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: got %v, want an object", path, got)}
		}
		var diffs []string
		keys := map[string]bool{}
		for k := range w {
			keys[k] = true
		}
		for k := range g {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			wv, inW := w[k]
			gv, inG := g[k]
			switch {
			case !inG:
				diffs = append(diffs, fmt.Sprintf("%s.%s: missing, want %v", path, k, wv))
			case !inW:
				diffs = append(diffs, fmt.Sprintf("%s.%s: unexpected field = %v", path, k, gv))
			default:
				diffs = append(diffs, diffJSON(path+"."+k, wv, gv)...)
			}
		}
		return diffs
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return []string{fmt.Sprintf("%s: got %v, want %v", path, got, want)}
		}
		var diffs []string
		for i := range w {
			diffs = append(diffs, diffJSON(fmt.Sprintf("%s[%d]", path, i), w[i], g[i])...)
		}
		return diffs
	default:
		if !reflect.DeepEqual(want, got) {
			return []string{fmt.Sprintf("%s: got %v, want %v", path, got, want)}
		}
		return nil
	}
}
