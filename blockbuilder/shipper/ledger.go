// The ledger: which blocks of a TSDB directory are in the bucket.

package shipper

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/oklog/ulid/v2"

	"github.com/stratametrics/strata/internal/fsutil"
)

// LedgerFilename is the ledger in the TSDB directory. Its format is that of
// Thanos' thanos.shipper.json: {"version": 1, "uploaded": [ULID, ...]}.
const LedgerFilename = "strata.shipper.json"

const ledgerVersion1 = 1

type ledgerFile struct {
	Version  int         `json:"version"`
	Uploaded []ulid.ULID `json:"uploaded"`
}

// readLedger returns the uploaded blocks recorded in dir; a missing ledger
// is an empty one.
func readLedger(dir string) (map[ulid.ULID]struct{}, error) {
	b, err := os.ReadFile(filepath.Join(dir, LedgerFilename))
	if errors.Is(err, os.ErrNotExist) {
		return map[ulid.ULID]struct{}{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read ledger: %w", err)
	}
	var l ledgerFile
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("parse ledger %s: %w", filepath.Join(dir, LedgerFilename), err)
	}
	if l.Version != ledgerVersion1 {
		return nil, fmt.Errorf("parse ledger %s: unexpected version %d", filepath.Join(dir, LedgerFilename), l.Version)
	}
	set := make(map[ulid.ULID]struct{}, len(l.Uploaded))
	for _, id := range l.Uploaded {
		set[id] = struct{}{}
	}
	return set, nil
}

// writeLedger replaces the ledger atomically, so a crash leaves the previous
// list or the new one.
func writeLedger(dir string, uploaded map[ulid.ULID]struct{}) error {
	l := ledgerFile{Version: ledgerVersion1, Uploaded: make([]ulid.ULID, 0, len(uploaded))}
	for id := range uploaded {
		l.Uploaded = append(l.Uploaded, id)
	}
	slices.SortFunc(l.Uploaded, func(a, b ulid.ULID) int { return a.Compare(b) })
	b, err := json.MarshalIndent(l, "", "\t")
	if err != nil {
		return fmt.Errorf("encode ledger: %w", err)
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(dir, LedgerFilename), append(b, '\n')); err != nil {
		return fmt.Errorf("write ledger: %w", err)
	}
	return nil
}
