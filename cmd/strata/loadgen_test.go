package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/stratametrics/strata/blockbuilder"
	"github.com/stratametrics/strata/loadgen"
)

// startBlockBuilder serves a real block builder in this process, on a
// filesystem bucket, and returns its address.
func startBlockBuilder(t *testing.T) string {
	t.Helper()
	cfg := blockbuilder.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Bucket.Dir = t.TempDir()
	cfg.ReplicaName = "loadgen-test"
	s := serveBlockBuilder(t, cfg)
	s.ready(t)
	return s.addr
}

// TestLoadgenAgainstBlockBuilder drives a real block builder through the
// command and reads its JSON report: every sample acknowledged, and this
// process (which serves the block builder) measured.
func TestLoadgenAgainstBlockBuilder(t *testing.T) {
	pprofOn(t, true)
	addr := startBlockBuilder(t)
	for _, proto := range []string{"1", "2"} {
		var stdout, stderr bytes.Buffer
		err := runLoadgen(context.Background(), []string{
			"-url", "http://" + addr + "/api/v1/receive", "-tenant", "team-" + proto, "-protocol", proto,
			"-series", "3000", "-samples-per-request", "500", "-concurrency", "2",
			"-duration", "0", "-rounds", "3", "-warmup-rounds", "1", "-pid", fmt.Sprint(os.Getpid()), "-o", "json",
		}, &stdout, &stderr)
		if err != nil {
			t.Fatalf("protocol %s: %v\n%s", proto, err, stderr.String())
		}
		var rep loadgen.Report
		if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
			t.Fatalf("protocol %s: report is not JSON: %v\n%s", proto, err, stdout.String())
		}
		if rep.AckedSamples != 9000 || len(rep.Errors) != 0 {
			t.Errorf("protocol %s: acknowledged %d of 9000 samples, errors %v %v", proto, rep.AckedSamples, rep.Errors, rep.ErrorExamples)
		}
		if len(rep.Processes) != 1 || rep.Processes[0].Pid != os.Getpid() || rep.Processes[0].PeakRSSBytes == 0 {
			t.Errorf("protocol %s: processes %+v, want this one", proto, rep.Processes)
		}
	}

	// The profiler answers because STRATA_PPROF=1.
	resp, err := http.Get("http://" + addr + "/debug/pprof/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/debug/pprof/cmdline: %s with STRATA_PPROF=1", resp.Status)
	}
}

func TestPprofOffByDefault(t *testing.T) {
	pprofOn(t, false)
	addr := startBlockBuilder(t)
	resp, err := http.Get("http://" + addr + "/debug/pprof/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Errorf("/debug/pprof/ is served without STRATA_PPROF=1")
	}
}

// pprofOn sets what STRATA_PPROF set at the start of the command, for the
// components a test starts in this process.
func pprofOn(t *testing.T, on bool) {
	old := debugging
	debugging.Pprof = on
	t.Cleanup(func() { debugging = old })
}

// TestPprofVariableIsChecked: STRATA_PPROF is read, as every variable, at
// the start of every command, and a value that is not a boolean stops it.
func TestPprofVariableIsChecked(t *testing.T) {
	t.Cleanup(func() { debugging = debugConfig{} })
	t.Setenv("STRATA_PPROF", "true")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"version"}, &stdout, &stderr); code != 0 || !debugging.Pprof {
		t.Fatalf("STRATA_PPROF=true: exit %d, profiler on: %v; %s", code, debugging.Pprof, stderr.String())
	}
	t.Setenv("STRATA_PPROF", "sure")
	stderr.Reset()
	if code := run([]string{"version"}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "PPROF") {
		t.Fatalf("STRATA_PPROF=sure: exit %d, want 2 naming the variable; %s", code, stderr.String())
	}
}

func TestLoadgenText(t *testing.T) {
	addr := startBlockBuilder(t)
	var stdout, stderr bytes.Buffer
	t.Setenv("STRATA_LOADGEN_SERIES", "500") // the variable sets the default
	err := runLoadgen(context.Background(), []string{"-url", "http://" + addr + "/api/v1/receive", "-duration", "0", "-rounds", "2"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	for _, want := range []string{"500 series", "samples/s", "latency", "errors           none", "1,000 samples acknowledged"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, stdout.String())
		}
	}
}

func TestLoadgenUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{}, "url"},
		{[]string{"-url", "http://127.0.0.1:1/x", "-o", "yaml"}, "-o must be text or json"},
		{[]string{"-url", "http://127.0.0.1:1/x", "-protocol", "3"}, "protocol"},
		{[]string{"-url", "http://127.0.0.1:1/x", "-pid", "x"}, "process ID"},
		{[]string{"-url", "http://127.0.0.1:1/x", "extra"}, "unexpected arguments"},
	} {
		var stdout, stderr bytes.Buffer
		err := runLoadgen(context.Background(), tc.args, &stdout, &stderr)
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error()+stderr.String(), tc.want) {
			t.Errorf("%q: err %v, want a usage error mentioning %q", tc.args, err, tc.want)
		}
	}
}

// TestLoadgenUnsortedLabels checks that -unsorted-labels, or its
// variable, reaches the requests: a receiver that decodes them with the
// generated code finds every series' labels out of order.
func TestLoadgenUnsortedLabels(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  string
	}{
		{"flag", []string{"-unsorted-labels"}, ""},
		{"variable", nil, "true"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("STRATA_LOADGEN_UNSORTED_LABELS", tc.env)
			var series, sorted atomic.Int64
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				raw, err := snappy.Decode(nil, body)
				var req prompb.WriteRequest
				if err == nil {
					err = req.Unmarshal(raw)
				}
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				for _, ts := range req.Timeseries {
					series.Add(1)
					if slices.IsSortedFunc(ts.Labels, func(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) }) {
						sorted.Add(1)
					}
				}
				w.WriteHeader(http.StatusNoContent)
			}), ReadHeaderTimeout: time.Second}
			go srv.Serve(l)
			t.Cleanup(func() { srv.Close() })
			var stdout, stderr bytes.Buffer
			args := append([]string{"-url", "http://" + l.Addr().String() + "/api/v1/receive", "-series", "100", "-duration", "0", "-rounds", "1"}, tc.args...)
			if err := runLoadgen(context.Background(), args, &stdout, &stderr); err != nil {
				t.Fatalf("%v\n%s", err, stderr.String())
			}
			if series.Load() != 100 || sorted.Load() != 0 {
				t.Errorf("%d series received, %d of them with sorted labels; want 100, none", series.Load(), sorted.Load())
			}
			if !strings.Contains(stdout.String(), "labels unsorted") {
				t.Errorf("the report does not say the labels were unsorted:\n%s", stdout.String())
			}
		})
	}
}

// TestLoadgenNothingAcked fails the command when the receiver takes
// nothing, naming what it answered.
func TestLoadgenNothingAcked(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "no such tenant", http.StatusBadRequest)
	}), ReadHeaderTimeout: time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	var stdout, stderr bytes.Buffer
	err = runLoadgen(context.Background(), []string{"-url", "http://" + l.Addr().String() + "/api/v1/receive", "-series", "10", "-duration", "0", "-rounds", "1"}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "no such tenant") {
		t.Errorf("err %v, want one quoting the 400 answer", err)
	}
}
