//go:build gcs

package bucket_test

import (
	"strings"
	"testing"
)

func TestObjstoreFileGCS(t *testing.T) {
	// A broken service account reaches the GCS client, which refuses it.
	err := openYAML(t, "type: gcs\nconfig:\n  bucket: b\n  service_account: 'not json'\n")
	if err == nil || !strings.Contains(err.Error(), "create GCS client") {
		t.Fatalf("GCS: %v, want the GCS client's error", err)
	}
}
