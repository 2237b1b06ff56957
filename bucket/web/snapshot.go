// What the UI knows of the bucket between refreshes.

package web

import (
	"context"
	"slices"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/stratametrics/strata/bucket/browse"
)

// block is what the UI keeps of a block: about 150 bytes, strings
// interned, so 100,000 blocks take some 15 MB. Thanos' bucket web keeps
// whole metas; a meta.json never changes, so a refresh reads only new
// ones.
type block struct {
	id                      ulid.ULID
	tenant, replica         string
	other                   string            // external labels but tenant and replica, for display
	labels                  map[string]string // all external labels, shared by the blocks of a stream
	stream                  string            // browse.StreamKey
	minTime, maxTime        int64
	series, samples, chunks uint64
	level                   int
	sources                 []ulid.ULID // only when level > 1
	source                  string
	resolution              int64
	size                    int64 // -1 unknown
}

func (b *block) row() browse.Row {
	return browse.Row{
		Tenant: b.tenant, Replica: b.replica, ULID: b.id.String(),
		MinTime: b.minTime, MaxTime: b.maxTime,
		From: browse.FormatTime(b.minTime), Until: browse.FormatTime(b.maxTime),
		Range:  browse.FormatDuration(time.Duration(b.maxTime-b.minTime) * time.Millisecond),
		Series: b.series, Samples: b.samples, Chunks: b.chunks,
		Level: b.level, Source: b.source, Resolution: b.resolution, SizeBytes: b.size,
		Labels: b.labels,
	}
}

func (b *block) span() browse.Span {
	return browse.Span{ID: b.id, MinTime: b.minTime, MaxTime: b.maxTime, Sources: b.sources}
}

// snapshot is the bucket as of one refresh. It is never modified once
// published.
type snapshot struct {
	at time.Time
	// blocks are in ULID order; byID indexes them.
	blocks []*block
	byID   map[ulid.ULID]*block
	// problems found without reading more than the listing and metas:
	// partial uploads and overlaps; run verify for the rest.
	problems []browse.Problem
	// partial holds the entries without meta.json, rechecked each time.
	partial []ulid.ULID
	err     error
}

// interner shares equal strings, and the label maps of a stream, between
// blocks.
type interner struct {
	strings map[string]string
	labels  map[string]map[string]string
}

func newInterner() *interner {
	return &interner{strings: map[string]string{}, labels: map[string]map[string]string{}}
}

func (in *interner) get(s string) string {
	if v, ok := in.strings[s]; ok {
		return v
	}
	in.strings[s] = s
	return s
}

// labelsOf returns the shared map of the stream key, storing m if new.
func (in *interner) labelsOf(key string, m map[string]string) map[string]string {
	if v, ok := in.labels[key]; ok {
		return v
	}
	in.labels[key] = m
	return m
}

// refresh builds the next snapshot from prev, reading only metas it does
// not have.
func refresh(ctx context.Context, br *browse.Browser, prev *snapshot, now time.Time) (*snapshot, error) {
	next := &snapshot{at: now, byID: map[ulid.ULID]*block{}}
	in := newInterner()
	cfg := br.Config()
	var partials []browse.Entry
	known := func(id ulid.ULID) bool {
		if prev == nil {
			return false
		}
		_, ok := prev.byID[id]
		return ok
	}
	err := br.WalkKnown(ctx, known, func(e browse.Entry) error {
		switch {
		case e.Known:
			bl := prev.byID[e.ID]
			next.blocks = append(next.blocks, bl)
		case e.Partial():
			partials = append(partials, e)
			return nil
		case e.Err != nil:
			next.problems = append(next.problems, browse.Problem{
				Kind: browse.KindUnreadableMeta, Severity: browse.SeverityError, Block: e.ID.String(),
				Found:   e.Err.Error(),
				Meaning: "Readers cannot tell what the block holds; its samples are missing from queries.",
				Action:  "Run strata bucket verify for what to do.",
			})
			return nil
		default:
			next.blocks = append(next.blocks, newBlock(br.NewBlock(e.Meta), cfg, in))
		}
		bl := next.blocks[len(next.blocks)-1]
		next.byID[bl.id] = bl
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Partial uploads are few; each costs a listing of its directory.
	for _, e := range partials {
		if p, ok := br.CheckPartial(ctx, e, browse.VerifyOptions{Now: now}); ok {
			next.problems = append(next.problems, p)
			next.partial = append(next.partial, e.ID)
		}
	}
	streams := map[string][]browse.Span{}
	for _, b := range next.blocks {
		streams[b.stream] = append(streams[b.stream], b.span())
	}
	keys := make([]string, 0, len(streams))
	for k := range streams {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		spans := streams[k]
		first := next.byID[spans[0].ID]
		next.problems = append(next.problems, browse.Overlaps(spans, first.tenant, first.replica)...)
	}
	return next, nil
}

func newBlock(bl browse.Block, cfg browse.Config, in *interner) *block {
	m := bl.Meta
	size, ok := bl.Size()
	if !ok {
		size = -1
	}
	stream := in.get(browse.StreamKey(m))
	b := &block{
		id:         m.ULID,
		tenant:     in.get(bl.Tenant),
		replica:    in.get(bl.Replica),
		other:      in.get(bl.OtherLabels(cfg)),
		labels:     in.labelsOf(stream, m.Thanos.Labels),
		stream:     stream,
		minTime:    m.MinTime,
		maxTime:    m.MaxTime,
		series:     m.Stats.NumSeries,
		samples:    m.Stats.NumSamples,
		chunks:     m.Stats.NumChunks,
		level:      m.Compaction.Level,
		source:     in.get(m.Thanos.Source),
		resolution: m.Thanos.Downsample.Resolution,
		size:       size,
	}
	if m.Compaction.Level > 1 {
		b.sources = m.Compaction.Sources
	}
	return b
}
