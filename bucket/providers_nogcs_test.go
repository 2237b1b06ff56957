//go:build !gcs

package bucket_test

import (
	"strings"
	"testing"
)

func TestObjstoreFileGCSAdvice(t *testing.T) {
	err := openYAML(t, "type: gcs\nconfig:\n  bucket: b\n")
	if err == nil || !strings.Contains(err.Error(), "storage.googleapis.com") || !strings.Contains(err.Error(), "-tags gcs") {
		t.Fatalf("GCS in a build without it: %v, want the S3 API and the build tag named", err)
	}
}
