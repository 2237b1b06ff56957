package storeapi

import (
	"context"
	"errors"
	"fmt"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
)

var (
	errTooManySeries  = errors.New("too many series (STRATA_QUERY_MAX_SERIES)")
	errTooManySamples = errors.New("too many samples (STRATA_QUERY_MAX_SAMPLES)")
)

// maxFrameBytes is where a series' chunks are split over several frames,
// as Thanos does (1 MiB), so that no message nears gRPC's size limits.
const maxFrameBytes = 1 << 20

// Series streams every series of every selected tenant that matches the
// request, sorted by labels, each with its chunks overlapping the time
// range as they are stored (Query trims them). send is called with each
// frame as it is made: nothing is held beyond the series being read.
func (s *Server) Series(ctx context.Context, req *SeriesRequest, send func(Message) error) error {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	ms, err := promMatchers(req.Matchers)
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	if req.MaxTime < req.MinTime {
		return nil
	}
	var (
		streams  []seriesStream
		queriers []storage.ChunkQuerier
	)
	defer func() {
		for _, q := range queriers {
			_ = q.Close()
		}
	}()
	hints := &storage.SelectHints{Start: req.MinTime, End: req.MaxTime, Limit: int(req.Limit), DisableTrimming: true}
	if req.SkipChunks {
		// Tells the TSDB that chunks will not be read.
		hints.Func = "series"
	}
	for _, t := range s.tenants.Tenants() {
		ok, tms := tenantMatchers(ms, t.ExternalLabels)
		if !ok {
			continue
		}
		if len(tms) == 0 {
			tms = []*labels.Matcher{selectAll}
		}
		q, err := t.DB.ChunkQuerier(req.MinTime, req.MaxTime)
		if err != nil {
			return grpcError(ctx, fmt.Errorf("tenant %s: open querier: %w", t.ID, err))
		}
		queriers = append(queriers, q)
		rl := newRelabeler(t.ExternalLabels, req.WithoutReplicaLabels)
		stream, err := tenantStream(ctx, q, rl, hints, tms, s.opts.Limits.MaxSeries)
		if err != nil {
			return grpcError(ctx, fmt.Errorf("tenant %s: %w", t.ID, err))
		}
		streams = append(streams, stream)
	}

	w := frameWriter{send: send, batch: int(req.ResponseBatchSize)}
	set := newMergeStream(streams)
	var (
		nSeries, nSamples int
		it                chunks.Iterator
		frame             Series
		raws              []Chunk // the chunks frame points to, reused
	)
	for set.Next() {
		if err := ctx.Err(); err != nil {
			return grpcError(ctx, err)
		}
		nSeries++
		if req.Limit > 0 && int64(nSeries) > req.Limit {
			break
		}
		if max := s.opts.Limits.MaxSeries; max > 0 && nSeries > max {
			return grpcError(ctx, fmt.Errorf("%w: the query selects more than %d series", errTooManySeries, max))
		}
		cur := set.At()
		frame.Labels = wireLabels(frame.Labels, cur.out)
		frame.Chunks, raws = frame.Chunks[:0], raws[:0]
		if req.SkipChunks {
			if err := w.add(&frame); err != nil {
				return grpcError(ctx, err)
			}
			continue
		}
		it = cur.series.Iterator(it)
		size, sent := 0, false
		for it.Next() {
			meta := it.At()
			n := meta.Chunk.NumSamples()
			nSamples += n
			if max := s.opts.Limits.MaxSamples; max > 0 && nSamples > max {
				return grpcError(ctx, fmt.Errorf("%w: the query selects more than %d samples", errTooManySamples, max))
			}
			frame.Chunks, raws, err = appendChunk(frame.Chunks, raws, meta)
			if err != nil {
				return grpcError(ctx, fmt.Errorf("series %s: %w", cur.out, err))
			}
			size += len(meta.Chunk.Bytes())
			if size >= maxFrameBytes {
				// A frame may hold a time slice of a series; the next
				// frame continues it with the same labels.
				if err := w.add(&frame); err != nil {
					return grpcError(ctx, err)
				}
				frame.Chunks, raws, size, sent = frame.Chunks[:0], raws[:0], 0, true
			}
		}
		if err := it.Err(); err != nil {
			return grpcError(ctx, fmt.Errorf("series %s: read chunks: %w", cur.out, err))
		}
		if len(frame.Chunks) > 0 || !sent {
			if err := w.add(&frame); err != nil {
				return grpcError(ctx, err)
			}
		}
	}
	if err := set.Err(); err != nil {
		return grpcError(ctx, err)
	}
	if err := w.flush(); err != nil {
		return grpcError(ctx, err)
	}
	for _, warn := range set.Warnings().AsErrors() {
		if err := send(&SeriesResponse{Warning: warn.Error()}); err != nil {
			return grpcError(ctx, err)
		}
	}
	return nil
}

// tenantStream selects a tenant's series in sent order (see order.go).
func tenantStream(ctx context.Context, q storage.ChunkQuerier, rl *relabeler, hints *storage.SelectHints, ms []*labels.Matcher, maxSeries int) (seriesStream, error) {
	names, _, err := q.LabelNames(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("label names: %w", err)
	}
	set := q.Select(ctx, true, hints, ms...)
	for _, n := range names {
		if rl.conflicts(n) {
			return newSortedStream(set, rl, maxSeries), nil
		}
	}
	return newReorderStream(set, rl), nil
}

