package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"time"

	"github.com/stratametrics/strata/app/dev"
	"github.com/stratametrics/strata/app/router"
	"github.com/stratametrics/strata/blockbuilder"
	"github.com/stratametrics/strata/bucket/browse"
	"github.com/stratametrics/strata/bucket/web"
	"github.com/stratametrics/strata/functions"
)

// devConfig is what `strata dev` takes; every flag is also a variable.
type devConfig struct {
	DataDir       string        `env:"DATA_DIR" envDefault:"./data"`
	Listen        string        `env:"HTTP_LISTEN" envDefault:"127.0.0.1:19291"`
	RF            int           `env:"REPLICATION_FACTOR" envDefault:"3"`
	BlockBuilders int           `env:"BLOCKBUILDERS" envDefault:"3"`
	BlockDuration time.Duration `env:"BLOCK_DURATION" envDefault:"2h"`
}

// runDev runs a whole cluster on this machine: one router and N block
// builders, each on its own loopback port and talking over real sockets,
// with a filesystem bucket unless S3 or an objstore file is configured.
func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var dc devConfig
	if err := loadEnv(&dc); err != nil {
		return err
	}
	fs := flag.NewFlagSet("strata dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&dc.DataDir, "data-dir", dc.DataDir, "where block builders keep their TSDBs and the filesystem bucket lives (STRATA_DATA_DIR)")
	fs.StringVar(&dc.Listen, "listen", dc.Listen, "the router's remote-write address (STRATA_HTTP_LISTEN)")
	fs.IntVar(&dc.RF, "rf", dc.RF, "replication factor (STRATA_REPLICATION_FACTOR)")
	fs.IntVar(&dc.BlockBuilders, "blockbuilders", dc.BlockBuilders, "number of block builders (STRATA_BLOCKBUILDERS)")
	fs.DurationVar(&dc.BlockDuration, "block-duration", dc.BlockDuration, "block length (STRATA_BLOCK_DURATION)")
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	if dc.BlockBuilders < 1 || dc.RF < 1 || dc.RF > dc.BlockBuilders {
		return fmt.Errorf("%w: -rf %d needs 1 <= rf <= -blockbuilders (%d)", errUsage, dc.RF, dc.BlockBuilders)
	}
	logger, err := newLogger(stderr)
	if err != nil {
		return err
	}
	if tuneRuntime(logger, blockBuilderGOGC) {
		blockBuilderGC(logger).Start(ctx)
	}

	bbCfg := blockbuilder.DefaultConfig()
	if err := loadEnv(&bbCfg); err != nil {
		return err
	}
	bbCfg.BlockDuration = dc.BlockDuration
	if bbCfg.Bucket.Validate() != nil && bbCfg.Bucket.S3.Bucket == "" && bbCfg.Bucket.ObjstoreConfigFile == "" {
		bbCfg.Bucket.Dir = filepath.Join(dc.DataDir, "bucket")
	}

	limits := blockbuilder.DefaultQueryLimits()
	if err := loadEnv(&limits); err != nil {
		return err
	}
	rCfg := functions.DefaultConfig()
	if err := loadEnv(&rCfg); err != nil {
		return err
	}
	rCfg.ReplicationFactor = dc.RF

	// The bucket web UI shares the router's port, under /bucket/, reading
	// the bucket the block builders write to.
	bucketUI, closeUIBucket, err := newDevBucketUI(ctx, bbCfg, logger)
	if err != nil {
		return err
	}
	defer closeUIBucket()
	uiCtx, stopUI := context.WithCancel(ctx)
	defer stopUI()
	go func() { _ = bucketUI.Run(uiCtx) }()

	// Listen on everything first, so that a taken port fails fast and the
	// banner shows the real addresses.
	ls, err := dev.Listen(dc.Listen, dc.BlockBuilders)
	if err != nil {
		return err
	}
	printDevBanner(stdout, ls, dc, rCfg, bbCfg)
	cluster, err := dev.Start(dev.Config{DataDir: dc.DataDir, BlockBuilder: bbCfg, QueryLimits: limits, Router: rCfg}, ls, dev.Options{
		Logger: logger,
		Pprof:  debugging.Pprof,
		Router: router.Options{Routes: map[string]http.Handler{"/bucket/": bucketUI.Handler(), "/bucket": bucketUI.Handler()}},
	})
	if err != nil {
		return err
	}
	<-ctx.Done()
	logger.Info("stopping the router, then flushing block builders")
	return cluster.Stop()
}

