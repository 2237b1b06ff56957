// Command gen writes the files monitoring renders (the rules file, the
// chart's PrometheusRule and dashboards, the runbook) into the repository:
// `make monitoring`, or go run ./monitoring/cmd/gen from the repository
// root. Dashboard JSON files no dashboard makes are removed, so that the
// chart ships no stale one.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/stratametrics/strata/monitoring"
)

func main() {
	root := flag.String("root", ".", "the repository root")
	flag.Parse()
	if err := run(*root); err != nil {
		fmt.Fprintln(os.Stderr, "monitoring/cmd/gen:", err)
		os.Exit(1)
	}
}

func run(root string) error {
	if _, err := os.Stat(filepath.Join(root, "monitoring", "alerts.go")); err != nil {
		return fmt.Errorf("%s is not the repository root (run from it, or pass -root): %w", root, err)
	}
	files, err := monitoring.Files()
	if err != nil {
		return err
	}
	keep := map[string]bool{}
	for _, f := range files {
		p := filepath.Join(root, filepath.FromSlash(f.Path))
		keep[p] = true
		if old, err := os.ReadFile(p); err == nil && bytes.Equal(old, f.Data) {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			return err
		}
		fmt.Println("wrote", f.Path)
	}
	stale, err := filepath.Glob(filepath.Join(root, filepath.FromSlash(monitoring.DashboardsDir), "*.json"))
	if err != nil {
		return err
	}
	for _, p := range stale {
		if !keep[p] {
			if err := os.Remove(p); err != nil {
				return err
			}
			fmt.Println("removed", p)
		}
	}
	return nil
}
