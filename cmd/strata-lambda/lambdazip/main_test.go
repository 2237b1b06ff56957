package main

import (
	"archive/zip"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestZip: the zip holds bootstrap at its root, executable, with the
// bytes given, and extra files beside it; the same inputs give the same
// zip.
func TestZip(t *testing.T) {
	dir := t.TempDir()
	bootstrap := filepath.Join(dir, "bootstrap-build")
	rings := filepath.Join(dir, "rings.json")
	if err := os.WriteFile(bootstrap, []byte("\x7fELF not really"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rings, []byte(`[{"endpoints":["bb:19291"]}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "f.zip")
	if err := run([]string{"-o", out, "bootstrap=" + bootstrap, "hashrings.json=" + rings}, io.Discard); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.OpenReader(out)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	want := map[string]struct {
		mode os.FileMode
		body string
	}{
		"bootstrap":      {0o755, "\x7fELF not really"},
		"hashrings.json": {0o644, `[{"endpoints":["bb:19291"]}]`},
	}
	if len(zr.File) != len(want) {
		t.Fatalf("zip has %d entries, want %d", len(zr.File), len(want))
	}
	for _, f := range zr.File {
		w, ok := want[f.Name]
		if !ok {
			t.Fatalf("unexpected entry %q", f.Name)
		}
		if f.Mode() != w.mode {
			t.Errorf("%s: mode %v, want %v", f.Name, f.Mode(), w.mode)
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if string(b) != w.body {
			t.Errorf("%s: content %q, want %q", f.Name, b, w.body)
		}
	}

	again := filepath.Join(dir, "g.zip")
	if err := run([]string{"-o", again, "bootstrap=" + bootstrap, "hashrings.json=" + rings}, io.Discard); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(out)
	b, _ := os.ReadFile(again)
	if !bytes.Equal(a, b) {
		t.Error("two zips of the same files differ")
	}
}

func TestZipRejects(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "x")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.zip")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"bootstrap=" + f}, "usage"},
		{[]string{"-o", out, "hashrings.json=" + f}, "no bootstrap"},
		{[]string{"-o", out, "bootstrap"}, "want name=path"},
		{[]string{"-o", out, "bootstrap=" + f, "../etc/x=" + f}, "clean relative path"},
		{[]string{"-o", out, "bootstrap=" + f, "/etc/x=" + f}, "clean relative path"},
		{[]string{"-o", out, "bootstrap=" + f, "bootstrap=" + f}, "given twice"},
		{[]string{"-o", out, "bootstrap=" + dir}, "not a regular file"},
		{[]string{"-o", out, "bootstrap=" + filepath.Join(dir, "missing")}, "no such file"},
	} {
		err := run(c.args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v, want an error containing %q", c.args, err, c.want)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a failed run left %s behind (%v)", out, err)
	}
}