// printDevBanner tells how to use the dev cluster: every address, the
// remote-write and query snippets with the tenant header the router and
// block builders really read (STRATA_TENANT_HEADER), and how to browse the
// bucket they upload to.
func printDevBanner(w io.Writer, ls dev.Listeners, dc devConfig, rc functions.Config, bb blockbuilder.Config) {
	router := ls.Router.Addr().String()
	bbs, grpcs := make([]string, len(ls.HTTP)), make([]string, len(ls.GRPC))
	for i := range ls.HTTP {
		bbs[i], grpcs[i] = ls.HTTP[i].Addr().String(), ls.GRPC[i].Addr().String()
	}
	fmt.Fprintf(w, "Strata dev cluster: 1 router, %d block builders, replication factor %d, %s blocks\n\n", len(bbs), dc.RF, dc.BlockDuration)
	fmt.Fprintf(w, "  router         http://%s/api/v1/receive   (also /metrics, /-/ready)\n", router)
	for i, a := range bbs {
		fmt.Fprintf(w, "  %s http://%s   StoreAPI %s   (replica label %s=%q)\n", dev.ReplicaName(i), a, grpcs[i], bb.ReplicaLabel, dev.ReplicaName(i))
	}
	fmt.Fprintf(w, "  bucket         %s\n", bb.Bucket.String())
	fmt.Fprintf(w, "  bucket web UI  http://%s/bucket/   (tenants, a timeline of blocks, block details)\n\n", router)
	fmt.Fprintf(w, "Point Prometheus at it (without the header, writes belong to %q):\n\n  remote_write:\n    - url: http://%s/api/v1/receive\n      headers:\n        %s: team-a\n\n", rc.DefaultTenant, router, rc.TenantHeader)
	// strata bucket reads the bucket from the same variables as the block
	// builders; only the filesystem bucket strata dev picked itself is not
	// in the caller's environment.
	switch {
	case bb.Bucket.Dir != "":
		fmt.Fprintf(w, "Browse the bucket:\n\n  STRATA_BUCKET_DIR=%s strata bucket ls\n\n", bb.Bucket.Dir)
	case bb.Bucket.ObjstoreConfigFile != "":
		fmt.Fprintf(w, "Browse the bucket:\n\n  STRATA_OBJSTORE_CONFIG_FILE=%s strata bucket ls\n\n", bb.Bucket.ObjstoreConfigFile)
	default:
		fmt.Fprintf(w, "Browse the bucket, with the same STRATA_S3_* variables set:\n\n  strata bucket ls\n\n")
	}
	fmt.Fprintf(w, "Query what a block builder holds (PromQL, one tenant per request):\n\n  curl 'http://%s/api/v1/query?query=up' -H '%s: team-a'\n\n", bbs[0], bb.TenantHeader)
	fmt.Fprintf(w, "Or all of it, fresh data and bucket, with Thanos Query (and a Store Gateway on the bucket):\n\n  thanos query --query.replica-label=%s", bb.ReplicaLabel)
	for _, g := range grpcs {
		fmt.Fprintf(w, " --endpoint=%s", g)
	}
	fmt.Fprintf(w, "\n\n")
	fmt.Fprintf(w, "Ctrl-C flushes every block builder and uploads what it holds, then exits.\n")
}

// newDevBucketUI is the bucket web UI of the dev cluster's bucket, served
// under /bucket/ and refreshed often, as blocks land every flush.
func newDevBucketUI(ctx context.Context, bb blockbuilder.Config, logger *slog.Logger) (*web.UI, func() error, error) {
	cfg := browse.DefaultConfig()
	cfg.Bucket, cfg.TenantLabel, cfg.ReplicaLabel = bb.Bucket, bb.TenantLabel, bb.ReplicaLabel
	br, closeBucket, err := browse.Open(ctx, cfg, logger)
	if err != nil {
		return nil, nil, fmt.Errorf("bucket web UI: %w", err)
	}
	ui, err := web.New(br, web.Options{Prefix: "/bucket", Refresh: 15 * time.Second, Logger: logger.With("component", "bucket-web")})
	if err != nil {
		closeBucket()
		return nil, nil, err
	}
	return ui, closeBucket, nil
}
