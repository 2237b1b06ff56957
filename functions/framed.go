package functions

import (
	"math"

	"github.com/stratametrics/strata/remotewrite"
)

// With more block builders than the replication factor, each block
// builder owns a different part of a request, and a part per block
// builder, each compressed, compresses every series RF times: at RF=3
// over 6 block builders that was a quarter of the router's CPU. The
// series of a request fall into few groups by the set of block builders
// that own them (at most 20 sets of 3 of 6), so the router compresses
// each group once, as chunks of a snappy framed stream, and sends each
// block builder a stream of the chunks of its groups: a framed stream is
// chunks in sequence, and protobuf messages concatenate, so the chunks
// of the groups decode to one request. Block builders announce that they
// take such bodies (remotewrite.AcceptsFramed); to others, and when the
// groups are too small to compress well, the router sends parts as before
// (partBody).

// minGroupSeries is the fewest series per group on average for framed
// parts: a chunk only finds repeats within its group, and the labels of
// a few series repeat little. Below it (many block builders, so many
// owner sets) each block builder's part is compressed on its own.
const minGroupSeries = 32

// maxFramedParts is the most block builders one request can be framed
// for: a series' owners are a bit set of the request's parts.
const maxFramedParts = 64

// framing is the router's state for framed parts, reused from request to
// request (in writeState).
type framing struct {
	enc *remotewrite.FramedEncoder
	// owners is, per series, the bit set of its parts (indexes in
	// st.touched); group its group, -1 if sent nowhere.
	owners []uint64
	group  []int32
	// slots is an open-addressing table from owner set to group + 1.
	slots []framingSlot
	// groups in order of first appearance.
	groups []seriesGroup
	// order is the series grouped, group after group.
	order []int32
	// stream is every group compressed: prefix (stream identifier and
	// 2.0 symbols), then the chunks of each group, then suffix (1.0
	// metadata).
	stream      *remotewrite.Buffer
	prefix      int
	suffixStart int
}

type framingSlot struct {
	owners uint64
	group  int32
}

// seriesGroup is the series of one owner set: order[first:first+n], and
// stream[start:end] compressed.
type seriesGroup struct {
	owners     uint64
	first, n   int32
	start, end int
}

// prepareFramed groups the routed series of st by their owners and
// compresses each group once. It reports false, having compressed
// nothing, when the groups are too small (or too many parts) to be worth
// it; partBody then builds each part.
func (r *Router) prepareFramed(st *writeState) bool {
	f := &st.framing
	if len(st.touched) > maxFramedParts {
		return false
	}
	n := st.req.NumSeries()
	if cap(f.owners) < n {
		f.owners = make([]uint64, n)
		f.group = make([]int32, n)
	}
	f.owners = f.owners[:n]
	clear(f.owners)
	f.group = f.group[:n]
	for k, e := range st.touched {
		for _, i := range st.epSeries[e] {
			f.owners[i] |= 1 << k
		}
	}
	routed := 0
	for _, owners := range f.owners {
		if owners != 0 {
			routed++
		}
	}
	maxGroups := routed / minGroupSeries
	if maxGroups < 2 {
		return false
	}
	size := 1
	for size < 2*maxGroups {
		size <<= 1
	}
	if cap(f.slots) < size {
		f.slots = make([]framingSlot, size)
	}
	f.slots = f.slots[:size]
	clear(f.slots)
	f.groups = f.groups[:0]
	mask := uint64(size - 1)
	for i, owners := range f.owners {
		if owners == 0 {
			f.group[i] = -1
			continue
		}
		h := owners * 0x9e3779b97f4a7c15
		for s := (h >> 32) & mask; ; s = (s + 1) & mask {
			slot := &f.slots[s]
			if slot.owners == owners {
				f.group[i] = slot.group
				f.groups[slot.group].n++
				break
			}
			if slot.owners == 0 {
				if len(f.groups) == maxGroups {
					return false
				}
				*slot = framingSlot{owners: owners, group: int32(len(f.groups))}
				f.group[i] = slot.group
				f.groups = append(f.groups, seriesGroup{owners: owners, n: 1})
				break
			}
		}
	}
	// Lay the series out group after group, each in request order.
	total := int32(0)
	for g := range f.groups {
		f.groups[g].first = total
		total += f.groups[g].n
		f.groups[g].n = 0
	}
	if cap(f.order) < int(total) {
		f.order = make([]int32, total)
	}
	f.order = f.order[:total]
	for i, g := range f.group {
		if g >= 0 {
			grp := &f.groups[g]
			f.order[grp.first+grp.n] = int32(i)
			grp.n++
		}
	}
	r.compressGroups(st)
	return true
}

// compressGroups writes f.stream: the stream identifier and preamble,
// each group's series as chunks of their own, then the metadata.
func (r *Router) compressGroups(st *writeState) {
	f := &st.framing
	req := &st.req
	if f.enc == nil {
		f.enc = remotewrite.NewFramedEncoder()
	}
	raw := r.raw.Get()
	defer r.raw.Put(raw)
	f.stream = r.compressed.Get()
	f.enc.Start(f.stream)
	defer f.enc.Done()
	if raw.B = req.AppendPreamble(raw.B[:0]); len(raw.B) > 0 {
		f.enc.Encode(raw.B)
	}
	f.prefix = len(f.stream.B)
	for g := range f.groups {
		grp := &f.groups[g]
		raw.B = raw.B[:0]
		for _, i := range f.order[grp.first : grp.first+grp.n] {
			raw.B = req.AppendSeries(raw.B, int(i))
		}
		grp.start = len(f.stream.B)
		f.enc.Encode(raw.B)
		grp.end = len(f.stream.B)
	}
	f.suffixStart = len(f.stream.B)
	if raw.B = req.AppendMetadata(raw.B[:0]); len(raw.B) > 0 {
		f.enc.Encode(raw.B)
	}
}

// framedBody is the body of part k (endpoint e): the stream's prefix, the
// chunks of the groups e owns and the suffix. It reorders st.epSeries[e]
// as the body holds them, for the answer's rejections to map back.
func (r *Router) framedBody(st *writeState, k, e int) *remotewrite.Buffer {
	f := &st.framing
	out := r.compressed.Get()
	s := f.stream.B
	out.B = append(out.B, s[:f.prefix]...)
	series := st.epSeries[e][:0]
	for _, grp := range f.groups {
		if grp.owners&(1<<k) == 0 {
			continue
		}
		out.B = append(out.B, s[grp.start:grp.end]...)
		series = append(series, f.order[grp.first:grp.first+grp.n]...)
	}
	out.B = append(out.B, s[f.suffixStart:]...)
	st.epSeries[e] = series
	return out
}

// doneFramed gives back the stream of prepareFramed.
func (r *Router) doneFramed(st *writeState) {
	if st.framing.stream != nil {
		r.compressed.Put(st.framing.stream)
		st.framing.stream = nil
	}
}

// reblock re-encodes a framed body as a snappy block, for a block builder
// that refused it.
func (r *Router) reblock(framed []byte) []byte {
	var raw, out remotewrite.Buffer
	if err := remotewrite.DecodeFramed(&raw, framed, math.MaxInt32); err != nil {
		// The router's own encoding decodes; were it not to, the block
		// builder refuses the body again and the part fails.
		return framed
	}
	remotewrite.EncodeSnappy(&out, raw.B)
	return out.B
}
