package main

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/thanos-io/objstore"

	"github.com/stratametrics/strata/blockbuilder"
	"github.com/stratametrics/strata/bucket/browse"
	"github.com/stratametrics/strata/functions"
	"github.com/stratametrics/strata/internal/filewatch"
)

// envVars lists the variables a Config struct reads, as caarlos0/env
// names them: STRATA_ + the envPrefix of nested structs + the env tag.
func envVars(t reflect.Type, prefix string, out map[string]bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if name, ok := f.Tag.Lookup("env"); ok {
			out[prefix+strings.Split(name, ",")[0]] = true
			continue
		}
		ft := f.Type
		if ft.Kind() == reflect.Struct && f.IsExported() {
			envVars(ft, prefix+f.Tag.Get("envPrefix"), out)
		}
	}
}

// configs are every configuration struct a strata command reads.
func configs() map[string]bool {
	vars := map[string]bool{}
	for _, v := range []any{functions.Config{}, blockbuilder.Config{}, blockbuilder.QueryLimits{}, browse.Config{}, webConfig{}, devConfig{}, logConfig{}, debugConfig{}} {
		envVars(reflect.TypeOf(v), "STRATA_", vars)
	}
	return vars
}

// TestREADMEDocumentsEveryVariable checks the configuration reference in
// README.md against the Config structs both ways: every variable a
// component reads is documented, and every documented one exists.
func TestREADMEDocumentsEveryVariable(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	vars := configs()
	var missing []string
	for v := range vars {
		if !strings.Contains(string(readme), "`"+v+"`") {
			missing = append(missing, v)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("README.md does not document: %s", strings.Join(missing, ", "))
	}
	// Variables documented but read by nothing (STRATA_TEST_* belong to the
	// tests, STRATA_S3_* and the rest of the bucket to bucket.Config, which
	// blockbuilder.Config embeds).
	for _, m := range regexp.MustCompile("`(STRATA_[A-Z0-9_]+)`").FindAllStringSubmatch(string(readme), -1) {
		v := m[1]
		if !vars[v] && !strings.HasPrefix(v, "STRATA_TEST_") && !extraVars[v] {
			t.Errorf("README.md documents %s, which no configuration reads", v)
		}
	}
}

// extraVars are read outside the Config structs (by tools and adapters).
var extraVars = map[string]bool{}

// TestDocsNameRealVariables: the other documents that tell people which
// STRATA_* variables to set (the kind walkthrough, the LocalStack setup,
// the chart's README and values) name only variables a configuration
// reads. A prefix written as STRATA_S3_* stands for a group and is not
// matched: a name ends in a letter or digit at a word boundary.
func TestDocsNameRealVariables(t *testing.T) {
	vars := configs()
	name := regexp.MustCompile(`STRATA_[A-Z0-9_]*[A-Z0-9]\b`)
	for _, file := range []string{
		"../../examples/kind/README.md", "../../examples/kind/bucket.env",
		"../../localstack/README.md", "../../localstack/strata.env",
		"../../helm/strata/README.md", "../../helm/strata/values.yaml",
	} {
		text, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range name.FindAllString(string(text), -1) {
			if strings.HasPrefix(v, "STRATA_TEST_") || extraVars[v] {
				continue
			}
			if !vars[v] {
				t.Errorf("%s names %s, which no configuration reads", strings.TrimPrefix(file, "../../"), v)
			}
		}
	}
}

// descRecorder is a Registerer that keeps the names of the metrics
// registered on it, whether or not they have series yet.
type descRecorder struct{ names map[string]bool }

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

func (d *descRecorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc)
	go func() { c.Describe(ch); close(ch) }()
	for desc := range ch {
		if m := fqName.FindStringSubmatch(desc.String()); m != nil {
			d.names[m[1]] = true
		}
	}
	return nil
}

func (d *descRecorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = d.Register(c)
	}
}

func (d *descRecorder) Unregister(prometheus.Collector) bool { return true }

// TestREADMEDocumentsEveryMetric: every strata_* metric a router or a
// block builder registers is in the README's metrics table.
func TestREADMEDocumentsEveryMetric(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	reg := &descRecorder{names: map[string]bool{}}
	rcfg := functions.DefaultConfig()
	// A hashrings file, so that the reload metrics are registered too.
	rcfg.HashringsFile = filepath.Join(t.TempDir(), "hashrings.json")
	if err := os.WriteFile(rcfg.HashringsFile, []byte(`[{"hashring": "default", "endpoints": ["127.0.0.1:1"]}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	rcfg.ReplicationFactor = 1
	if _, err := functions.New(rcfg, slog.New(slog.NewTextHandler(io.Discard, nil)), reg); err != nil {
		t.Fatal(err)
	}
	if err := filewatch.Register(reg); err != nil { // as server.NewRegistry does
		t.Fatal(err)
	}
	bcfg := blockbuilder.DefaultConfig()
	bcfg.DataDir = t.TempDir()
	bcfg.Bucket.Dir = t.TempDir()
	bcfg.ReplicaName = "doc"
	if _, err := blockbuilder.New(bcfg, objstore.NewInMemBucket(), slog.New(slog.NewTextHandler(io.Discard, nil)), reg); err != nil {
		t.Fatal(err)
	}
	var missing []string
	n := 0
	for name := range reg.names {
		if !strings.HasPrefix(name, "strata_") {
			continue
		}
		n++
		if !strings.Contains(string(readme), "`"+name) {
			missing = append(missing, name)
		}
	}
	if n < 20 {
		t.Fatalf("only %d strata_ metrics registered: the recorder missed some", n)
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("README.md does not document: %s", strings.Join(missing, ", "))
	}
}
