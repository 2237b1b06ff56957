// `strata bucket inspect ULID`: one block's meta.json, files and index.

package browse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/thanos-io/objstore"

	"github.com/stratametrics/strata/bucket/metadata"
)

// ErrNoBlock is returned (wrapped) by Inspect for a ULID that has no
// object in the bucket.
var ErrNoBlock = errors.New("no such block")

// Inspection is what Inspect finds about a block.
type Inspection struct {
	ULID string `json:"ulid"`
	// Block is the block as ls shows it; nil without meta.json.
	Block *Row `json:"block,omitempty"`
	// Meta is the meta.json; nil when the block has none (a partial
	// upload), MetaError then says why.
	Meta      *metadata.Meta `json:"meta,omitempty"`
	MetaError string         `json:"metaError,omitempty"`
	// Files are the block's objects and the files meta.json lists.
	Files []FileInfo `json:"files"`
	// Index is nil when the index could not be read; IndexError says why.
	Index      *IndexStats `json:"index,omitempty"`
	IndexError string      `json:"indexError,omitempty"`
}

// FileInfo is one file of a block.
type FileInfo struct {
	// Path is relative to the block directory: chunks/000001, index, ...
	Path string `json:"path"`
	// MetaSizeBytes is the size meta.json lists; -1 when it does not
	// list the file.
	MetaSizeBytes int64 `json:"metaSizeBytes"`
	// SizeBytes is the object's size in the bucket; -1 when the object is
	// missing.
	SizeBytes    int64     `json:"sizeBytes"`
	LastModified time.Time `json:"lastModified,omitzero"`
}

// Status says whether the object matches meta.json: ok, missing,
// size differs, or not listed.
func (f FileInfo) Status() string {
	switch {
	case f.SizeBytes < 0:
		return "MISSING from the bucket"
	case f.Path == metadata.MetaFilename:
		return "ok"
	case f.MetaSizeBytes < 0:
		return "not in meta.json"
	case f.MetaSizeBytes != f.SizeBytes:
		return fmt.Sprintf("SIZE DIFFERS: meta.json says %d", f.MetaSizeBytes)
	}
	return "ok"
}

// InspectOptions configure Inspect.
type InspectOptions struct {
	// Top is how many label names and pairs to rank; default 10.
	Top int
	// TempDir receives the index while it is read; "" is os.TempDir().
	TempDir string
	// SkipIndex leaves the index alone (no download).
	SkipIndex bool
}

// Inspect reads a block's meta.json, the size of each of its objects and,
// unless opts.SkipIndex, label statistics of its index. The index is
// downloaded to a temporary file and mapped, never read into the heap;
// memory holds the top entries only. A block without meta.json is still
// inspected: its files and index say how far its upload got.
func (b *Browser) Inspect(ctx context.Context, id ulid.ULID, opts InspectOptions) (*Inspection, error) {
	if opts.Top <= 0 {
		opts.Top = 10
	}
	in := &Inspection{ULID: id.String()}
	meta, err := metadata.ReadMetaFromBucket(ctx, b.bkt, id)
	switch {
	case err == nil:
		in.Meta = meta
		row := RowOf(b.NewBlock(meta))
		in.Block = &row
	case errors.Is(err, metadata.ErrNotFound):
		in.MetaError = "no meta.json: a partial upload, or one in progress"
	default:
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		in.MetaError = err.Error()
	}
	files, err := b.blockFiles(ctx, id, meta)
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("block %s: %w in %s", id, ErrNoBlock, b.name)
	}
	in.Files = files
	if opts.SkipIndex {
		return in, nil
	}
	i := slices.IndexFunc(files, func(f FileInfo) bool { return f.Path == "index" })
	if i < 0 || files[i].SizeBytes < 0 {
		in.IndexError = "the block has no index object"
		return in, nil
	}
	bs, done, err := downloadIndex(ctx, b.bkt, objectName(id, "index"), opts.TempDir)
	if err != nil {
		in.IndexError = err.Error()
		return in, nil
	}
	defer done()
	if in.Index, err = analyzeIndex(bs, opts.Top); err != nil {
		in.IndexError = err.Error()
	}
	return in, nil
}

// blockFiles lists a block's objects with their sizes, merged with the
// files meta.json lists (which may name files the bucket lacks).
func (b *Browser) blockFiles(ctx context.Context, id ulid.ULID, meta *metadata.Meta) ([]FileInfo, error) {
	prefix := id.String() + objstore.DirDelim
	var names []string
	err := b.bkt.Iter(ctx, prefix, func(name string) error {
		names = append(names, strings.TrimPrefix(name, prefix))
		return nil
	}, objstore.WithRecursiveIter())
	if err != nil {
		return nil, fmt.Errorf("list block %s: %w", id, err)
	}
	byPath := map[string]*FileInfo{}
	var files []FileInfo
	for _, n := range names {
		files = append(files, FileInfo{Path: n, MetaSizeBytes: -1, SizeBytes: -1})
	}
	if meta != nil {
		for _, f := range meta.Thanos.Files {
			if !slices.Contains(names, f.RelPath) {
				files = append(files, FileInfo{Path: f.RelPath, MetaSizeBytes: -1, SizeBytes: -1})
			}
		}
	}
	for i := range files {
		byPath[files[i].Path] = &files[i]
	}
	if meta != nil {
		for _, f := range meta.Thanos.Files {
			byPath[f.RelPath].MetaSizeBytes = f.SizeBytes
		}
	}
	if err := b.statFiles(ctx, id, files); err != nil {
		return nil, err
	}
	slices.SortFunc(files, func(a, b FileInfo) int { return strings.Compare(a.Path, b.Path) })
	return files, nil
}

