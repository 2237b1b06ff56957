// Command lambdazip writes the deployment zip of a Lambda function:
// `make lambda` runs it so that packaging needs no zip program on the
// machine.
//
//	go run ./cmd/strata-lambda/lambdazip -o out.zip bootstrap=bin/lambda/amd64/bootstrap [name=path ...]
//
// Each name=path puts the file at path into the zip as name (bootstrap at
// the root, as the provided runtimes require; extra files such as a
// hashrings.json land next to it in /var/task). bootstrap is made
// executable, the rest readable, and every entry is dated 1980-01-01, so the same inputs give the same zip
// and the function's code hash changes only when its contents do.
package main

import (
	"archive/zip"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "lambdazip: %v\n", err)
		os.Exit(2)
	}
}

func run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("lambdazip", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "zip file to write")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() == 0 {
		return errors.New("usage: lambdazip -o out.zip bootstrap=path [name=path ...]")
	}
	type entry struct{ name, src string }
	var entries []entry
	seen := map[string]bool{}
	for _, a := range fs.Args() {
		name, src, ok := strings.Cut(a, "=")
		if !ok || name == "" || src == "" {
			return fmt.Errorf("argument %q: want name=path", a)
		}
		if path.IsAbs(name) || strings.HasPrefix(path.Clean(name), "..") || path.Clean(name) != name {
			return fmt.Errorf("argument %q: name must be a clean relative path", a)
		}
		if seen[name] {
			return fmt.Errorf("argument %q: %s given twice", a, name)
		}
		seen[name] = true
		entries = append(entries, entry{name, src})
	}
	if !seen["bootstrap"] {
		return errors.New("no bootstrap=path: the provided runtimes start /var/task/bootstrap")
	}
	tmp := *out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	zw := zip.NewWriter(f)
	for _, e := range entries {
		if err := add(zw, e.name, e.src); err != nil {
			f.Close()
			return err
		}
	}
	if err := zw.Close(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", *out, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", *out, err)
	}
	// Renamed into place only when complete: make never sees a partial
	// zip as up to date.
	return os.Rename(tmp, *out)
}

// add copies the file src into zw as name.
func add(zw *zip.Writer, name, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", src)
	}
	h := &zip.FileHeader{Name: name, Method: zip.Deflate, Modified: time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)}
	// Lambda keeps the modes of the zip: a bootstrap without execute
	// bits fails every cold start with "permission denied".
	mode := os.FileMode(0o644)
	if name == "bootstrap" {
		mode = 0o755
	}
	h.SetMode(mode)
	w, err := zw.CreateHeader(h)
	if err != nil {
		return fmt.Errorf("zip %s: %w", name, err)
	}
	if _, err := io.Copy(w, in); err != nil {
		return fmt.Errorf("zip %s from %s: %w", name, src, err)
	}
	return nil
}
