// `strata bucket verify`: what is broken in the bucket, what it means and
// what to do about it.

package browse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/thanos-io/objstore"

	"github.com/stratametrics/strata/bucket/metadata"
)

// Severity of a problem: errors make verify fail, warnings do not.
type Severity string

const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
)

// Kinds of problems verify finds.
const (
	KindPartialUpload    = "partial-upload"
	KindUploadInProgress = "upload-in-progress"
	KindUnreadableMeta   = "unreadable-meta"
	KindMissingFile      = "missing-file"
	KindSizeMismatch     = "size-mismatch"
	KindUnreadableIndex  = "unreadable-index"
	KindOverlap          = "overlap"
	KindLeftoverSource   = "compacted-source-left"
)

// DeletionMarkFilename is the marker Thanos writes into a block directory
// it is about to delete; such blocks are expected to overlap others.
const DeletionMarkFilename = "deletion-mark.json"

// Problem is one finding of Verify.
type Problem struct {
	Kind     string   `json:"kind"`
	Severity Severity `json:"severity"`
	Block    string   `json:"block"`
	// Others are further blocks involved (the other side of an overlap).
	Others  []string `json:"others,omitempty"`
	Tenant  string   `json:"tenant,omitempty"`
	Replica string   `json:"replica,omitempty"`
	// Found is what was seen, Meaning what it means for readers of the
	// bucket, Action what to do.
	Found   string `json:"found"`
	Meaning string `json:"meaning"`
	Action  string `json:"action"`
}

// VerifyOptions configure Verify.
type VerifyOptions struct {
	// PartialAge is the age after which a block without meta.json is an
	// error (a dead upload) rather than a warning (one in progress or
	// being retried). Default 2h.
	PartialAge time.Duration
	// FullIndex reads every series of every index (downloading each);
	// otherwise only the header and table of contents are read.
	FullIndex bool
	// TempDir receives indexes for FullIndex; "" is os.TempDir().
	TempDir string
	// Now is the time ages are measured to; zero means time.Now().
	Now time.Time
}

// VerifyReport counts what Verify checked and found.
type VerifyReport struct {
	Blocks   int `json:"blocks"`
	Tenants  int `json:"tenants"`
	Partial  int `json:"partialUploads"`
	Errors   int `json:"errors"`
	Warnings int `json:"warnings"`
}

// Span is what overlap detection keeps of a block: 56 bytes, plus the
// sources of compacted blocks.
type Span struct {
	ID               ulid.ULID
	MinTime, MaxTime int64
	// Sources are the compaction sources of a compacted block (level
	// above 1), nil otherwise.
	Sources []ulid.ULID
}

// SpanOf is the Span of a block.
func SpanOf(m *metadata.Meta) Span {
	s := Span{ID: m.ULID, MinTime: m.MinTime, MaxTime: m.MaxTime}
	if m.Compaction.Level > 1 {
		s.Sources = m.Compaction.Sources
	}
	return s
}

// StreamKey is the stream a block belongs to for overlap checks: its
// external labels (tenant, replica and the rest) and resolution, as the
// Thanos Compactor groups blocks.
func StreamKey(m *metadata.Meta) string {
	return fmt.Sprintf("%s@%d", FormatLabels(m.Thanos.Labels), m.Thanos.Downsample.Resolution)
}

// blockCheck is the result of checking one block directory.
type blockCheck struct {
	problems []Problem
	partial  bool
	skip     bool // an empty directory: no object, nothing to say
	block    *Block
	deleted  bool // marked for deletion by Thanos
}

// Verify checks every block of the bucket and calls report for each
// problem, in ULID order (overlaps last). It checks, per block directory:
// that it has a readable meta.json (else it is a partial upload, an
// error once older than opts.PartialAge by its newest object, or by its
// ULID where the bucket gives no times); that every file meta.json lists
// exists with that size; that the index has a valid header and table of
// contents (every series with opts.FullIndex). Across blocks it finds
// blocks of one stream (same external labels and resolution: one tenant
// and replica) that overlap in time.
//
// Memory: blocks are checked Config.Concurrency at a time; overlap
// detection keeps a Span (56 bytes) per complete block, about 6 MB per
// 100,000 blocks, because overlapping blocks may be listed far apart.
func (b *Browser) Verify(ctx context.Context, opts VerifyOptions, report func(Problem) error) (VerifyReport, error) {
	if opts.PartialAge <= 0 {
		opts.PartialAge = 2 * time.Hour
	}
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	var rep VerifyReport
	emit := func(p Problem) error {
		if p.Severity == SeverityError {
			rep.Errors++
		} else {
			rep.Warnings++
		}
		return report(p)
	}
	type stream struct {
		tenant, replica string
		spans           []Span
	}
	streams := map[string]*stream{}
	tenants := map[string]struct{}{}
	err := ordered(ctx, b.cfg.Concurrency,
		func(ctx context.Context, next func(Entry) error) error { return b.Walk(ctx, next) },
		func(ctx context.Context, e Entry) blockCheck { return b.checkBlock(ctx, e, opts) },
		func(c blockCheck) error {
			if c.skip {
				return nil
			}
			if c.partial {
				rep.Partial++
			}
			if c.block != nil {
				rep.Blocks++
				tenants[c.block.Tenant] = struct{}{}
				if !c.deleted {
					k := StreamKey(c.block.Meta)
					s := streams[k]
					if s == nil {
						s = &stream{tenant: c.block.Tenant, replica: c.block.Replica}
						streams[k] = s
					}
					s.spans = append(s.spans, SpanOf(c.block.Meta))
				}
			}
			for _, p := range c.problems {
				if err := emit(p); err != nil {
					return err
				}
			}
			return nil
		})
	if err != nil {
		return rep, err
	}
	rep.Tenants = len(tenants)
	keys := make([]string, 0, len(streams))
	for k := range streams {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		s := streams[k]
		for _, p := range Overlaps(s.spans, s.tenant, s.replica) {
			if err := emit(p); err != nil {
				return rep, err
			}
		}
	}
	return rep, nil
}

