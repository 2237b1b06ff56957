package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/stratametrics/strata/shard"
)

const thanosExample = `[
{"hashring": "tenant-a", "endpoints": ["tenant-a-1.metrics.local:19291/api/v1/receive", "tenant-a-2.metrics.local:19291/api/v1/receive"], "tenants": ["tenant-a"]},
{"hashring": "tenants-b-c", "endpoints": ["tenant-b-c-1.metrics.local:19291/api/v1/receive", "tenant-b-c-2.metrics.local:19291/api/v1/receive"], "tenants": ["tenant-b", "tenant-c"]},
{"hashring": "soft-tenants", "endpoints": ["http://soft-tenants-1.metrics.local:19291/api/v1/receive"]}
]`

const zonedFile = `[
{"hashring": "teams", "tenants": ["team-*"], "tenant_matcher_type": "glob", "external_labels": {"region": "eu"},
 "endpoints": [{"address": "a:1", "az": "z1"}, {"address": "b:1", "az": "z2"}, {"address": "c:1", "az": "z3"}]}
]`

func writeTemp(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hashrings.json")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// clearEnv makes the flag defaults the built-in ones.
func clearEnv(t *testing.T) {
	for _, v := range []string{"STRATA_REPLICATION_FACTOR", "STRATA_HASHRING_ALGORITHM", "STRATA_DEFAULT_TENANT",
		"STRATA_FORWARD_TLS_ENABLED", "STRATA_FORWARD_TLS_CA_FILE", "STRATA_FORWARD_TLS_CERT_FILE"} {
		t.Setenv(v, "")
	}
}

func runHashringArgs(args ...string) (string, string, error) {
	var stdout, stderr bytes.Buffer
	err := runHashring(context.Background(), args, &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

func TestHashringCheck(t *testing.T) {
	clearEnv(t)
	example := writeTemp(t, thanosExample)
	zoned := writeTemp(t, zonedFile)
	broken := writeTemp(t, `[{"hashring": "x", "endpoints": ["a:1", "a:1"], "algorithm": "maglev"}]`)

	for _, tc := range []struct {
		name      string
		args      []string
		want      []string // in stdout, or in the error
		wantErr   bool
		wantUsage bool
	}{
		{name: "thanos example", args: []string{"check", example}, want: []string{
			"OK: 3 hashrings, 5 endpoints, replication factor 1",
			"hashring \"tenant-a\"\n  tenants:    tenant-a (exact)\n  algorithm:  ketama\n  endpoints:  2\n    tenant-a-1.metrics.local:19291\n    tenant-a-2.metrics.local:19291\n",
			"tenants:    tenant-b, tenant-c (exact)",
			"hashring \"soft-tenants\"\n  tenants:    every tenant no hashring above takes (soft tenancy)",
			"    http://soft-tenants-1.metrics.local:19291\n",
		}},
		{name: "zones, glob and external labels", args: []string{"check", "-rf", "3", zoned}, want: []string{
			"replication factor 3", "tenants:    team-* (glob)", `external labels: region="eu"`, "a:1 (az z1)", "c:1 (az z3)",
		}},
		{name: "flags after the file", args: []string{"check", example, "-rf", "2"}, wantErr: true, want: []string{
			`hashring "soft-tenants": replication factor 2 needs at least 2 endpoints, it has 1`,
		}},
		{name: "algorithm flag", args: []string{"check", zoned, "-algorithm", "hashmod"}, wantErr: true, want: []string{
			`algorithm hashmod cannot spread replicas over zones`,
		}},
		{name: "every problem", args: []string{"check", broken}, wantErr: true, want: []string{
			`hashring "x": algorithm "maglev" is unknown`, `hashring "x": endpoint "a:1" is listed twice`,
		}},
		{name: "missing file", args: []string{"check", filepath.Join(t.TempDir(), "nope.json")}, wantErr: true, want: []string{"no such file"}},
		{name: "no file", args: []string{"check"}, wantUsage: true},
		{name: "two files", args: []string{"check", example, zoned}, wantUsage: true},
		{name: "bad rf", args: []string{"check", example, "-rf", "0"}, wantUsage: true, want: []string{"-rf must be at least 1"}},
		{name: "bad algorithm", args: []string{"check", example, "-algorithm", "x"}, wantUsage: true, want: []string{`-algorithm "x" is unknown`}},
		{name: "unknown flag", args: []string{"check", example, "-replicas", "2"}, wantUsage: true},
		{name: "no subcommand", args: nil, wantUsage: true},
		{name: "unknown subcommand", args: []string{"lint"}, wantUsage: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, err := runHashringArgs(tc.args...)
			out := stdout
			switch {
			case tc.wantUsage:
				if !errors.Is(err, errUsage) {
					t.Fatalf("got %v, want a usage error; stderr:\n%s", err, stderr)
				}
				out = err.Error()
			case tc.wantErr:
				if err == nil || errors.Is(err, errUsage) {
					t.Fatalf("got %v, want a (non-usage) error", err)
				}
				out = err.Error()
			case err != nil:
				t.Fatalf("%v; stderr:\n%s", err, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output does not contain %q:\n%s", w, out)
				}
			}
		})
	}
}

// TestHashringCheckUnderForwardTLS: with the router's STRATA_FORWARD_TLS_*
// in the environment, check refuses what that router would refuse.
func TestHashringCheckUnderForwardTLS(t *testing.T) {
	clearEnv(t)
	example := writeTemp(t, thanosExample)
	t.Setenv("STRATA_FORWARD_TLS_ENABLED", "true")
	_, _, err := runHashringArgs("check", example)
	if want := `endpoint "http://soft-tenants-1.metrics.local:19291" is written http://, but the router forwards over TLS`; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want an error saying %q", err, want)
	}
	if _, _, err := runHashringArgs("check", writeTemp(t, zonedFile)); err != nil {
		t.Fatalf("host:port endpoints under forward TLS: %v", err)
	}
}

func TestHashringOwners(t *testing.T) {
	clearEnv(t)
	example := writeTemp(t, thanosExample)
	zoned := writeTemp(t, zonedFile)

	stdout, _, err := runHashringArgs("owners", example, "--tenant", "tenant-a", "--rf", "1", `metric{a="b"}`, "up")
	if err != nil {
		t.Fatal(err)
	}
	// The same answer as the library's.
	cfgs, err := shard.ParseConfig([]byte(thanosExample))
	if err != nil {
		t.Fatal(err)
	}
	ring, err := shard.NewRing(cfgs, shard.Options{ReplicationFactor: 1})
	if err != nil {
		t.Fatal(err)
	}
	h, err := ring.ForTenant("tenant-a")
	if err != nil {
		t.Fatal(err)
	}
	owner := ring.Endpoints()[h.Owners(shard.HashSeries("tenant-a", labels.FromStrings("__name__", "metric", "a", "b")), nil)[0]].Address
	for _, w := range []string{
		`tenant "tenant-a": hashring "tenant-a" (ketama, replication factor 1)`,
		"{__name__=\"metric\", a=\"b\"}\n  hash: 0x",
		"  1. " + owner + "\n",
		`{__name__="up"}`,
	} {
		if !strings.Contains(stdout, w) {
			t.Errorf("output does not contain %q:\n%s", w, stdout)
		}
	}

	stdout, _, err = runHashringArgs("owners", "-rf", "3", "-tenant", "team-red", zoned, `{__name__="up", job="node"}`)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{`hashring "teams" (ketama, replication factor 3)`, "  1. ", "  2. ", "  3. ", "(az z1)", "(az z2)", "(az z3)"} {
		if !strings.Contains(stdout, w) {
			t.Errorf("output does not contain %q:\n%s", w, stdout)
		}
	}

	// The tenant defaults to the router's default tenant.
	t.Setenv("STRATA_DEFAULT_TENANT", "team-env")
	t.Setenv("STRATA_REPLICATION_FACTOR", "2")
	stdout, _, err = runHashringArgs("owners", zoned, "up")
	if err != nil || !strings.Contains(stdout, `tenant "team-env": hashring "teams" (ketama, replication factor 2)`) {
		t.Errorf("defaults from the environment: %v\n%s", err, stdout)
	}
	clearEnv(t)

	if _, _, err := runHashringArgs("owners", zoned, "--tenant", "acme", "up"); !errors.Is(err, shard.ErrUnknownTenant) || !strings.Contains(err.Error(), `"acme"`) {
		t.Errorf("unknown tenant: %v", err)
	}
	if _, _, err := runHashringArgs("owners", zoned, "--tenant", "team-a", `up{job=}`); !errors.Is(err, errUsage) || !strings.Contains(err.Error(), `series "up{job=}"`) {
		t.Errorf("bad series: %v", err)
	}
	if _, _, err := runHashringArgs("owners", zoned); !errors.Is(err, errUsage) {
		t.Errorf("no series: %v", err)
	}
	if _, _, err := runHashringArgs("owners", example, "--rf", "2", "up"); err == nil || !strings.Contains(err.Error(), "soft-tenants") {
		t.Errorf("rf above a hashring's endpoints: %v", err)
	}
}

// The exit codes main gives: 0 for success and help, 1 for a bad file, 2 for
// a usage mistake.
func TestHashringExitCodes(t *testing.T) {
	clearEnv(t)
	example := writeTemp(t, thanosExample)
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"hashring", "check", example}, 0},
		{[]string{"hashring", "check", example, "-rf", "2"}, 1},
		{[]string{"hashring", "check"}, 2},
		{[]string{"hashring", "check", "-h"}, 0},
		{[]string{"hashring", "help"}, 0},
	} {
		var stdout, stderr bytes.Buffer
		if got := run(tc.args, &stdout, &stderr); got != tc.code {
			t.Errorf("%v: exit %d, want %d; stderr:\n%s", tc.args, got, tc.code, stderr.String())
		}
	}
	if _, _, err := runHashringArgs("check", "-h"); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
}
