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
	"os"
	"strings"
	"testing"
)

// RequireToolsEnv, when "1", turns a missing tool into a test failure.
const RequireToolsEnv = "STRATA_TEST_REQUIRE_TOOLS"

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