// Overlaps finds blocks of one stream (see StreamKey) that overlap in
// time: sorted by start, each block is compared with the one reaching
// furthest so far. It sorts spans in place.
func Overlaps(spans []Span, tenant, replica string) []Problem {
	slices.SortFunc(spans, func(a, b Span) int {
		if a.MinTime != b.MinTime {
			if a.MinTime < b.MinTime {
				return -1
			}
			return 1
		}
		return a.ID.Compare(b.ID)
	})
	var out []Problem
	if len(spans) < 2 {
		return nil
	}
	reach := spans[0]
	for _, cur := range spans[1:] {
		if cur.MinTime < reach.MaxTime {
			out = append(out, overlapProblem(reach, cur, tenant, replica))
		}
		if cur.MaxTime > reach.MaxTime {
			reach = cur
		}
	}
	return out
}

func overlapProblem(a, b Span, tenant, replica string) Problem {
	by := time.Duration(min(a.MaxTime, b.MaxTime)-max(a.MinTime, b.MinTime)) * time.Millisecond
	found := fmt.Sprintf("%s [%s, %s) and %s [%s, %s) overlap by %s",
		a.ID, FormatTime(a.MinTime), FormatTime(a.MaxTime), b.ID, FormatTime(b.MinTime), FormatTime(b.MaxTime), FormatDuration(by))
	for _, pair := range [][2]Span{{a, b}, {b, a}} {
		big, small := pair[0], pair[1]
		if len(big.Sources) > 0 && containsAll(big.Sources, sourcesOf(small)) {
			return Problem{
				Kind: KindLeftoverSource, Severity: SeverityError, Block: small.ID.String(), Others: []string{big.ID.String()},
				Tenant: tenant, Replica: replica,
				Found:   fmt.Sprintf("%s is compacted into %s but still in the bucket, unmarked", small.ID, big.ID),
				Meaning: "The Compactor wrote the compacted block but stopped before marking its sources for deletion. Queries read those samples twice (deduplication hides it), and the Compactor halts on the overlap.",
				Action:  fmt.Sprintf("Mark the source for deletion (thanos tools bucket mark --id=%s --marker=deletion-mark.json --details=compacted) or delete its meta.json and then the rest of %s/.", small.ID, small.ID),
			}
		}
	}
	return Problem{
		Kind: KindOverlap, Severity: SeverityError, Block: b.ID.String(), Others: []string{a.ID.String()},
		Tenant: tenant, Replica: replica,
		Found:   found,
		Meaning: "Two blocks of one stream (the same tenant, replica and external labels) cover the same time. The Thanos Compactor halts on such overlaps unless vertical compaction is on, and where the blocks differ queries see both.",
		Action:  "Usual cause: two block builders running with the same STRATA_REPLICA_NAME; give each its own. With STRATA_OUT_OF_ORDER_WINDOW above 0 overlaps are expected: run the Compactor with --compact.enable-vertical-compaction. If the blocks hold the same samples (compare them with strata bucket inspect), delete the newer one, meta.json first.",
	}
}

func sourcesOf(s Span) []ulid.ULID {
	if len(s.Sources) > 0 {
		return s.Sources
	}
	return []ulid.ULID{s.ID}
}

func containsAll(set, sub []ulid.ULID) bool {
	for _, id := range sub {
		if !slices.Contains(set, id) {
			return false
		}
	}
	return true
}

