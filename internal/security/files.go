package security

import (
	"time"

	"github.com/stratametrics/strata/internal/filewatch"
)

// reloader is what was parsed from a set of files, parsed again when
// their content changes, checked at most every interval so that a
// handshake or a request does not read files each time. A file that
// cannot be read or parsed keeps the previous value (a rotation caught
// half-way, new certificate and old key, must not take the listener
// down), and says so in the process' log and in strata_config_file_*.
type reloader[T any] struct{ files *filewatch.Files[T] }

func newReloader[T any](what string, interval time.Duration, parse func([][]byte) (T, error), files ...string) (*reloader[T], error) {
	f, err := filewatch.New(filewatch.Config[T]{What: what, Paths: files, Parse: parse, Interval: interval})
	if err != nil {
		return nil, err
	}
	return &reloader[T]{files: f}, nil
}

// get returns the current value, reloading first if it is time to.
func (r *reloader[T]) get() T { return r.files.Fresh() }
