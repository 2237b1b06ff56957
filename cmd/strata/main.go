// Command strata runs every Strata component: one binary, one subcommand
// per component, configured from STRATA_* environment variables.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// command is one subcommand. run gets the arguments after the subcommand's
// name and a context that ends on SIGINT or SIGTERM.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commands lists every subcommand; each lives in a file of its own name.
var commands = map[string]command{
	"dev":          {"run a local cluster: a router and block builders with a filesystem bucket", runDev},
	"hashring":     {"check a hashrings file, or show the owners of a series", runHashring},
	"version":      {"print the version", runVersion},
	"router":       {"run a router: remote-write in, forwarded to block builders by quorum", runRouter},
	"blockbuilder": {"run a block builder: a TSDB per tenant, blocks uploaded to the bucket", runBlockBuilder},
	"bucket":       {"browse the bucket by tenant and replica: ls, inspect, verify, web", runBucket},
	"loadgen":      {"send remote-write load to an endpoint and report samples/s and server CPU per sample", runLoadgen},
}

// errUsage marks errors that are the caller's mistake; they exit with 2.
var errUsage = errors.New("usage")

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "strata: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	if err := loadEnv(&debugging); err != nil {
		fmt.Fprintf(stderr, "strata %s: STRATA_PPROF: %v\n", args[0], err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := cmd.run(ctx, args[1:], stdout, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "strata %s: %v\n", args[0], err)
		if errors.Is(err, errUsage) {
			return 2
		}
		return 1
	}
	return 0
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: strata <command> [arguments]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for name := range commands {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(w, "  %-13s %s\n", name, commands[name].summary)
	}
	fmt.Fprintln(w, "\nEach component is configured from STRATA_* environment variables; see README.md.")
}
