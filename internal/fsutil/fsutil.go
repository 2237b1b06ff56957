// Package fsutil holds file-system helpers shared by the packages that
// keep state on disk.
package fsutil

import (
	"os"
	"path/filepath"
)

// WriteFileAtomic replaces name with data so that a crash at any point
// leaves the old content or the new, complete one: temporary file, fsync,
// rename, fsync of the directory.
func WriteFileAtomic(name string, data []byte) (err error) {
	tmp := name + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, name); err != nil {
		return err
	}
	// The rename is only durable once the directory entry is.
	d, err := os.Open(filepath.Dir(name))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
