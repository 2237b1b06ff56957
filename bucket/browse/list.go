// Listing the block directories of a bucket in ULID order, page by page.

package browse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/oklog/ulid/v2"
	"github.com/thanos-io/objstore"
)

// lister calls fn with the ULID of every block directory, in ascending
// order, without holding more than a page of names.
type lister interface {
	list(ctx context.Context, fn func(ulid.ULID) error) error
}

// objstoreLister lists through objstore. Its S3, GCS and Azure providers
// page through the listing API (1000 keys a page for S3) and hand names
// over as each page arrives, so memory stays at a page.
type objstoreLister struct{ bkt objstore.BucketReader }

func (l objstoreLister) list(ctx context.Context, fn func(ulid.ULID) error) error {
	return l.bkt.Iter(ctx, "", func(name string) error {
		id, ok := blockDir(name)
		if !ok {
			return nil // debug/, other tools' files: not blocks
		}
		return fn(id)
	})
}

// blockDir parses "<ULID>/", the name objstore gives a block directory.
func blockDir(name string) (ulid.ULID, bool) {
	s, ok := strings.CutSuffix(name, objstore.DirDelim)
	if !ok {
		return ulid.ULID{}, false
	}
	id, err := ulid.ParseStrict(s)
	if err != nil || id.String() != s {
		// Only the canonical spelling: a lower-case twin would be a
		// different directory that readers never open.
		return ulid.ULID{}, false
	}
	return id, true
}

// dirPageSize is how many names a page of dirLister holds.
const dirPageSize = 10000

// dirLister lists a filesystem bucket with memory bounded by pageSize, as
// S3's ListObjectsV2 does with start-after: every page re-reads the
// directory (in batches) and keeps the pageSize smallest ULIDs after the
// last page's last one. A directory is read ceil(n/pageSize) times, which
// costs a few seconds at a million blocks; filesystem buckets are for
// development and tests.
type dirLister struct {
	dir      string
	pageSize int
}

func (l dirLister) list(ctx context.Context, fn func(ulid.ULID) error) error {
	var after *ulid.ULID
	for {
		page, more, err := l.page(ctx, after)
		if err != nil {
			return err
		}
		for _, id := range page {
			if err := fn(id); err != nil {
				return err
			}
		}
		if !more || len(page) == 0 {
			return nil
		}
		last := page[len(page)-1]
		after = &last
	}
}

// page returns the (up to) pageSize smallest block ULIDs greater than
// after, sorted, and whether there are more.
func (l dirLister) page(ctx context.Context, after *ulid.ULID) ([]ulid.ULID, bool, error) {
	f, err := os.Open(l.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil // like objstore: an absent bucket directory is empty
	}
	if err != nil {
		return nil, false, fmt.Errorf("open bucket directory: %w", err)
	}
	defer f.Close()
	// keep holds candidates; it is cut back to the pageSize smallest
	// whenever it reaches twice that, so appends stay amortised O(1).
	keep := make([]ulid.ULID, 0, 2*l.pageSize)
	more := false
	trim := func() {
		slices.SortFunc(keep, ulid.ULID.Compare)
		if len(keep) > l.pageSize {
			keep, more = keep[:l.pageSize], true
		}
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, false, err
		}
		entries, err := f.ReadDir(1024)
		for _, e := range entries {
			if !e.IsDir() {
				continue
			}
			id, ok := blockDir(e.Name() + objstore.DirDelim)
			if !ok || (after != nil && id.Compare(*after) <= 0) {
				continue
			}
			keep = append(keep, id)
			if len(keep) == cap(keep) {
				trim()
			}
		}
		if errors.Is(err, io.EOF) || (err == nil && len(entries) == 0) {
			break
		}
		if err != nil {
			return nil, false, fmt.Errorf("read bucket directory: %w", err)
		}
	}
	trim()
	return keep, more, nil
}
