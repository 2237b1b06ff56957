// Package metadata is a block's meta.json as Thanos reads and writes it:
// Prometheus' tsdb.BlockMeta plus the "thanos" section (external labels,
// downsampling resolution, source, file sizes).
//
// The JSON must stay byte-compatible with Thanos' pkg/block/metadata/meta.go
// (Thanos v0.42): Store Gateway, Compactor and `thanos tools bucket` read
// these files. Field names and omitempty flags below mirror Thanos',
// including its quirks (see IndexStats); meta_test.go pins them.
package metadata

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/thanos-io/objstore"

	"github.com/stratametrics/strata/internal/fsutil"
)

const (
	// MetaFilename is the name of the block's meta file, in a block
	// directory and as the last object of a block in the bucket.
	MetaFilename = "meta.json"
	// TSDBVersion1 is the only meta.json "version" Thanos reads.
	TSDBVersion1 = 1
	// ThanosVersion1 is the only "thanos.version" Thanos reads (0, absent,
	// is read as 1).
	ThanosVersion1 = 1
)

// Sources of a block (thanos.source), as Thanos names them.
const (
	ReceiveSource   = "receive"
	SidecarSource   = "sidecar"
	CompactorSource = "compactor"
)

// ErrNotFound is returned (wrapped) by ReadMeta and ReadMetaFromBucket when
// the block has no meta.json: locally, a block still being written; in a
// bucket, a partial upload that readers must ignore.
var ErrNotFound = errors.New("meta.json not found")

// Meta is a block's meta.json: Prometheus' block meta (ulid, minTime,
// maxTime, stats, compaction, version) and the Thanos section.
type Meta struct {
	tsdb.BlockMeta

	Thanos Thanos `json:"thanos"`
}

// Thanos is the "thanos" section. What Thanos needs to serve a block:
// Labels (its external labels: which stream it belongs to, and the
// Compactor's grouping key together with Downsample.Resolution), and
// Downsample.Resolution (0 for raw data). Source, Files and the rest are
// informational or optimisations; Files saves Store Gateway and Compactor
// a request per object to learn sizes.
type Thanos struct {
	// Version of the section; 0 (omitted) is read as 1.
	Version int `json:"version,omitempty"`

	// Labels are the external labels identifying the producer (tenant,
	// replica, ...). Thanos refuses to upload a block without them.
	Labels     map[string]string `json:"labels"`
	Downsample Downsample        `json:"downsample"`

	// Source is the component that uploaded the block, e.g. "receive".
	Source string `json:"source"`

	// SegmentFiles are the names of the files in chunks/, sorted.
	// Deprecated in Thanos in favour of Files, but still written by its
	// shipper.
	SegmentFiles []string `json:"segment_files,omitempty"`

	// Files lists every file of the block, sorted by relative path, with
	// its size (meta.json itself has none).
	Files []File `json:"files,omitempty"`

	// Rewrites records `thanos tools bucket rewrite` runs. Strata never
	// writes it; it is kept raw so metas written by Thanos round-trip.
	Rewrites []Rewrite `json:"rewrites,omitempty"`

	// IndexStats is filled by the Thanos Compactor. Thanos declares it as
	// a struct with omitempty, which encoding/json does not omit, so a
	// Thanos meta.json always has "index_stats": {}; so does ours.
	IndexStats IndexStats `json:"index_stats,omitempty"`

	// Extensions is free-form data of downstream projects.
	Extensions any `json:"extensions,omitempty"`
}

// Downsample is thanos.downsample.
type Downsample struct {
	// Resolution in milliseconds; 0 is raw data.
	Resolution int64 `json:"resolution"`
}

// File is one entry of thanos.files.
type File struct {
	// RelPath is relative to the block directory, e.g. "chunks/000001".
	RelPath string `json:"rel_path"`
	// SizeBytes is the file's size; omitted for meta.json.
	SizeBytes int64 `json:"size_bytes,omitempty"`
	// Hash is optional; Thanos uses it to skip downloading files it has.
	Hash *ObjectHash `json:"hash,omitempty"`
}

