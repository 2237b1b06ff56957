package filewatch

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stratametrics/strata/internal/harness"
)

// value reads one series of reg: the metric name and label pairs.
func value(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
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
		for _, m := range mf.Metric {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, l := range m.Label {
					if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			if g := m.GetGauge(); g != nil {
				return g.GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	return -1
}

// TestBrokenRotationIsLoggedAndCounted: a file rotated into something
// that does not parse (a certificate half-way through a rotation) keeps
// the last good value, and says so once in the log and in the metrics,
// both the file's own and the shared family; the next good content loads.
func TestBrokenRotationIsLoggedAndCounted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "value")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("good-1")
	var logs harness.LogBuffer
	named := NewMetrics("test_named", "test file")
	loads := 0
	f, err := New(Config[string]{
		What: "test file", Paths: []string{path}, Interval: time.Hour,
		Parse: func(c [][]byte) (string, error) {
			if !strings.HasPrefix(string(c[0]), "good") {
				return "", errors.New("not good")
			}
			return string(c[0]), nil
		},
		OnLoad: func(string) { loads++ },
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Named:  named,
	})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	if err := named.Register(reg); err != nil {
		t.Fatal(err)
	}
	if err := Register(reg); err != nil {
		t.Fatal(err)
	}
	if f.Value() != "good-1" || loads != 1 {
		t.Fatalf("value %q after %d loads", f.Value(), loads)
	}

	write("bad")
	f.Reload()
	f.Reload()
	if f.Value() != "good-1" {
		t.Fatalf("a broken file replaced the value: %q", f.Value())
	}
	if n := strings.Count(logs.String(), "level=ERROR"); n != 1 || !strings.Contains(logs.String(), "not good") {
		t.Fatalf("want one error naming the problem, logged:\n%s", logs.String())
	}
	if v := value(t, reg, "test_named_last_reload_successful"); v != 0 {
		t.Errorf("own metric: last reload successful %v", v)
	}
	if v := value(t, reg, "strata_config_file_last_reload_successful", "file", path); v != 0 {
		t.Errorf("shared metric: last reload successful %v", v)
	}
	if v := value(t, reg, "strata_config_file_reloads_total", "file", path, "result", "failure"); v != 1 {
		t.Errorf("shared metric: failures %v", v)
	}

	write("good-2")
	f.Reload()
	if f.Value() != "good-2" || loads != 2 {
		t.Fatalf("value %q after %d loads", f.Value(), loads)
	}
	if v := value(t, reg, "strata_config_file_last_reload_successful", "file", path); v != 1 {
		t.Errorf("shared metric after the good file: %v", v)
	}
	if !strings.Contains(logs.String(), "test file reloaded") {
		t.Errorf("the reload was not logged:\n%s", logs.String())
	}
}

// TestFreshReadsAtMostEveryInterval: on-use callers read the file only
// once the interval has passed.
func TestFreshReadsAtMostEveryInterval(t *testing.T) {
	path := filepath.Join(t.TempDir(), "value")
	if err := os.WriteFile(path, []byte("a"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := New(Config[string]{What: "test file", Paths: []string{path}, Interval: 50 * time.Millisecond,
		Parse: func(c [][]byte) (string, error) { return string(c[0]), nil }})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("b"), 0o600); err != nil {
		t.Fatal(err)
	}
	if v := f.Fresh(); v != "a" {
		t.Fatalf("read before the interval passed: %q", v)
	}
	time.Sleep(60 * time.Millisecond)
	if v := f.Fresh(); v != "b" {
		t.Fatalf("not read after the interval: %q", v)
	}
}

func TestNewFailsOnUnreadableFile(t *testing.T) {
	_, err := New(Config[string]{What: "test file", Paths: []string{filepath.Join(t.TempDir(), "missing")}, Interval: time.Second,
		Parse: func(c [][]byte) (string, error) { return string(c[0]), nil }})
	if err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("err = %v", err)
	}
}
