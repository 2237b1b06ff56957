// Package logging builds the structured logger every strata binary uses,
// from STRATA_LOG_LEVEL and STRATA_LOG_FORMAT.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/caarlos0/env/v11"
)

// Config is read from STRATA_LOG_LEVEL and STRATA_LOG_FORMAT.
type Config struct {
	Level  string `env:"LOG_LEVEL" envDefault:"info"`
	Format string `env:"LOG_FORMAT" envDefault:"logfmt"`
}

// FromEnv returns a logger writing to w as the environment says.
func FromEnv(w io.Writer) (*slog.Logger, error) {
	var c Config
	if err := env.ParseWithOptions(&c, env.Options{Prefix: "STRATA_"}); err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	return c.New(w)
}

// New returns a logger writing to w.
func (c Config) New(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		return nil, fmt.Errorf("STRATA_LOG_LEVEL: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(c.Format) {
	case "logfmt", "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("STRATA_LOG_FORMAT must be logfmt or json, got %q", c.Format)
}
