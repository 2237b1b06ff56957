// Strata's own components as real processes, for end-to-end tests.

package harness

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// Component is a running strata process and the address it serves on.
type Component struct {
	*Process
	// Addr is the HTTP address (remote-write, /metrics, /-/ready).
	Addr string
	// GRPCAddr is the StoreAPI address of a block builder.
	GRPCAddr string
	// DataDir is a block builder's data directory; it survives restarts.
	DataDir string
}

// URL is the remote-write URL of the component.
func (c *Component) URL() string { return "http://" + c.Addr + "/api/v1/receive" }

// WaitReady waits until /-/ready answers 200.
func (c *Component) WaitReady(timeout time.Duration) {
	c.t.Helper()
	c.WaitHTTP("http://"+c.Addr+"/-/ready", timeout)
}

// componentStartTimeout bounds the wait for a component's readiness (a
// block builder replays its WALs first).
const componentStartTimeout = 60 * time.Second

// StartBlockBuilder runs `strata blockbuilder` on free loopback ports with
// a data directory of its own, the bucket given by bucketEnv (S3.Env() or
// STRATA_BUCKET_DIR=...) and extra STRATA_* settings, and waits until it
// is ready.
func StartBlockBuilder(t testing.TB, replica string, bucketEnv []string, env ...string) *Component {
	t.Helper()
	c := &Component{Addr: FreeAddr(t), GRPCAddr: FreeAddr(t), DataDir: t.TempDir()}
	all := append([]string{
		"STRATA_HTTP_LISTEN=" + c.Addr,
		"STRATA_GRPC_LISTEN=" + c.GRPCAddr,
		"STRATA_DATA_DIR=" + c.DataDir,
		"STRATA_REPLICA_NAME=" + replica,
		"STRATA_UPLOAD_INTERVAL=1s",
	}, bucketEnv...)
	c.Process = StartProcess(t, Tool(t, "strata"), []string{"blockbuilder"}, append(all, env...))
	c.WaitReady(componentStartTimeout)
	return c
}

// StartRouter runs `strata router` in front of the given block builders
// with replication factor rf, and waits until it is ready.
func StartRouter(t testing.TB, blockBuilders []*Component, rf int, env ...string) *Component {
	t.Helper()
	addrs := make([]string, len(blockBuilders))
	for i, b := range blockBuilders {
		addrs[i] = b.Addr
	}
	return StartRouterEnv(t, append([]string{
		"STRATA_ENDPOINTS=" + strings.Join(addrs, ","),
		fmt.Sprintf("STRATA_REPLICATION_FACTOR=%d", rf),
		"STRATA_ENDPOINT_BACKOFF=100ms",
		"STRATA_ENDPOINT_MAX_BACKOFF=1s",
	}, env...)...)
}

// StartRouterEnv runs `strata router` on a free port with the given
// settings (which must name its block builders), and waits until it is
// ready. It stops without STRATA_SHUTDOWN_DELAY's wait for load balancers,
// which tests have none of, unless env sets one.
func StartRouterEnv(t testing.TB, env ...string) *Component {
	t.Helper()
	c := &Component{Addr: FreeAddr(t)}
	c.Process = StartProcess(t, Tool(t, "strata"), []string{"router"}, append([]string{"STRATA_HTTP_LISTEN=" + c.Addr, "STRATA_SHUTDOWN_DELAY=0s"}, env...))
	c.WaitReady(componentStartTimeout)
	return c
}
