//go:build unix

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"

	"github.com/stratametrics/strata/blockbuilder/shipper"
)

// TestBlockBuilderNotReadyDuringReplay: a block builder serves from the
// start, so /-/healthy answers while it replays its tenants' WALs, but
// /-/ready answers 503, and writes get 503 with Retry-After (the router
// routes around it), until every tenant is open; then it is ready, with
// the replayed data. Its GOGC is replayGOGC during the replay, then
// blockBuilderGOGC.
func TestBlockBuilderNotReadyDuringReplay(t *testing.T) {
	t.Setenv("GOGC", "")
	os.Unsetenv("GOGC")
	before := gcPercent()
	t.Cleanup(func() { debug.SetGCPercent(before) })
	cfg := testBlockBuilderConfig(t)
	tenantDir := filepath.Join(cfg.DataDir, "team-a")
	writeWAL(t, tenantDir, "replay_test_metric", 3, time.Now())
	// Opening a tenant reads its shipper ledger, then replays its WAL. A
	// FIFO in place of the ledger holds the open there until the test
	// writes the ledger into it: the block builder is caught before its
	// replay is done, with no hook in the code and no sleep.
	ledger := filepath.Join(tenantDir, shipper.LedgerFilename)
	if err := syscall.Mkfifo(ledger, 0o644); err != nil {
		t.Fatalf("make the ledger a FIFO: %v", err)
	}
	s := serveBlockBuilder(t, cfg)
	released := make(chan error, 1)
	var once sync.Once
	release := func() {
		once.Do(func() {
			go func() { released <- os.WriteFile(ledger, []byte(`{"version": 1, "uploaded": []}`), 0o644) }()
		})
	}
	// Cleanups run last first: a failing test releases the open before
	// the block builder is stopped, which waits for it.
	t.Cleanup(release)

	base := "http://" + s.addr
	// Bounded only so that a block builder that does not serve during
	// its replay fails the test instead of hanging it.
	probe := &http.Client{Timeout: time.Minute}
	resp, err := probe.Get(base + "/-/healthy")
	if err != nil {
		t.Fatalf("/-/healthy during replay: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/-/healthy during replay: %s, want 200", resp.Status)
	}
	if code, _, body := get(t, base+"/-/ready"); code != http.StatusServiceUnavailable {
		t.Fatalf("/-/ready during replay: %d %s, want 503", code, body)
	}
	if resp := writeSeries(t, s.addr, "team-b", "replay_test_metric", 1, time.Now()); resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("write during replay: %s, Retry-After %q; want 503 with Retry-After", resp.Status, resp.Header.Get("Retry-After"))
	}
	select {
	case <-s.started:
		t.Fatal("block builder started before its tenant was opened")
	default:
	}
	if got := gcPercent(); got != replayGOGC {
		t.Errorf("GOGC during replay: %d, want %d", got, replayGOGC)
	}

	release()
	s.ready(t)
	if err := <-released; err != nil {
		t.Fatalf("write the ledger: %v", err)
	}
	if code, _, body := get(t, base+"/-/ready"); code != http.StatusOK {
		t.Fatalf("/-/ready after replay: %d %s, want 200", code, body)
	}
	if got := gcPercent(); got != blockBuilderGOGC {
		t.Errorf("GOGC after replay: %d, want %d", got, blockBuilderGOGC)
	}
	if got := queryCount(t, base, "team-a", "replay_test_metric"); got != "3" {
		t.Fatalf("%s series after replay, want the 3 of the WAL", got)
	}
	if resp := writeSeries(t, s.addr, "team-b", "replay_test_metric", 1, time.Now()); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("write after replay: %s, want 204", resp.Status)
	}
}

// gcPercent reads the GOGC in effect.
func gcPercent() int {
	p := debug.SetGCPercent(-1)
	debug.SetGCPercent(p)
	return p
}

// writeWAL leaves in dir what a previous run that stopped without
// flushing leaves: a TSDB whose samples are only in its WAL.
func writeWAL(t *testing.T, dir, name string, series int, ts time.Time) {
	t.Helper()
	db, err := tsdb.Open(dir, nil, nil, tsdb.DefaultOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	db.DisableCompactions()
	app := db.Appender(context.Background())
	for i := range series {
		if _, err := app.Append(0, labels.FromStrings("__name__", name, "instance", fmt.Sprintf("host-%d", i)), ts.UnixMilli(), float64(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// queryCount asks the block builder's query API for count(name) of a
// tenant and returns the value.
func queryCount(t *testing.T, base, tenant, name string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/api/v1/query?query="+url.QueryEscape("count("+name+")"), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("THANOS-TENANT", tenant)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var answer struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &answer); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("query: %s %s (%v)", resp.Status, body, err)
	}
	if len(answer.Data.Result) != 1 {
		t.Fatalf("query count(%s): %s, want one result", name, body)
	}
	return fmt.Sprint(answer.Data.Result[0].Value[1])
}