// statFiles fills SizeBytes and LastModified of files, Concurrency at a
// time; a missing object keeps -1.
func (b *Browser) statFiles(ctx context.Context, id ulid.ULID, files []FileInfo) error {
	sem := make(chan struct{}, b.cfg.Concurrency)
	errs := make(chan error, len(files))
	for i := range files {
		sem <- struct{}{}
		go func(f *FileInfo) {
			defer func() { <-sem }()
			attrs, err := b.bkt.Attributes(ctx, path.Join(id.String(), f.Path))
			switch {
			case err == nil:
				f.SizeBytes, f.LastModified = attrs.Size, attrs.LastModified.UTC()
			case b.bkt.IsObjNotFoundErr(err):
			default:
				errs <- fmt.Errorf("stat %s/%s: %w", id, f.Path, err)
			}
		}(&files[i])
	}
	for range cap(sem) {
		sem <- struct{}{}
	}
	close(errs)
	return <-errs
}

// WriteText writes the inspection for people.
func (in *Inspection) WriteText(w io.Writer, cfg Config) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format, args...) }
	p("BLOCK %s\n", in.ULID)
	if in.Meta == nil {
		p("  meta.json:\t%s\n", in.MetaError)
	} else {
		m, r := in.Meta, in.Block
		p("  tenant:\t%s\n", orNone(r.Tenant, cfg.TenantLabel))
		p("  replica:\t%s\n", orNone(r.Replica, cfg.ReplicaLabel))
		p("  labels:\t%s\n", FormatLabels(m.Thanos.Labels))
		p("  time range:\t%s to %s (%s; maxTime is exclusive)\n", r.From, r.Until, r.Range)
		p("  created:\t%s (from the ULID)\n", ulid.Time(m.ULID.Time()).UTC().Format(time.RFC3339))
		p("  series:\t%d\n", m.Stats.NumSeries)
		p("  samples:\t%d\n", m.Stats.NumSamples)
		if m.Stats.NumFloatSamples > 0 || m.Stats.NumHistogramSamples > 0 {
			p("  \t%d float, %d histogram\n", m.Stats.NumFloatSamples, m.Stats.NumHistogramSamples)
		}
		p("  chunks:\t%d\n", m.Stats.NumChunks)
		if m.Stats.NumTombstones > 0 {
			p("  tombstones:\t%d\n", m.Stats.NumTombstones)
		}
		p("  compaction:\tlevel %d, %s\n", m.Compaction.Level, plural(len(m.Compaction.Sources), "source block"))
		if m.Compaction.Level > 1 {
			srcs := make([]string, len(m.Compaction.Sources))
			for i, s := range m.Compaction.Sources {
				srcs[i] = s.String()
			}
			p("  sources:\t%s\n", strings.Join(srcs, " "))
		}
		res := "raw"
		if m.Thanos.Downsample.Resolution > 0 {
			res = (time.Duration(m.Thanos.Downsample.Resolution) * time.Millisecond).String()
		}
		p("  resolution:\t%s\n", res)
		p("  source:\t%s\n", m.Thanos.Source)
		p("  meta versions:\ttsdb %d, thanos %d\n", m.Version, max(m.Thanos.Version, 1))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintf(w, "\nFILES\n")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "PATH\tSIZE\tBYTES\tSTATUS\n")
	var total int64
	for _, f := range in.Files {
		size, bytes := "-", "-"
		if f.SizeBytes >= 0 {
			size, bytes = FormatBytes(f.SizeBytes), strconv.FormatInt(f.SizeBytes, 10)
			total += f.SizeBytes
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.Path, size, bytes, f.Status())
	}
	fmt.Fprintf(tw, "total\t%s\t%d\t\n", FormatBytes(total), total)
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintf(w, "\nINDEX\n")
	if in.Index == nil {
		_, err := fmt.Fprintf(w, "  not read: %s\n", in.IndexError)
		return err
	}
	ix := in.Index
	fmt.Fprintf(w, "  format v%d, %s, %d series, %d label names, %d label pairs\n", ix.Version, FormatBytes(ix.SizeBytes), ix.Series, ix.LabelNames, ix.LabelPairs)
	fmt.Fprintf(w, "\nTOP LABEL NAMES BY SERIES\n")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "NAME\tSERIES\tVALUES\n")
	for _, n := range ix.TopNames {
		fmt.Fprintf(tw, "%s\t%d\t%d\n", n.Name, n.Series, n.Values)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nTOP LABEL PAIRS BY SERIES\n")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "PAIR\tSERIES\n")
	for _, pr := range ix.TopPairs {
		fmt.Fprintf(tw, "%s=%s\t%d\n", pr.Name, strconv.Quote(pr.Value), pr.Series)
	}
	return tw.Flush()
}
