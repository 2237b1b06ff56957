package bucket_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stratametrics/strata/bucket"
)

// openYAML opens the bucket an objstore YAML describes.
func openYAML(t *testing.T, content string) error {
	t.Helper()
	file := filepath.Join(t.TempDir(), "objstore.yml")
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	bkt, err := bucket.Config{ObjstoreConfigFile: file}.Open(context.Background(), nil, nil, "test")
	if err == nil {
		bkt.Close()
	}
	return err
}

func TestObjstoreFileTypes(t *testing.T) {
	// The type is case-insensitive and the prefix applies, as in Thanos.
	dir := t.TempDir()
	file := filepath.Join(t.TempDir(), "objstore.yml")
	os.WriteFile(file, []byte("type: filesystem\nprefix: tenant-a\nconfig:\n  directory: "+dir+"\n"), 0o600)
	bkt, err := bucket.Config{ObjstoreConfigFile: file}.Open(context.Background(), nil, nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer bkt.Close()
	if err := bkt.Upload(context.Background(), "meta.json", strings.NewReader("{}")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "tenant-a", "meta.json")); err != nil {
		t.Fatalf("prefix not applied: %v", err)
	}

	err = openYAML(t, "type: NOPE\nconfig: {}\n")
	if err == nil || !strings.Contains(err.Error(), `"NOPE" is not supported`) || !strings.Contains(err.Error(), "AZURE") || !strings.Contains(err.Error(), "S3") {
		t.Errorf("unknown type: %v, want the supported types listed", err)
	}
	if err := openYAML(t, "type: S3\nconfig:\n  bucket: b\nunknown_key: 1\n"); err == nil || !strings.Contains(err.Error(), "unknown_key") {
		t.Errorf("unknown top-level key: %v, want it refused (strict, like Thanos)", err)
	}
	for _, typ := range []string{"AZURE", "SWIFT", "COS", "ALIYUNOSS", "BOS", "OCI", "OBS"} {
		// Each type reaches its provider, which refuses an empty config:
		// the error is the provider's, not "not supported".
		if err := openYAML(t, "type: "+typ+"\nconfig: {}\n"); err == nil || strings.Contains(err.Error(), "not supported") {
			t.Errorf("%s: %v, want its provider's error", typ, err)
		}
	}
}
