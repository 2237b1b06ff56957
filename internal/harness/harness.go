// Package harness starts the real processes integration tests run against
// (an S3 server, strata components, Prometheus) on free loopback ports,
// and stops them when the test ends, dumping their logs if it failed.
//
// Binaries come from environment variables the Makefile exports (see Tool);
// without them a test that needs one is skipped, or fails when
// STRATA_TEST_REQUIRE_TOOLS=1 (as `make test` sets), so CI never passes by
// skipping.
package harness

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// RequireToolsEnv, when "1", turns a missing tool into a test failure.
const RequireToolsEnv = "STRATA_TEST_REQUIRE_TOOLS"

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago,
// and that it has not returned before in this process: the kernel may
// hand out a port again as soon as it was closed, and two processes of
// one test were so given the same port. Another process may still take
// it before the caller binds it; that is rare enough on a test machine
// to accept.
func FreePort(t testing.TB) int {
	t.Helper()
	_, port, err := net.SplitHostPort(FreeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

var (
	handedOutMu sync.Mutex
	handedOut   = map[int]bool{}
)

// claim records the ports port to port+n-1 as handed out, unless one of
// them was already.
func claim(port, n int) bool {
	handedOutMu.Lock()
	defer handedOutMu.Unlock()
	for p := port; p < port+n; p++ {
		if handedOut[p] {
			return false
		}
	}
	for p := port; p < port+n; p++ {
		handedOut[p] = true
	}
	return true
}

// FreePorts returns "127.0.0.1:p" such that the ports p to p+n-1 were all
// free a moment ago and not handed out before (see FreePort), for a
// process that listens on a run of ports (strata dev puts its block
// builders on the ports after the router's).
func FreePorts(n int) (string, error) {
	for try := 0; try < 50; try++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", fmt.Errorf("find a free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		ls := []net.Listener{l}
		for i := 1; i < n; i++ {
			li, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port+i)))
			if err != nil {
				break
			}
			ls = append(ls, li)
		}
		free := len(ls) == n
		for _, l := range ls {
			l.Close()
		}
		if free && claim(port, n) {
			return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), nil
		}
	}
	return "", fmt.Errorf("no run of %d free ports found", n)
}

// FreeAddrs is FreePorts for a test.
func FreeAddrs(t testing.TB, n int) string {
	t.Helper()
	addr, err := FreePorts(n)
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// FreeAddr returns "127.0.0.1:<FreePort>".
func FreeAddr(t testing.TB) string {
	t.Helper()
	return FreeAddrs(t, 1)
}

// ToolEnv is the environment variable that gives the path of a tool:
// STRATA_TEST_BIN for "strata", STRATA_TEST_<NAME> otherwise (upper case,
// '-' as '_'): STRATA_TEST_VERSITYGW, STRATA_TEST_PROMETHEUS, ...
func ToolEnv(name string) string {
	if name == "strata" {
		return "STRATA_TEST_BIN"
	}
	return "STRATA_TEST_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Tool returns the path of the executable named name, from ToolEnv(name).
// If it is unset or not an executable file the test is skipped, or fails
// when STRATA_TEST_REQUIRE_TOOLS=1.
func Tool(t testing.TB, name string) string {
	t.Helper()
	env := ToolEnv(name)
	p := os.Getenv(env)
	var problem string
	if p == "" {
		problem = env + " is not set"
	} else if fi, err := os.Stat(p); err != nil {
		problem = fmt.Sprintf("%s=%s: %v", env, p, err)
	} else if fi.IsDir() || fi.Mode()&0o111 == 0 {
		problem = fmt.Sprintf("%s=%s is not an executable file", env, p)
	}
	if problem == "" {
		return p
	}
	if os.Getenv(RequireToolsEnv) == "1" {
		t.Fatalf("%s is required (%s=1): %s", name, RequireToolsEnv, problem)
	}
	t.Skipf("needs %s: %s; run `make tools`, or `make test` which runs every test", name, problem)
	return ""
}

// Unavailable is Tool's rule for a capability a test needs that the
// machine lacks (root, a mount): the test is skipped, or fails saying why
// when STRATA_TEST_REQUIRE_TOOLS=1, so that CI never passes by skipping.
func Unavailable(t testing.TB, what string) {
	t.Helper()
	if os.Getenv(RequireToolsEnv) == "1" {
		t.Fatalf("%s (%s=1: every test must run)", what, RequireToolsEnv)
	}
	t.Skip(what)
}
