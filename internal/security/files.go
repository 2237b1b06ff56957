package security

import (
	"bytes"
	"fmt"
	"os"
	"sync"
	"time"
)

// reloader caches what was parsed from a set of files and parses them
// again when their content changes, checking at most every interval so
// that a handshake or a request does not read files each time.
type reloader[T any] struct {
	files    []string
	parse    func(contents [][]byte) (T, error)
	interval time.Duration

	mu       sync.Mutex
	checked  time.Time
	contents [][]byte
	value    T
}

func newReloader[T any](interval time.Duration, parse func([][]byte) (T, error), files ...string) (*reloader[T], error) {
	r := &reloader[T]{files: files, parse: parse, interval: interval}
	contents, err := r.read()
	if err != nil {
		return nil, err
	}
	if r.value, err = parse(contents); err != nil {
		return nil, err
	}
	r.contents, r.checked = contents, time.Now()
	return r, nil
}

func (r *reloader[T]) read() ([][]byte, error) {
	out := make([][]byte, len(r.files))
	for i, f := range r.files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", f, err)
		}
		out[i] = b
	}
	return out, nil
}

// get returns the current value. A file that cannot be read or parsed
// keeps the previous value: a rotation caught half-way (new certificate,
// old key) must not take the listener down.
func (r *reloader[T]) get() T {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.checked) < r.interval {
		return r.value
	}
	r.checked = time.Now()
	contents, err := r.read()
	if err != nil || equal(contents, r.contents) {
		return r.value
	}
	if v, err := r.parse(contents); err == nil {
		r.value, r.contents = v, contents
	}
	return r.value
}

func equal(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}
