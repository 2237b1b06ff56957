// Package election holds the HA-pair elections a block builder owns: for
// each (tenant, cluster) whose hash it owns first on the hashring, which
// replica of a Prometheus pair is stored. Routers ask it and cache its
// answer (see docs/ARCHITECTURE.md, "HA-pair deduplication").
//
// The one thing to know before changing it: an election must survive the
// block builder's restart, or a restart would elect whichever replica
// asks first and store both for a while. Elections are written to disk
// before they are answered; the elected replica's last write is not (it
// changes every second), so after a restart every elected replica gets a
// whole failover timeout to be seen again before another may take over.
package election

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/stratametrics/strata/internal/fsutil"
)

// Decision is the answer to an ask: the elected replica, since when, and
// whether this ask elected it.
type Decision struct {
	Replica   string
	ElectedAt time.Time
	// Elected: this ask made Replica the elected one; Failover: it took
	// over from another.
	Elected, Failover bool
}

// Store holds the elections, persisted in one file.
type Store struct {
	path string
	max  int
	now  func() time.Time

	mu sync.Mutex
	m  map[key]*entry
}

type key struct{ Tenant, Cluster string }

type entry struct {
	replica   string
	electedAt time.Time
	// lastSeen is when the elected replica last wrote, as routers told.
	lastSeen time.Time
}

// record is an election as the file holds it.
type record struct {
	Tenant    string    `json:"tenant"`
	Cluster   string    `json:"cluster"`
	Replica   string    `json:"replica"`
	ElectedAt time.Time `json:"elected_at"`
}

// forgetAfter drops the election of a cluster not heard of for this long.
const forgetAfter = 24 * time.Hour

// ErrFull refuses a new cluster when the store holds max of them.
var ErrFull = errors.New("too many HA clusters")

// Open loads the elections in path (none if it does not exist yet); the
// store holds at most max clusters. now is the clock (nil: time.Now).
func Open(path string, max int, now func() time.Time) (*Store, error) {
	if now == nil {
		now = time.Now
	}
	s := &Store{path: path, max: max, now: now, m: map[key]*entry{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("HA elections: %w", err)
	}
	var recs []record
	if err := json.Unmarshal(b, &recs); err != nil {
		return nil, fmt.Errorf("HA elections %s: %w", path, err)
	}
	start := now()
	for _, r := range recs {
		// Routers could not tell this process of writes while it was
		// down: the elected replica starts with a whole timeout.
		s.m[key{r.Tenant, r.Cluster}] = &entry{replica: r.Replica, electedAt: r.ElectedAt, lastSeen: start}
	}
	return s, nil
}

// Elect answers that replica writes for (tenant, cluster) now. The
// elected replica stays elected while it writes; once it has not for
// timeout, the next replica that asks takes over. known, when not empty,
// is the replica the asking router believes elected: a store that has no
// election for the cluster (its hashring ownership just moved here, or
// its disk was lost) starts from it rather than from the asker.
func (s *Store) Elect(tenant, cluster, replica, known string, timeout time.Duration) (Decision, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	k := key{tenant, cluster}
	e := s.m[k]
	if e == nil {
		if len(s.m) >= s.max {
			s.forget(now)
			if len(s.m) >= s.max {
				return Decision{}, fmt.Errorf("%w: this block builder holds the elections of %d", ErrFull, s.max)
			}
		}
		first := replica
		if known != "" {
			first = known
		}
		e = &entry{replica: first, electedAt: now, lastSeen: now}
		s.m[k] = e
		if err := s.save(); err != nil {
			delete(s.m, k)
			return Decision{}, err
		}
		if first != replica {
			return Decision{Replica: first, ElectedAt: now}, nil
		}
		return Decision{Replica: replica, ElectedAt: now, Elected: true}, nil
	}
	if e.replica == replica {
		e.lastSeen = now
		return Decision{Replica: replica, ElectedAt: e.electedAt}, nil
	}
	if now.Sub(e.lastSeen) <= timeout {
		return Decision{Replica: e.replica, ElectedAt: e.electedAt}, nil
	}
	prev := *e
	e.replica, e.electedAt, e.lastSeen = replica, now, now
	if err := s.save(); err != nil {
		*e = prev
		return Decision{}, err
	}
	return Decision{Replica: replica, ElectedAt: now, Elected: true, Failover: true}, nil
}

// Each calls f with every election, for metrics.
func (s *Store) Each(f func(tenant, cluster, replica string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, e := range s.m {
		f(k.Tenant, k.Cluster, e.replica)
	}
}

// forget drops clusters not heard of for forgetAfter.
func (s *Store) forget(now time.Time) {
	for k, e := range s.m {
		if now.Sub(e.lastSeen) > forgetAfter {
			delete(s.m, k)
		}
	}
}

// save writes every election durably before any is answered.
func (s *Store) save() error {
	recs := make([]record, 0, len(s.m))
	for k, e := range s.m {
		recs = append(recs, record{Tenant: k.Tenant, Cluster: k.Cluster, Replica: e.replica, ElectedAt: e.electedAt})
	}
	b, err := json.Marshal(recs)
	if err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(s.path, b); err != nil {
		return fmt.Errorf("save HA elections: %w", err)
	}
	return nil
}
