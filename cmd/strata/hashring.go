package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/prometheus/promql/parser"

	"github.com/stratametrics/strata/functions"
	"github.com/stratametrics/strata/shard"
)

const hashringUsage = `usage:
  strata hashring check FILE [-rf N] [-algorithm A]
      validate a Thanos hashrings.json file and print its hashrings
  strata hashring owners FILE [-tenant T] [-rf N] [-algorithm A] SERIES...
      print the block builders that own each series, e.g. 'up{job="node"}'

-rf defaults to $STRATA_REPLICATION_FACTOR (else 1), -algorithm to
$STRATA_HASHRING_ALGORITHM (else ketama), -tenant to $STRATA_DEFAULT_TENANT
(else default-tenant): the router's settings. With STRATA_FORWARD_TLS_*
set, as the router's, endpoints written http:// are refused, as the router
refuses them.
`

func runHashring(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, hashringUsage)
		return fmt.Errorf("%w: name a subcommand: check or owners", errUsage)
	}
	switch args[0] {
	case "check":
		return runHashringCheck(args[1:], stdout, stderr)
	case "owners":
		return runHashringOwners(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, hashringUsage)
		return flag.ErrHelp
	default:
		fmt.Fprint(stderr, hashringUsage)
		return fmt.Errorf("%w: unknown subcommand %q", errUsage, args[0])
	}
}

// ringFlags are what both subcommands share: the router's own
// configuration (STRATA_REPLICATION_FACTOR, STRATA_HASHRING_ALGORITHM,
// STRATA_DEFAULT_TENANT, STRATA_FORWARD_TLS_*), so that the tool places
// series as the router in the same environment does, with -rf and
// -algorithm over it.
type ringFlags struct {
	router functions.Config
}

func (f *ringFlags) register(fs *flag.FlagSet) error {
	f.router = functions.DefaultConfig()
	if err := loadEnv(&f.router); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	fs.IntVar(&f.router.ReplicationFactor, "rf", f.router.ReplicationFactor, "replication factor: owners of each series (STRATA_REPLICATION_FACTOR)")
	fs.StringVar(&f.router.HashringAlgorithm, "algorithm", f.router.HashringAlgorithm,
		"algorithm of hashrings that name none: ketama or hashmod (STRATA_HASHRING_ALGORITHM)")
	return nil
}

func (f *ringFlags) options() (shard.Options, error) {
	rc := f.router
	if rc.ReplicationFactor < 1 {
		return shard.Options{}, fmt.Errorf("%w: -rf must be at least 1, got %d", errUsage, rc.ReplicationFactor)
	}
	if rc.HashringAlgorithm != shard.AlgorithmKetama && rc.HashringAlgorithm != shard.AlgorithmHashmod {
		return shard.Options{}, fmt.Errorf("%w: -algorithm %q is unknown; use %s or %s", errUsage, rc.HashringAlgorithm, shard.AlgorithmKetama, shard.AlgorithmHashmod)
	}
	// The router's forward TLS decides whether http:// endpoints load.
	return shard.Options{ReplicationFactor: rc.ReplicationFactor, DefaultAlgorithm: rc.HashringAlgorithm, TLS: rc.ForwardTLS.On()}, nil
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("strata hashring "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, hashringUsage+"\nflags:\n")
		fs.PrintDefaults()
	}
	return fs
}

// loadRing reads and builds the ring of a hashrings file.
func loadRing(file string, f ringFlags) (*shard.Ring, error) {
	opts, err := f.options()
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	cfgs, err := shard.ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	ring, err := shard.NewRing(cfgs, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return ring, nil
}

func runHashringCheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("check", stderr)
	var rf ringFlags
	if err := rf.register(fs); err != nil {
		return err
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return fmt.Errorf("%w: check takes one FILE, got %d arguments", errUsage, len(pos))
	}
	ring, err := loadRing(pos[0], rf)
	if err != nil {
		return err
	}

	fmt.Fprintf(stdout, "%s: OK: %d hashrings, %d endpoints, replication factor %d\n",
		pos[0], len(ring.Hashrings()), len(ring.Endpoints()), rf.router.ReplicationFactor)
	for _, h := range ring.Hashrings() {
		fmt.Fprintf(stdout, "\nhashring %s\n", hashringName(h))
		if len(h.Tenants()) == 0 {
			fmt.Fprintf(stdout, "  tenants:    every tenant no hashring above takes (soft tenancy)\n")
		} else {
			fmt.Fprintf(stdout, "  tenants:    %s (%s)\n", strings.Join(h.Tenants(), ", "), h.TenantMatcherType())
		}
		fmt.Fprintf(stdout, "  algorithm:  %s\n", h.Algorithm())
		if labels := h.ExternalLabels(); len(labels) > 0 {
			names := make([]string, 0, len(labels))
			for n := range labels {
				names = append(names, n)
			}
			slices.Sort(names)
			for i, n := range names {
				names[i] = n + "=" + strconv.Quote(labels[n])
			}
			fmt.Fprintf(stdout, "  external labels: %s\n", strings.Join(names, ", "))
		}
		fmt.Fprintf(stdout, "  endpoints:  %d\n", len(h.Endpoints()))
		for _, id := range h.Endpoints() {
			fmt.Fprintf(stdout, "    %s\n", describeEndpoint(ring.Endpoints()[id]))
		}
	}
	return nil
}

func hashringName(h *shard.Hashring) string {
	if h.Name() == "" {
		return "(unnamed)"
	}
	return strconv.Quote(h.Name())
}

// describeEndpoint shows an endpoint with the scheme it was written with,
// which the router honours.
func describeEndpoint(ep shard.Endpoint) string {
	s := ep.Address
	if ep.Scheme != "" {
		s = ep.Scheme + "://" + s
	}
	if ep.AZ != "" {
		s += " (az " + ep.AZ + ")"
	}
	return s
}

func runHashringOwners(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("owners", stderr)
	var rf ringFlags
	if err := rf.register(fs); err != nil {
		return err
	}
	tenant := fs.String("tenant", rf.router.DefaultTenant, "tenant of the series (STRATA_DEFAULT_TENANT)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 2 {
		fs.Usage()
		return fmt.Errorf("%w: owners takes a FILE and at least one SERIES, e.g. 'up{job=\"node\"}'", errUsage)
	}
	ring, err := loadRing(pos[0], rf)
	if err != nil {
		return err
	}
	h, err := ring.ForTenant(*tenant)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "tenant %q: hashring %s (%s, replication factor %d)\n", *tenant, hashringName(h), h.Algorithm(), h.ReplicationFactor())

	p := parser.NewParser(parser.Options{})
	for _, s := range pos[1:] {
		ls, err := p.ParseMetric(s)
		if err != nil {
			return fmt.Errorf("%w: series %q: %v", errUsage, s, err)
		}
		hash := shard.HashSeries(*tenant, ls)
		fmt.Fprintf(stdout, "\n%s\n  hash: %#016x\n", ls.String(), hash)
		for i, id := range h.Owners(hash, nil) {
			fmt.Fprintf(stdout, "  %d. %s\n", i+1, describeEndpoint(ring.Endpoints()[id]))
		}
	}
	return nil
}
