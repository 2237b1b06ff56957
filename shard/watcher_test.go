package shard

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stratametrics/strata/internal/harness"
)

func hashringsFile(name string, endpoints ...string) string {
	return fmt.Sprintf(`[{"hashring": %q, "endpoints": ["%s"]}]`, name, strings.Join(endpoints, `", "`))
}

// writeFile replaces the file atomically, as a careful writer (and
// Kubernetes) does, so that a poll never sees half a file.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// metric returns the value of the metric with the given name and labels in
// reg, or -1 if there is none.
func metric(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i < len(labels); i += 2 {
				got := ""
				for _, l := range m.GetLabel() {
					if l.GetName() == labels[i] {
						got = l.GetValue()
					}
				}
				if got != labels[i+1] {
					continue next
				}
			}
			switch {
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Counter != nil:
				return m.Counter.GetValue()
			}
		}
	}
	return -1
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func runWatcher(t *testing.T, w *Watcher) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after its context ended")
		}
	})
}

func TestWatcherReloadsOnChange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hashrings.json")
	writeFile(t, path, hashringsFile("first", "a:1", "b:1"))
	reg := prometheus.NewRegistry()
	w, err := NewWatcher(path, Options{ReplicationFactor: 1, ReloadInterval: 10 * time.Millisecond}, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	first := w.Ring()
	if first.Hashrings()[0].Name() != "first" {
		t.Fatalf("first ring: %v", first.Hashrings()[0].Name())
	}
	if got := metric(t, reg, "strata_hashring_endpoints", "hashring", "first"); got != 2 {
		t.Errorf("endpoints of first: %v", got)
	}
	if got := metric(t, reg, "strata_hashring_config_reloads_total", "result", "success"); got != 1 {
		t.Errorf("successful loads after start: %v", got)
	}
	runWatcher(t, w)

	writeFile(t, path, hashringsFile("second", "a:1", "b:1", "c:1"))
	waitFor(t, "the second ring", func() bool { return w.Ring().Hashrings()[0].Name() == "second" })

	if got := metric(t, reg, "strata_hashring_config_last_reload_successful"); got != 1 {
		t.Errorf("last reload successful: %v", got)
	}
	if got := metric(t, reg, "strata_hashring_endpoints", "hashring", "second"); got != 3 {
		t.Errorf("endpoints of second: %v", got)
	}
	if got := metric(t, reg, "strata_hashring_endpoints", "hashring", "first"); got != -1 {
		t.Errorf("the removed hashring still has a metric: %v", got)
	}
	if got := metric(t, reg, "strata_hashring_config_reloads_total", "result", "success"); got != 2 {
		t.Errorf("successful loads: %v", got)
	}
	if ts := metric(t, reg, "strata_hashring_config_last_reload_success_timestamp_seconds"); ts < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("last success timestamp %v", ts)
	}
	// The old ring is untouched: requests that took it finish on it.
	if first.Hashrings()[0].Name() != "first" || len(first.Endpoints()) != 2 {
		t.Error("a reload changed the previous ring")
	}
}

