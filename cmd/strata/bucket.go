package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/stratametrics/strata/bucket/browse"
	"github.com/stratametrics/strata/bucket/web"
	"github.com/stratametrics/strata/internal/server"
)

const bucketUsage = `usage: strata bucket <ls|inspect|verify|web> [flags]

  ls       blocks by tenant and replica (-o table|wide|json|csv; --tenant, --from, --until)
  inspect  one block: meta.json, file sizes, top label names and pairs (strata bucket inspect ULID)
  verify   partial uploads, missing or wrong-sized files, unreadable indexes, overlapping blocks;
           exits 1 when it finds problems
  web      a web UI of the bucket (--listen 127.0.0.1:19290)

The bucket is the block builders': STRATA_S3_* variables, STRATA_OBJSTORE_CONFIG_FILE or
STRATA_BUCKET_DIR. STRATA_TENANT_LABEL and STRATA_REPLICA_LABEL name the labels to group by.
Run strata bucket <command> -h for its flags.
`

// runBucket browses the bucket the block builders write to.
func runBucket(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, bucketUsage)
		return fmt.Errorf("%w: strata bucket needs a command: ls, inspect, verify or web", errUsage)
	}
	sub := map[string]func(context.Context, []string, io.Writer, io.Writer) error{
		"ls":      runBucketLs,
		"inspect": runBucketInspect,
		"verify":  runBucketVerify,
		"web":     runBucketWeb,
	}
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, bucketUsage)
		return nil
	}
	run, ok := sub[args[0]]
	if !ok {
		fmt.Fprint(stderr, bucketUsage)
		return fmt.Errorf("%w: unknown bucket command %q", errUsage, args[0])
	}
	return run(ctx, args[1:], stdout, stderr)
}

// bucketFlags are the flags every bucket command takes.
type bucketFlags struct {
	fs  *flag.FlagSet
	cfg browse.Config
}

func newBucketFlags(name string, stderr io.Writer) (*bucketFlags, error) {
	bf := &bucketFlags{fs: flag.NewFlagSet("strata bucket "+name, flag.ContinueOnError), cfg: browse.DefaultConfig()}
	if err := loadEnv(&bf.cfg); err != nil {
		return nil, err
	}
	bf.fs.SetOutput(stderr)
	bf.fs.StringVar(&bf.cfg.TenantLabel, "tenant-label", bf.cfg.TenantLabel, "external label naming the tenant (STRATA_TENANT_LABEL)")
	bf.fs.StringVar(&bf.cfg.ReplicaLabel, "replica-label", bf.cfg.ReplicaLabel, "external label naming the replica (STRATA_REPLICA_LABEL)")
	bf.fs.IntVar(&bf.cfg.Concurrency, "concurrency", bf.cfg.Concurrency, "bucket reads in flight (STRATA_BUCKET_CONCURRENCY)")
	return bf, nil
}

// parse parses flags wherever they stand among at most maxArgs
// positional arguments, which it returns.
func (bf *bucketFlags) parse(args []string, maxArgs int) ([]string, error) {
	pos, err := parseFlags(bf.fs, args)
	if err != nil {
		return nil, err
	}
	if len(pos) > maxArgs {
		return nil, fmt.Errorf("%w: unexpected arguments %q", errUsage, pos[maxArgs:])
	}
	if err := bf.cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	return pos, nil
}

// open opens the bucket read-only.
func (bf *bucketFlags) open(ctx context.Context, stderr io.Writer) (*browse.Browser, func() error, error) {
	logger, err := newLogger(stderr)
	if err != nil {
		return nil, nil, err
	}
	return browse.Open(ctx, bf.cfg, logger)
}

func runBucketLs(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	bf, err := newBucketFlags("ls", stderr)
	if err != nil {
		return err
	}
	var f browse.Filter
	var from, until, format string
	bf.fs.StringVar(&f.Tenant, "tenant", "", "only this tenant")
	bf.fs.StringVar(&f.Replica, "replica", "", "only this replica")
	bf.fs.StringVar(&from, "from", "", "only blocks with data after this time: RFC 3339, a date, or relative like -2h, -7d")
	bf.fs.StringVar(&until, "until", "", "only blocks with data before this time (same forms as --from)")
	bf.fs.StringVar(&format, "o", "table", "output: table (compact), wide, json or csv")
	if _, err := bf.parse(args, 0); err != nil {
		return err
	}
	now := time.Now()
	if f.From, err = browse.ParseTime(from, now); err != nil {
		return fmt.Errorf("%w: --from: %v", errUsage, err)
	}
	if f.Until, err = browse.ParseTime(until, now); err != nil {
		return fmt.Errorf("%w: --until: %v", errUsage, err)
	}
	if err := f.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	out, err := browse.ParseFormat(format)
	if err != nil {
		return fmt.Errorf("%w: -o: %v", errUsage, err)
	}
	br, closeBucket, err := bf.open(ctx, stderr)
	if err != nil {
		return err
	}
	defer closeBucket()
	sum, err := br.List(ctx, stdout, browse.ListOptions{Filter: f, Format: out})
	if err != nil {
		return err
	}
	if sum.Partial > 0 {
		ids := make([]string, len(sum.PartialIDs))
		for i, id := range sum.PartialIDs {
			ids[i] = id.String()
		}
		more := ""
		if sum.Partial > len(ids) {
			more = ", ..."
		}
		fmt.Fprintf(stderr, "note: %s no meta.json (%s%s): uploads in progress or partial uploads, not listed; strata bucket verify tells which\n", plural(sum.Partial, "block directory has", "block directories have"), strings.Join(ids, ", "), more)
	}
	for _, e := range sum.Unreadable {
		fmt.Fprintf(stderr, "warning: block %s not listed: %v\n", e.ID, e.Err)
	}
	return nil
}

