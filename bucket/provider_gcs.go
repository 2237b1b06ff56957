//go:build gcs

package bucket

import (
	"context"

	"github.com/go-kit/log"
	"github.com/thanos-io/objstore"
	"github.com/thanos-io/objstore/providers/gcs"
)

// Native GCS (service accounts, workload identity) for builds that want
// it at its memory cost; see objstoreFile.
func init() {
	providers[objstore.GCS] = func(l log.Logger, c []byte, comp string) (objstore.Bucket, error) {
		return gcs.NewBucket(context.Background(), l, c, comp, noWrap)
	}
}
