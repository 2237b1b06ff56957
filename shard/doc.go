// Package shard decides which block builders own a series: it reads Thanos
// Receive's hashrings.json, picks the hashring of a tenant, hashes the tenant
// and labels of a series, and places the series on a ketama (consistent
// hashing) or hashmod ring, with replicas spread over availability zones.
// A Watcher reloads the file when it changes and swaps the ring atomically.
//
// Before changing anything here: the series hash (HashSeries, Hasher) and the
// placement of a hash on a ring decide where data lives. Changing either one,
// even "harmlessly" (another hash function, seed, separator, number of
// virtual nodes, tie-break or replica walk) sends every existing series to
// other block builders after a deploy: their heads, WALs and out-of-order
// windows no longer match the data they receive. Processes of different
// versions must agree on the placement while a rollout is in progress. The
// golden tests in golden_test.go pin these values; if they fail, the change is
// wrong, not the test.
package shard
