// This file holds the ketama ring: consistent hashing with virtual nodes and
// replicas spread over availability zones, as Thanos Receive does it.

package shard

import (
	"cmp"
	"errors"
	"math/bits"
	"slices"
	"strconv"
	"strings"

	"github.com/cespare/xxhash/v2"
)

// virtualNodes is the number of points ("sections") each endpoint has on a
// ketama ring. An endpoint's share of series deviates from 1/n by about
// 1/sqrt(virtualNodes): with 3 to 30 endpoints, Thanos' 1000 lets the most
// loaded endpoint hold up to 1.17x the series of the least loaded, 4000
// keeps that under 1.1x (TestKetamaBalance). It costs
// 4000 * (8 + 4*rf) bytes per endpoint. Changing it moves data (see the
// package comment).
const virtualNodes = 4000

// ketama is the ring of one hashring. Each section (virtual node) owns the
// hashes from the previous section's hash (exclusive) up to its own
// (inclusive); its owners are precomputed, so a lookup is a search and a
// copy.
type ketama struct {
	hashes   []uint64 // sorted section hashes
	replicas []int32  // rf endpoint IDs per section, primary first
	rf       int
	// table[h>>shift] is the first section whose hash is >= the smallest
	// hash with that prefix: it turns the binary search into a short scan
	// of a few sections.
	table []uint32
	shift uint
}

// newKetama builds the ring of the endpoints, whose IDs are ids.
func newKetama(endpoints []Endpoint, ids []int, rf, vnodes int) (*ketama, error) {
	type section struct {
		hash uint64
		ep   int32 // index into endpoints
	}
	secs := make([]section, 0, len(endpoints)*vnodes)
	var buf []byte
	for e, ep := range endpoints {
		// Same points as Thanos: xxhash of "address:i", i from 1. They
		// depend only on the address, so adding an endpoint leaves the
		// points of the others where they are.
		for i := 1; i <= vnodes; i++ {
			buf = append(buf[:0], ep.Address...)
			buf = append(buf, ':')
			buf = strconv.AppendInt(buf, int64(i), 10)
			secs = append(secs, section{hash: xxhash.Sum64(buf), ep: int32(e)})
		}
	}
	// The address breaks ties, so that the order of endpoints in the file
	// never changes the placement.
	slices.SortFunc(secs, func(a, b section) int {
		if c := cmp.Compare(a.hash, b.hash); c != 0 {
			return c
		}
		return strings.Compare(endpoints[a.ep].Address, endpoints[b.ep].Address)
	})

	zoneIndex := make(map[string]int)
	zoneOf := make([]int, len(endpoints))
	var zoneSize []int
	for e, ep := range endpoints {
		z, ok := zoneIndex[ep.AZ]
		if !ok {
			z = len(zoneSize)
			zoneIndex[ep.AZ] = z
			zoneSize = append(zoneSize, 0)
		}
		zoneOf[e] = z
		zoneSize[z]++
	}

	k := &ketama{
		hashes:   make([]uint64, len(secs)),
		replicas: make([]int32, len(secs)*rf),
		rf:       rf,
	}
	for i, s := range secs {
		k.hashes[i] = s.hash
	}

	// The owners of a section are the first rf distinct endpoints met
	// walking clockwise from it. With zones, an endpoint is skipped while
	// its zone holds more replicas than the emptiest zone that still has
	// unused endpoints: one replica per zone first, then two, and so on.
	// That is Thanos' rule, except that Thanos also counts zones that have
	// run out of endpoints, and so loops forever when zones are unbalanced
	// (one zone of 1 endpoint, another of 5, rf=4).
	used := make([]bool, len(endpoints))
	zoneUsed := make([]int, len(zoneSize))
	picked := make([]int32, 0, rf)
	maxSteps := len(secs) * (rf + 1) // each pick takes at most one turn
	for i := range secs {
		picked = picked[:0]
		j := i
		for steps := 0; len(picked) < rf; steps++ {
			if steps > maxSteps {
				return nil, errors.New("ketama: cannot place replicas (this is a bug)")
			}
			e := secs[j].ep
			if j++; j == len(secs) {
				j = 0
			}
			if used[e] {
				continue
			}
			if len(zoneSize) > 1 && zoneUsed[zoneOf[e]] > leastUsedOpenZone(zoneUsed, zoneSize) {
				continue
			}
			used[e] = true
			zoneUsed[zoneOf[e]]++
			picked = append(picked, e)
		}
		for n, e := range picked {
			used[e] = false
			zoneUsed[zoneOf[e]]--
			k.replicas[i*rf+n] = int32(ids[e])
		}
	}

	tableBits := bits.Len(uint(len(secs) / 4))
	k.shift = uint(64 - tableBits) // 64 when the table has one entry: h>>64 is 0
	k.table = make([]uint32, 1<<tableBits)
	next := 0
	for b := range k.table {
		lo := uint64(b) << k.shift
		for next < len(k.hashes) && k.hashes[next] < lo {
			next++
		}
		k.table[b] = uint32(next)
	}
	return k, nil
}

// leastUsedOpenZone returns the fewest replicas held by a zone that still
// has unused endpoints.
func leastUsedOpenZone(used, size []int) int {
	least := -1
	for z, u := range used {
		if u < size[z] && (least < 0 || u < least) {
			least = u
		}
	}
	return least
}

// owners appends the owners of the first section whose hash is >= h, or of
// the first section if there is none (the ring wraps).
func (k *ketama) owners(h uint64, dst []int) []int {
	i := k.section(h)
	for _, id := range k.replicas[i*k.rf : i*k.rf+k.rf] {
		dst = append(dst, int(id))
	}
	return dst
}

// ownersEach appends the owners of each hash, rf per hash.
func (k *ketama) ownersEach(hashes []uint64, dst []int32) []int32 {
	for _, h := range hashes {
		i := k.section(h)
		dst = append(dst, k.replicas[i*k.rf:i*k.rf+k.rf]...)
	}
	return dst
}

// section returns the index of the first section whose hash is >= h, or 0
// if there is none (the ring wraps).
func (k *ketama) section(h uint64) int {
	i := int(k.table[h>>k.shift])
	for i < len(k.hashes) && k.hashes[i] < h {
		i++
	}
	if i == len(k.hashes) {
		i = 0
	}
	return i
}