// ObjectHash is the optional hash of a file.
type ObjectHash struct {
	Func  string `json:"hashFunc"`
	Value string `json:"value"`
}

// IndexStats describes the index, for Store Gateway's fetch sizing.
type IndexStats struct {
	SeriesMaxSize   int64 `json:"series_max_size,omitempty"`
	SeriesP90Size   int64 `json:"series_p90_size,omitempty"`
	SeriesP99Size   int64 `json:"series_p99_size,omitempty"`
	SeriesP999Size  int64 `json:"series_p999_size,omitempty"`
	SeriesP9999Size int64 `json:"series_p99999_size,omitempty"` // sic: Thanos' tag.
	ChunkMaxSize    int64 `json:"chunk_max_size,omitempty"`
}

// Rewrite is one entry of thanos.rewrites. Deletions and relabels are kept
// as raw JSON: Strata only carries them through.
type Rewrite struct {
	Sources          []ulid.ULID       `json:"sources,omitempty"`
	DeletionsApplied []json.RawMessage `json:"deletions_applied,omitempty"`
	RelabelsApplied  []json.RawMessage `json:"relabels_applied,omitempty"`
}

// String identifies the block in logs.
func (m *Meta) String() string {
	return fmt.Sprintf("%s (min time: %d, max time: %d)", m.ULID, m.MinTime, m.MaxTime)
}

// Encode returns the meta.json bytes, formatted as Thanos formats them
// (tab indentation, trailing newline).
func (m *Meta) Encode() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "\t")
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("encode meta.json of block %s: %w", m.ULID, err)
	}
	return buf.Bytes(), nil
}

// Decode reads a meta.json and checks its versions as Thanos does.
func Decode(r io.Reader) (*Meta, error) {
	var m Meta
	if err := json.NewDecoder(r).Decode(&m); err != nil {
		return nil, fmt.Errorf("decode meta.json: %w", err)
	}
	if m.Version != TSDBVersion1 {
		return nil, fmt.Errorf("meta.json of block %s: unexpected version %d", m.ULID, m.Version)
	}
	if v := m.Thanos.Version; v != 0 && v != ThanosVersion1 {
		return nil, fmt.Errorf("meta.json of block %s: unexpected thanos section version %d", m.ULID, v)
	}
	if m.Thanos.Labels == nil {
		// Like Thanos: callers may index the map without a nil check.
		m.Thanos.Labels = map[string]string{}
	}
	return &m, nil
}

// ReadMeta reads <dir>/meta.json, dir being a block directory.
func ReadMeta(dir string) (*Meta, error) {
	f, err := os.Open(filepath.Join(dir, MetaFilename))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w", dir, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read meta.json: %w", err)
	}
	defer f.Close()
	m, err := Decode(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", f.Name(), err)
	}
	return m, nil
}

// Write writes <dir>/meta.json atomically: a crash leaves either the old
// file or the new one, never a torn one (temporary file, fsync, rename,
// fsync of the directory).
func (m *Meta) Write(dir string) error {
	b, err := m.Encode()
	if err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(dir, MetaFilename), b); err != nil {
		return fmt.Errorf("write meta.json of block %s: %w", m.ULID, err)
	}
	return nil
}

// ReadMetaFromBucket reads <id>/meta.json from the bucket. A missing object
// is reported as ErrNotFound.
func ReadMetaFromBucket(ctx context.Context, bkt objstore.BucketReader, id ulid.ULID) (*Meta, error) {
	name := path.Join(id.String(), MetaFilename)
	rc, err := bkt.Get(ctx, name)
	if err != nil {
		if bkt.IsObjNotFoundErr(err) {
			return nil, fmt.Errorf("read %s: %w", name, ErrNotFound)
		}
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	defer rc.Close()
	m, err := Decode(rc)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if m.ULID != id {
		return nil, fmt.Errorf("read %s: meta.json names block %s", name, m.ULID)
	}
	return m, nil
}