// Kubernetes mounts a ConfigMap as dir/hashrings.json -> ..data/hashrings.json,
// ..data -> ..<timestamp>, and updates it by pointing ..data at a new
// directory with one rename.
func TestWatcherKubernetesSymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	version := func(name, content string) {
		if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name, "hashrings.json"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	version("..2025_01_01_00_00_00.1", hashringsFile("v1", "a:1"))
	if err := os.Symlink("..2025_01_01_00_00_00.1", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "hashrings.json")
	if err := os.Symlink("..data/hashrings.json", path); err != nil {
		t.Fatal(err)
	}

	reg := prometheus.NewRegistry()
	w, err := NewWatcher(path, Options{ReplicationFactor: 1, ReloadInterval: 10 * time.Millisecond}, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	runWatcher(t, w)

	version("..2025_01_01_00_05_00.2", hashringsFile("v2", "a:1", "b:1"))
	if err := os.Symlink("..2025_01_01_00_05_00.2", filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "..2025_01_01_00_00_00.1")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the swapped ring", func() bool { return w.Ring().Hashrings()[0].Name() == "v2" })
	if got := metric(t, reg, "strata_hashring_endpoints", "hashring", "v2"); got != 2 {
		t.Errorf("endpoints of v2: %v", got)
	}
}

func TestWatcherKeepsRingOnBrokenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hashrings.json")
	writeFile(t, path, hashringsFile("good", "a:1", "b:1"))
	reg := prometheus.NewRegistry()
	var logs harness.LogBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	w, err := NewWatcher(path, Options{ReplicationFactor: 2}, logger, reg)
	if err != nil {
		t.Fatal(err)
	}
	good := w.Ring()

	check := func(step string, ring *Ring, successful, successes, failures float64, log string) {
		t.Helper()
		if w.Ring() != ring {
			t.Errorf("%s: ring changed", step)
		}
		if got := metric(t, reg, "strata_hashring_config_last_reload_successful"); got != successful {
			t.Errorf("%s: last reload successful = %v, want %v", step, got, successful)
		}
		if got := metric(t, reg, "strata_hashring_config_reloads_total", "result", "success"); got != successes {
			t.Errorf("%s: successes = %v, want %v", step, got, successes)
		}
		if got := metric(t, reg, "strata_hashring_config_reloads_total", "result", "failure"); got != failures {
			t.Errorf("%s: failures = %v, want %v", step, got, failures)
		}
		if log != "" && !strings.Contains(logs.String(), log) {
			t.Errorf("%s: log does not say %q:\n%s", step, log, logs.String())
		}
	}
	check("start", good, 1, 1, 0, "")

	writeFile(t, path, `[{"hashring": "good", "endpoints": ["a:1", "b:1"]`)
	w.reload()
	check("truncated file", good, 0, 1, 1, "unexpected end of JSON input")

	w.reload()
	check("same broken file again", good, 0, 1, 1, "")
	if n := strings.Count(logs.String(), "level=ERROR"); n != 1 {
		t.Errorf("an unchanged broken file was logged %d times", n)
	}

	writeFile(t, path, hashringsFile("small", "a:1"))
	w.reload()
	check("too few endpoints for rf=2", good, 0, 1, 2, `hashring \"small\": replication factor 2 needs at least 2 endpoints`)

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	w.reload()
	w.reload()
	check("file removed", good, 0, 1, 3, "no such file or directory")

	writeFile(t, path, hashringsFile("better", "a:1", "b:1", "c:1"))
	w.reload()
	if w.Ring() == good || w.Ring().Hashrings()[0].Name() != "better" {
		t.Fatal("the good file was not loaded")
	}
	check("good file", w.Ring(), 1, 2, 3, "hashrings file reloaded")
	if got := metric(t, reg, "strata_hashring_endpoints", "hashring", "better"); got != 3 {
		t.Errorf("endpoints of better: %v", got)
	}

	// Unchanged content is not loaded again.
	loaded := w.Ring()
	w.reload()
	check("unchanged", loaded, 1, 2, 3, "")
}

func TestNewWatcherFailsOnBadFirstLoad(t *testing.T) {
	dir := t.TempDir()
	reg := prometheus.NewRegistry()
	if _, err := NewWatcher(filepath.Join(dir, "missing.json"), DefaultOptions(), nil, reg); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("missing file: %v", err)
	}
	path := filepath.Join(dir, "hashrings.json")
	writeFile(t, path, `[{"hashring": "x", "endpoints": []}]`)
	if _, err := NewWatcher(path, DefaultOptions(), nil, reg); err == nil || !strings.Contains(err.Error(), `hashring "x": no endpoints`) {
		t.Errorf("bad file: %v", err)
	}
	writeFile(t, path, hashringsFile("x", "a:1"))
	if _, err := NewWatcher(path, Options{}, nil, reg); err == nil || !strings.Contains(err.Error(), "replication factor") {
		t.Errorf("bad options: %v", err)
	}
	if _, err := NewWatcher(path, Options{ReplicationFactor: 1, ReloadInterval: -time.Second}, nil, reg); err == nil || !strings.Contains(err.Error(), "reload interval") {
		t.Errorf("negative interval: %v", err)
	}
	// Failed attempts registered nothing, so a retry with the same registry works.
	if _, err := NewWatcher(path, DefaultOptions(), nil, reg); err != nil {
		t.Fatalf("retry: %v", err)
	}
	// Two watchers on one registry collide, with a clear error.
	if _, err := NewWatcher(path, DefaultOptions(), nil, reg); err == nil || !strings.Contains(err.Error(), "register hashrings file metrics") {
		t.Errorf("second watcher on one registry: %v", err)
	}
	// Without a registry, any number of watchers work.
	for range 2 {
		if _, err := NewWatcher(path, DefaultOptions(), nil, nil); err != nil {
			t.Fatal(err)
		}
	}
}

func TestStatic(t *testing.T) {
	r, err := SingleHashring([]string{"a:1"}, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	var s Source = Static(r)
	if s.Ring() != r {
		t.Error("Static changed the ring")
	}
}