func runBucketInspect(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	bf, err := newBucketFlags("inspect", stderr)
	if err != nil {
		return err
	}
	var opts browse.InspectOptions
	var format string
	bf.fs.IntVar(&opts.Top, "top", 10, "how many label names and label pairs to rank")
	bf.fs.BoolVar(&opts.SkipIndex, "skip-index", false, "do not download and read the index")
	bf.fs.StringVar(&format, "o", "text", "output: text or json")
	pos, err := bf.parse(args, 1)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: strata bucket inspect takes one block ULID", errUsage)
	}
	id, err := ulid.ParseStrict(pos[0])
	if err != nil {
		return fmt.Errorf("%w: %q is not a block ULID: %v", errUsage, pos[0], err)
	}
	if format != "text" && format != "json" {
		return fmt.Errorf("%w: -o %q: want text or json", errUsage, format)
	}
	if opts.Top < 1 {
		return fmt.Errorf("%w: --top must be at least 1", errUsage)
	}
	br, closeBucket, err := bf.open(ctx, stderr)
	if err != nil {
		return err
	}
	defer closeBucket()
	in, err := br.Inspect(ctx, id, opts)
	if err != nil {
		return err
	}
	if format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(in)
	}
	return in.WriteText(stdout, br.Config())
}

func runBucketVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	bf, err := newBucketFlags("verify", stderr)
	if err != nil {
		return err
	}
	var opts browse.VerifyOptions
	var format string
	bf.fs.DurationVar(&opts.PartialAge, "partial-age", 2*time.Hour, "a block without meta.json older than this is an error; younger, an upload in progress (a warning)")
	bf.fs.BoolVar(&opts.FullIndex, "full", false, "download every index and read all its series (default: only each index's header and table of contents)")
	bf.fs.StringVar(&format, "o", "text", "output: text or json")
	if _, err := bf.parse(args, 0); err != nil {
		return err
	}
	if format != "text" && format != "json" {
		return fmt.Errorf("%w: -o %q: want text or json", errUsage, format)
	}
	if opts.PartialAge <= 0 {
		return fmt.Errorf("%w: --partial-age must be positive", errUsage)
	}
	br, closeBucket, err := bf.open(ctx, stderr)
	if err != nil {
		return err
	}
	defer closeBucket()
	var problems []browse.Problem
	report := func(p browse.Problem) error {
		if format == "json" {
			problems = append(problems, p)
			return nil
		}
		return p.WriteText(stdout)
	}
	rep, err := br.Verify(ctx, opts, report)
	if err != nil {
		return err
	}
	if format == "json" {
		if problems == nil {
			problems = []browse.Problem{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			Report   browse.VerifyReport `json:"report"`
			Problems []browse.Problem    `json:"problems"`
		}{rep, problems}); err != nil {
			return err
		}
	} else {
		verdict := "no problems"
		if rep.Errors+rep.Warnings > 0 {
			verdict = plural(rep.Errors, "error") + ", " + plural(rep.Warnings, "warning")
		}
		fmt.Fprintf(stdout, "Checked %s of %s and %s without meta.json in %s: %s.\n",
			plural(rep.Blocks, "block"), plural(rep.Tenants, "tenant"), plural(rep.Partial, "directory", "directories"), br.Name(), verdict)
	}
	if rep.Errors > 0 {
		return fmt.Errorf("%w: %s in %s", browse.ErrProblems, plural(rep.Errors, "error"), br.Name())
	}
	return nil
}

// webConfig is what `strata bucket web` takes besides the bucket.
type webConfig struct {
	Listen  string        `env:"BUCKET_WEB_LISTEN" envDefault:"127.0.0.1:19290"`
	Refresh time.Duration `env:"BUCKET_WEB_REFRESH" envDefault:"1m"`
}

func runBucketWeb(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	bf, err := newBucketFlags("web", stderr)
	if err != nil {
		return err
	}
	var wc webConfig
	if err := loadEnv(&wc); err != nil {
		return err
	}
	bf.fs.StringVar(&wc.Listen, "listen", wc.Listen, "address to serve the UI on (STRATA_BUCKET_WEB_LISTEN)")
	bf.fs.DurationVar(&wc.Refresh, "refresh", wc.Refresh, "how often to look for new blocks (STRATA_BUCKET_WEB_REFRESH)")
	if _, err := bf.parse(args, 0); err != nil {
		return err
	}
	if wc.Refresh < time.Second {
		return fmt.Errorf("%w: --refresh must be at least 1s", errUsage)
	}
	logger, err := newLogger(stderr)
	if err != nil {
		return err
	}
	br, closeBucket, err := browse.Open(ctx, bf.cfg, logger)
	if err != nil {
		return err
	}
	defer closeBucket()
	ui, err := web.New(br, web.Options{Refresh: wc.Refresh, Logger: logger.With("component", "bucket-web")})
	if err != nil {
		return err
	}
	l, err := server.Listen(wc.Listen, "--listen")
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Bucket web UI of %s on http://%s/\n", br.Name(), l.Addr())
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = ui.Run(runCtx)
	}()
	err = server.Serve(ctx, l, ui.Handler(), 5*time.Second)
	stop()
	<-done
	return err
}

// plural is "1 block", "2 blocks"; forms[0], if given, is the plural
// where adding an s does not make it.
func plural(n int, one string, forms ...string) string {
	many := one + "s"
	if len(forms) == 1 {
		many = forms[0]
	}
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
