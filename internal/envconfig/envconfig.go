// Package envconfig derives a configuration's defaults from the envDefault
// tags caarlos0/env reads, so that the defaults a caller building a Config
// in code gets and those of the environment can never drift apart.
package envconfig

import (
	"fmt"

	"github.com/caarlos0/env/v11"
)

// Defaults returns a T holding what its envDefault tags declare: T parsed
// from an empty environment. A tag that does not parse is a programming
// error, and panics (every Defaults is called by a package's tests).
func Defaults[T any]() T {
	var v T
	if err := env.ParseWithOptions(&v, env.Options{Environment: map[string]string{}}); err != nil {
		panic(fmt.Sprintf("envconfig: defaults of %T: %v", v, err))
	}
	return v
}
