package main

import (
	"errors"
	"flag"
	"fmt"
)

// Every command reads its configuration the same way: the environment
// first (loadEnv into the component's Config, defaults from its envDefault
// tags), then flags registered with those values as their defaults, so a
// flag wins over its variable and -h shows the value in effect. No flag
// mirrors a variable by hand.

// parseFlags parses fs's flags wherever they stand among the positional
// arguments, so that `check FILE -rf 2` works as the usages show, and
// returns the positional arguments. A bad flag is a usage error; -h
// returns flag.ErrHelp.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// parseFlagsOnly is parseFlags for a command that takes no positional
// arguments.
func parseFlagsOnly(fs *flag.FlagSet, args []string) error {
	pos, err := parseFlags(fs, args)
	if err == nil && len(pos) > 0 {
		err = fmt.Errorf("%w: unexpected arguments %q", errUsage, pos)
	}
	return err
}
