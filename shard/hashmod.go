// This file holds the hashmod ring: hash modulo the number of endpoints,
// placed exactly as Thanos Receive places it, for users migrating from it.

package shard

import (
	"slices"
	"strings"
)

// newHashmod returns the IDs of the endpoints sorted by address: Thanos
// sorts them so, and that order is what hash % n indexes.
func newHashmod(endpoints []Endpoint, ids []int) []int32 {
	order := make([]int, len(endpoints))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(endpoints[a].Address, endpoints[b].Address) })
	out := make([]int32, len(order))
	for i, e := range order {
		out[i] = int32(ids[e])
	}
	return out
}

// hashmodOwners appends the endpoint at h % n and the rf-1 after it. Thanos
// computes (h+i) % n, which differs only when h+i overflows, and then can
// repeat an endpoint; this never does.
func hashmodOwners[T int | int32](ids []int32, rf int, h uint64, dst []T) []T {
	n := uint64(len(ids))
	j := h % n
	for range rf {
		dst = append(dst, T(ids[j]))
		if j++; j == n {
			j = 0
		}
	}
	return dst
}
