// Package dev runs a whole cluster in one process: one router and block
// builders, each on its own loopback port and talking over real sockets,
// as `strata dev` does and as the tests of the router, the StoreAPI and
// the query API use it.
//
// The one thing to know before changing it: block builders outlive the
// router. They stop only after it has drained and every copy it sent is
// answered, so that every write it acknowledged is flushed.
package dev

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/stratametrics/strata/app/blockbuilder"
	"github.com/stratametrics/strata/app/router"
	bb "github.com/stratametrics/strata/blockbuilder"
	"github.com/stratametrics/strata/functions"
	"github.com/stratametrics/strata/internal/server"
)

// Config is the cluster's configuration.
type Config struct {
	// DataDir holds each block builder's directory, blockbuilder-<i>.
	DataDir string
	// BlockBuilder is every block builder's configuration; Start sets
	// each one's DataDir, ReplicaName and listen addresses.
	BlockBuilder bb.Config
	// QueryLimits bound the block builders' query APIs.
	QueryLimits bb.QueryLimits
	// Router is the router's configuration; Start sets its endpoints
	// (and no hashrings file) and leaves ReplicationFactor as given.
	Router functions.Config
}

// Options are what a caller may add.
type Options struct {
	// Logger is the cluster's logger; each component logs with its name
	// (nil: discard).
	Logger *slog.Logger
	// Pprof serves the Go profiler on every component's HTTP port.
	Pprof bool
	// BlockBuilder, if set, adjusts block builder i before it starts.
	BlockBuilder func(i int, cfg *bb.Config, opts *blockbuilder.Options)
	// Router are the router's options; its ReadyCheck is the cluster's.
	Router router.Options
}

// Listeners are the cluster's: the router's, then each block builder's
// HTTP and StoreAPI listeners.
type Listeners struct {
	Router     net.Listener
	HTTP, GRPC []net.Listener
}

// Close closes every listener (Start closes them itself).
func (ls Listeners) Close() {
	for _, l := range append(append([]net.Listener{ls.Router}, ls.HTTP...), ls.GRPC...) {
		if l != nil {
			l.Close()
		}
	}
}

// Ports is how many consecutive ports, the router's first, Listen takes
// for n block builders when the router's port is given.
func Ports(n int) int { return 1 + 2*n }

// Listen opens the listeners of a cluster of n block builders whose
// router listens on routerAddr. Block builder i serves HTTP on the
// router's port + 1 + i and the StoreAPI after them all (not on Thanos'
// 10901, which a local Thanos Query takes by default); with port 0 every
// port is the system's choice.
func Listen(routerAddr string, n int) (Listeners, error) {
	var ls Listeners
	var err error
	if ls.Router, err = server.Listen(routerAddr, "the router's address"); err != nil {
		return ls, err
	}
	host, port, _ := net.SplitHostPort(ls.Router.Addr().String())
	base, _ := strconv.Atoi(port)
	_, asked, _ := net.SplitHostPort(routerAddr)
	for i := 0; i < Ports(n)-1; i++ {
		addr := net.JoinHostPort(host, "0")
		if asked != "0" {
			addr = net.JoinHostPort(host, strconv.Itoa(base+1+i))
		}
		what := fmt.Sprintf("block builder %d, the router's port + %d", i, i+1)
		if i >= n {
			what = fmt.Sprintf("block builder %d's StoreAPI, the router's port + %d", i-n, i+1)
		}
		l, err := server.Listen(addr, what)
		if err != nil {
			ls.Close()
			return Listeners{}, err
		}
		if i < n {
			ls.HTTP = append(ls.HTTP, l)
		} else {
			ls.GRPC = append(ls.GRPC, l)
		}
	}
	return ls, nil
}

// ReplicaName is block builder i's replica name.
func ReplicaName(i int) string { return fmt.Sprintf("blockbuilder-%d", i) }

// Cluster is a running cluster.
type Cluster struct {
	Router        *router.Server
	BlockBuilders []*blockbuilder.Server
}

// Start starts a block builder on each pair of ls.HTTP and ls.GRPC and the
// router over them on ls.Router, which serves at once (/-/ready 503 until
// every block builder has replayed its WAL); it returns once every block
// builder serves.
func Start(cfg Config, ls Listeners, opts Options) (*Cluster, error) {
	n := len(ls.HTTP)
	if n == 0 || len(ls.GRPC) != n {
		ls.Close()
		return nil, fmt.Errorf("a cluster needs HTTP and StoreAPI listeners for each block builder, got %d and %d", n, len(ls.GRPC))
	}
	if rf := cfg.Router.ReplicationFactor; rf < 1 || rf > n {
		ls.Close()
		return nil, fmt.Errorf("replication factor %d needs 1 <= rf <= block builders (%d)", rf, n)
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &Cluster{BlockBuilders: make([]*blockbuilder.Server, n)}
	var (
		mu      sync.Mutex
		ready   = make([]*bb.BlockBuilder, n)
		addrs   = make([]string, n)
		wg      sync.WaitGroup
		startEr = make([]error, n)
	)
	for i := range n {
		addrs[i] = ls.HTTP[i].Addr().String()
	}
	rc := cfg.Router
	rc.HashringsFile, rc.Endpoints = "", addrs
	// No load balancer stands in front of a dev router.
	rc.ShutdownDelay = 0
	ro := opts.Router
	if ro.Logger == nil {
		ro.Logger = logger.With("component", "router")
	}
	ro.Pprof = ro.Pprof || opts.Pprof
	ro.ReadyCheck = func() error {
		mu.Lock()
		defer mu.Unlock()
		for i, b := range ready {
			if b == nil || !b.Ready() {
				return fmt.Errorf("block builder %d (%s) is not ready", i, addrs[i])
			}
		}
		return nil
	}
	r, err := router.Start(rc, ls.Router, ro)
	if err != nil {
		ls.Router = nil
		ls.Close()
		return nil, err
	}
	c.Router = r
	for i := range n {
		bc := cfg.BlockBuilder
		bc.DataDir = filepath.Join(cfg.DataDir, ReplicaName(i))
		bc.ReplicaName = ReplicaName(i)
		bc.HTTPListen, bc.GRPCListen = addrs[i], ls.GRPC[i].Addr().String()
		bo := blockbuilder.Options{Logger: logger.With("component", "blockbuilder", "replica", bc.ReplicaName), Pprof: opts.Pprof}
		if opts.BlockBuilder != nil {
			opts.BlockBuilder(i, &bc, &bo)
		}
		next := bo.Started
		bo.Started = func(b *bb.BlockBuilder) {
			if next != nil {
				next(b)
			}
			mu.Lock()
			ready[i] = b
			mu.Unlock()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.BlockBuilders[i], startEr[i] = blockbuilder.Start(bc, cfg.QueryLimits, ls.HTTP[i], ls.GRPC[i], bo)
		}()
	}
	wg.Wait()
	if err := errors.Join(startEr...); err != nil {
		_ = c.Stop()
		return nil, err
	}
	return c, nil
}

// Stop stops the router, waits for its copies in flight, then stops every
// block builder (each flushes and uploads what it holds) and returns what
// they returned.
func (c *Cluster) Stop() error {
	errs := []error{c.Router.Stop()}
	var wg sync.WaitGroup
	bbErrs := make([]error, len(c.BlockBuilders))
	for i, s := range c.BlockBuilders {
		if s == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Stop(); err != nil {
				bbErrs[i] = fmt.Errorf("%s: %w", ReplicaName(i), err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(append(errs, bbErrs...)...)
}