// CheckPartial checks an entry without meta.json (Entry.Partial) as
// Verify does, for callers that found it by walking: a partial upload or
// an upload in progress. It returns false for an empty directory.
func (b *Browser) CheckPartial(ctx context.Context, e Entry, opts VerifyOptions) (Problem, bool) {
	if opts.PartialAge <= 0 {
		opts.PartialAge = 2 * time.Hour
	}
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	c := b.checkBlock(ctx, e, opts)
	if c.skip || len(c.problems) == 0 {
		return Problem{}, false
	}
	return c.problems[0], true
}

// checkBlock checks one block directory.
func (b *Browser) checkBlock(ctx context.Context, e Entry, opts VerifyOptions) blockCheck {
	var c blockCheck
	id := e.ID.String()
	if e.Err != nil {
		objs, err := b.blockObjects(ctx, e.ID)
		if err != nil {
			c.problems = append(c.problems, readProblem(id, "", "", err))
			return c
		}
		if len(objs) == 0 {
			c.skip = true
			return c
		}
		if !e.Partial() {
			c.problems = append(c.problems, Problem{
				Kind: KindUnreadableMeta, Severity: SeverityError, Block: id,
				Found:   e.Err.Error(),
				Meaning: "Readers cannot tell what the block holds: Store Gateway and Compactor skip it or stop on it, so its samples are missing from queries.",
				// The block builder's own copy of meta.json is no fix: it
				// lacks the thanos section (external labels, files), which
				// the shipper adds only to the uploaded one. The block
				// builder makes that again when it uploads the block anew,
				// which it does for a block missing from its ledger and
				// from the bucket.
				Action: fmt.Sprintf("Look at it with strata bucket inspect %s. If a block builder still has the block (it keeps uploaded blocks for STRATA_LOCAL_RETENTION, in STRATA_DATA_DIR/<tenant>/%s/), have it upload the block again: delete %s/ from the bucket, stop that block builder, delete STRATA_DATA_DIR/<tenant>/strata.shipper.json (its record of uploads; it checks the bucket again for every block it keeps) and start it. Do not copy the meta.json of its directory into the bucket: it lacks the block's external labels. Otherwise delete %s/.", id, id, id, id),
			})
			return c
		}
		c.partial = true
		c.problems = append(c.problems, partialProblem(e.ID, objs, opts))
		return c
	}
	bl := b.NewBlock(e.Meta)
	c.block = &bl
	objs, err := b.blockObjects(ctx, e.ID)
	if err != nil {
		c.problems = append(c.problems, readProblem(id, bl.Tenant, bl.Replica, err))
		return c
	}
	have := map[string]objectInfo{}
	for _, o := range objs {
		have[o.name] = o
	}
	_, c.deleted = have[DeletionMarkFilename]
	want := e.Meta.Thanos.Files
	if len(want) == 0 {
		// Metas of old Thanos versions list no files: at least the index
		// must be there.
		want = []metadata.File{{RelPath: "index"}}
	}
	damaged := func(kind, found string) {
		c.problems = append(c.problems, Problem{
			Kind: kind, Severity: SeverityError, Block: id, Tenant: bl.Tenant, Replica: bl.Replica,
			Found:   found,
			Meaning: "The block is damaged: Store Gateway cannot load it, so queries of its time range miss its samples, and the Compactor halts on it.",
			Action:  fmt.Sprintf("If a block builder still has the block (it keeps uploaded blocks for STRATA_LOCAL_RETENTION, in STRATA_DATA_DIR/%s/%s/), copy the file from there into the bucket. Otherwise its data is lost: delete %s/meta.json first, so readers stop using the block, then the rest of %s/.", orNone(bl.Tenant, "tenant"), id, id, id),
		})
	}
	indexSize := int64(-1)
	for _, f := range want {
		if f.RelPath == metadata.MetaFilename {
			continue
		}
		if _, ok := have[f.RelPath]; !ok {
			damaged(KindMissingFile, fmt.Sprintf("meta.json lists %s (%d bytes) but the bucket has no such object", f.RelPath, f.SizeBytes))
			continue
		}
		attrs, err := b.bkt.Attributes(ctx, objectName(e.ID, f.RelPath))
		if err != nil {
			if b.bkt.IsObjNotFoundErr(err) {
				damaged(KindMissingFile, fmt.Sprintf("meta.json lists %s (%d bytes) but the bucket has no such object", f.RelPath, f.SizeBytes))
			} else {
				c.problems = append(c.problems, readProblem(id, bl.Tenant, bl.Replica, err))
			}
			continue
		}
		if f.SizeBytes > 0 && attrs.Size != f.SizeBytes {
			damaged(KindSizeMismatch, fmt.Sprintf("%s is %d bytes in the bucket, meta.json says %d", f.RelPath, attrs.Size, f.SizeBytes))
			continue
		}
		if f.RelPath == "index" {
			indexSize = attrs.Size
		}
	}
	if indexSize < 0 {
		return c
	}
	name := objectName(e.ID, "index")
	var ierr error
	if opts.FullIndex {
		var (
			bs   byteSlice
			done func()
		)
		if bs, done, ierr = downloadIndex(ctx, b.bkt, name, opts.TempDir); ierr == nil {
			_, ierr = readIndexFully(ctx, bs)
			done()
		}
	} else {
		ierr = checkIndexHeader(ctx, b.bkt, name, indexSize)
	}
	if ierr != nil && ctx.Err() == nil {
		damaged(KindUnreadableIndex, ierr.Error())
	}
	return c
}

