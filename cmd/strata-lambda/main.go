// Command strata-lambda is Strata's router as an AWS Lambda function: the
// `bootstrap` of a provided.al2023 function behind a Function URL or an API
// Gateway HTTP API (payload 2.0). `make lambda` builds and zips it.
//
// It is configured like `strata router`, from the same STRATA_* variables,
// and serves the same handler. Everything is built once per execution
// environment, before the first event: the configuration, the hashring,
// the connection pool to the block builders. It is a binary of its own,
// not a subcommand of strata, so that the zip holds only the router and a
// cold start initialises nothing else.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	awslambda "github.com/aws/aws-lambda-go/lambda"
	"github.com/caarlos0/env/v11"

	"github.com/stratametrics/strata/functions"
	"github.com/stratametrics/strata/functions/lambda"
	"github.com/stratametrics/strata/internal/logging"
)

func main() {
	logger, adapter, err := setup(os.Stderr)
	if err != nil {
		// Printed to the function's log; the event fails with
		// Runtime.ExitError and the next one starts a new environment.
		fmt.Fprintf(os.Stderr, "strata-lambda: %v\n", err)
		os.Exit(1)
	}
	logger.Info("router ready")
	awslambda.Start(adapter)
}

// setup reads the configuration and builds the router and its adapter.
func setup(stderr io.Writer) (*slog.Logger, *lambda.Adapter, error) {
	logger, err := logging.FromEnv(stderr)
	if err != nil {
		return nil, nil, err
	}
	// The watchers of TLS and token files log to the default logger.
	slog.SetDefault(logger)
	cfg := functions.DefaultConfig()
	if err := env.ParseWithOptions(&cfg, env.Options{Prefix: "STRATA_"}); err != nil {
		return nil, nil, fmt.Errorf("configuration: %w", err)
	}
	if cfg.TenantCertificateField != "" {
		return nil, nil, fmt.Errorf("STRATA_TENANT_CERTIFICATE_FIELD has no effect in Lambda: the Function URL or API Gateway terminates TLS, so the function never sees a client certificate; unset it")
	}
	if cfg.TLS.Enabled() || cfg.TLS.ClientCAFile != "" {
		return nil, nil, fmt.Errorf("STRATA_TLS_* has no effect in Lambda: the Function URL or API Gateway terminates TLS; unset it")
	}
	// No registry: an execution environment serves no /metrics, and the
	// counters of one environment among many would mean little. The
	// router's logs and Lambda's own metrics stand in for them.
	r, err := functions.New(cfg, logger.With("component", "router"), nil)
	if err != nil {
		return nil, nil, err
	}
	// Nothing runs between events: a replica's copy still on its way
	// when the answer is sent would stop with the environment.
	r.WaitForEveryReplica()
	// Reloads of the hashrings and limits files, and probes of failed
	// block builders, run in the background for the life of the
	// environment. While it is frozen between events they stop with it
	// and resume after the thaw; what they keep (which block builders
	// are backing off) carries over from one event to the next, as it
	// does in a long-running router.
	go func() { _ = r.Run(context.Background()) }()
	return logger, lambda.New(r.Handler()), nil
}