// appendChunk adds a stored chunk as Thanos expects it. The three
// encodings Thanos knows are passed as they are (Thanos' encoding numbers
// are the TSDB's minus one); any other is re-encoded into the classic
// encoding of its sample type. raws holds the Chunk structs dst points to,
// reused from frame to frame: when it grows, earlier pointers keep the
// old array alive.
func appendChunk(dst []AggrChunk, raws []Chunk, meta chunks.Meta) ([]AggrChunk, []Chunk, error) {
	switch enc := meta.Chunk.Encoding(); enc {
	case chunkenc.EncXOR, chunkenc.EncHistogram, chunkenc.EncFloatHistogram:
		raws = append(raws, Chunk{Type: ChunkEncoding(enc - 1), Data: meta.Chunk.Bytes()})
		return append(dst, AggrChunk{MinTime: meta.MinTime, MaxTime: meta.MaxTime, Raw: &raws[len(raws)-1]}), raws, nil
	}
	dst, err := reencode(dst, meta.Chunk)
	return dst, raws, err
}

// reencode rewrites a chunk of an encoding Thanos does not know (XOR2, or
// the histogram encodings with start timestamps) into XOR, histogram or
// float histogram chunks. Start timestamps are dropped: the StoreAPI has
// no place for them.
func reencode(dst []AggrChunk, c chunkenc.Chunk) ([]AggrChunk, error) {
	var (
		out      chunkenc.Chunk
		app      chunkenc.Appender
		enc      ChunkEncoding
		mint     int64
		maxt     int64
		nSamples int
	)
	finish := func() {
		if out != nil && nSamples > 0 {
			dst = append(dst, AggrChunk{MinTime: mint, MaxTime: maxt, Raw: &Chunk{Type: enc, Data: out.Bytes()}})
		}
		out, app, nSamples = nil, nil, 0
	}
	start := func(nc chunkenc.Chunk, e ChunkEncoding, t int64) error {
		finish()
		a, err := nc.Appender()
		if err != nil {
			return err
		}
		out, app, enc, mint = nc, a, e, t
		return nil
	}
	// appended takes a histogram appender's answer. A chunk rewritten
	// with a wider layout holds every sample so far; a new chunk (a
	// counter reset) means the previous one is complete.
	appended := func(nc chunkenc.Chunk, recoded bool, na chunkenc.Appender, e ChunkEncoding, t int64) {
		switch {
		case nc != nil && recoded:
			out = nc
		case nc != nil:
			finish()
			out, enc, mint = nc, e, t
		}
		app = na
		maxt = t
	}
	it := c.Iterator(nil)
	for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
		switch vt {
		case chunkenc.ValFloat:
			t, v := it.At()
			if out == nil {
				if err := start(chunkenc.NewXORChunk(), EncodingXOR, t); err != nil {
					return dst, err
				}
			}
			app.Append(0, t, v)
			maxt = t
		case chunkenc.ValHistogram:
			t, h := it.AtHistogram(nil)
			if out == nil {
				if err := start(chunkenc.NewHistogramChunk(), EncodingHistogram, t); err != nil {
					return dst, err
				}
			}
			nc, recoded, na, err := app.AppendHistogram(nil, 0, t, h, false)
			if err != nil {
				return dst, err
			}
			appended(nc, recoded, na, EncodingHistogram, t)
		case chunkenc.ValFloatHistogram:
			t, h := it.AtFloatHistogram(nil)
			if out == nil {
				if err := start(chunkenc.NewFloatHistogramChunk(), EncodingFloatHistogram, t); err != nil {
					return dst, err
				}
			}
			nc, recoded, na, err := app.AppendFloatHistogram(nil, 0, t, h, false)
			if err != nil {
				return dst, err
			}
			appended(nc, recoded, na, EncodingFloatHistogram, t)
		}
		nSamples++
	}
	if err := it.Err(); err != nil {
		return dst, err
	}
	finish()
	return dst, nil
}

// sizeHint is a little more than the encoded size of s, so that one
// allocation holds a frame.
func (s *Series) sizeHint() int {
	n := 16
	for _, l := range s.Labels {
		n += len(l.Name) + len(l.Value) + 8
	}
	for _, c := range s.Chunks {
		n += 48
		if c.Raw != nil {
			n += len(c.Raw.Data)
		}
	}
	return n
}

// frameWriter sends Series frames, one per response or, when the client
// asked for batches, up to batch per response.
type frameWriter struct {
	send  func(Message) error
	batch int
	buf   []byte // encoded batch members
	n     int
}

func (w *frameWriter) add(s *Series) error {
	if w.batch <= 1 {
		// Encoded now, while the chunks it points to are still valid,
		// into a buffer of the right size (gRPC keeps it until sent).
		return w.send(rawMessage(appendMessage(make([]byte, 0, s.sizeHint()), fSeriesRespSeries, s.appendTo)))
	}
	w.buf = appendMessage(w.buf, fBatchSeries, s.appendTo)
	w.n++
	if w.n >= w.batch || len(w.buf) >= maxFrameBytes {
		return w.flush()
	}
	return nil
}

func (w *frameWriter) flush() error {
	if w.n == 0 {
		return nil
	}
	msg := protowire.AppendTag(nil, fSeriesRespBatch, protowire.BytesType)
	msg = protowire.AppendBytes(msg, w.buf)
	w.buf, w.n = w.buf[:0], 0
	return w.send(rawMessage(msg))
}