func readProblem(id, tenant, replica string, err error) Problem {
	return Problem{
		Kind: "unreadable-block", Severity: SeverityError, Block: id, Tenant: tenant, Replica: replica,
		Found:   err.Error(),
		Meaning: "The bucket did not answer for this block, so it was not checked.",
		Action:  "Run verify again; if it persists, check the bucket's permissions and health.",
	}
}

func partialProblem(id ulid.ULID, objs []objectInfo, opts VerifyOptions) Problem {
	var (
		newest time.Time
		names  []string
	)
	for _, o := range objs {
		if o.modified.After(newest) {
			newest = o.modified
		}
		if len(names) < 4 {
			names = append(names, o.name)
		}
	}
	if len(objs) > len(names) {
		names = append(names, "...")
	}
	when := "last written"
	if newest.IsZero() {
		// The bucket gives no times: the ULID is when the block was cut,
		// which is before its upload started.
		newest, when = ulid.Time(id.Time()), "block cut"
	}
	age := opts.Now.Sub(newest).Truncate(time.Second)
	found := fmt.Sprintf("no meta.json; %s (%s), %s %s ago", plural(len(objs), "object"), strings.Join(names, ", "), when, FormatDuration(max(age, 0)))
	if age < opts.PartialAge {
		return Problem{
			Kind: KindUploadInProgress, Severity: SeverityWarning, Block: id.String(),
			Found:   found,
			Meaning: "An upload in progress, or one that failed and is being retried: meta.json is uploaded last, and readers ignore the block until it is there.",
			Action:  fmt.Sprintf("Nothing yet. If it is still there after %s, verify reports it as an error.", FormatDuration(opts.PartialAge)),
		}
	}
	return Problem{
		Kind: KindPartialUpload, Severity: SeverityError, Block: id.String(),
		Found:   fmt.Sprintf("%s (older than %s)", found, FormatDuration(opts.PartialAge)),
		Meaning: "The uploader died mid-upload or gave up: the data files are there but meta.json, which goes last, is not. Readers ignore the block, so its samples are missing from queries unless a replica's copy has them.",
		Action:  fmt.Sprintf("A block builder that still has the block re-uploads it whole on its next upload cycle or restart, so check the block builders' logs for upload errors. If none has %s (under STRATA_DATA_DIR/<tenant>/), delete the directory %s/ (the Thanos Compactor deletes partial uploads older than 2 days itself).", id, id),
	}
}

// objectInfo is an object of a block directory.
type objectInfo struct {
	name     string // relative to the block directory
	modified time.Time
}

// blockObjects lists a block directory recursively, with modification
// times where the provider gives them in the listing.
func (b *Browser) blockObjects(ctx context.Context, id ulid.ULID) ([]objectInfo, error) {
	prefix := id.String() + objstore.DirDelim
	opts := []objstore.IterOption{objstore.WithRecursiveIter()}
	if slices.Contains(b.bkt.SupportedIterOptions(), objstore.UpdatedAt) {
		opts = append(opts, objstore.WithUpdatedAt())
	}
	var objs []objectInfo
	err := b.bkt.IterWithAttributes(ctx, prefix, func(a objstore.IterObjectAttributes) error {
		o := objectInfo{name: strings.TrimPrefix(a.Name, prefix)}
		if t, ok := a.LastModified(); ok {
			o.modified = t
		}
		objs = append(objs, o)
		return nil
	}, opts...)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	return objs, nil
}

// WriteText writes a problem for people: what was found, what it means,
// what to do.
func (p Problem) WriteText(w io.Writer) error {
	head := strings.ToUpper(string(p.Severity)) + " " + p.Kind + " " + p.Block
	if len(p.Others) > 0 {
		head += " (with " + strings.Join(p.Others, ", ") + ")"
	}
	if p.Tenant != "" || p.Replica != "" {
		head += fmt.Sprintf("  tenant %s, replica %s", orNone(p.Tenant, "tenant"), orNone(p.Replica, "replica"))
	}
	_, err := fmt.Fprintf(w, "%s\n  found:  %s\n  means:  %s\n  do:     %s\n\n", head, p.Found, p.Meaning, p.Action)
	return err
}

// ErrProblems is returned (wrapped) by callers that fail on problems.
var ErrProblems = errors.New("problems found")
