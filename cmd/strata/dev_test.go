package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/stratametrics/strata/internal/harness"
)

// devReadyTimeout bounds the wait for a dev cluster's router to be ready;
// it is ready within seconds.
const devReadyTimeout = time.Minute

// TestDevBanner runs `strata dev` with a tenant header other than the
// default and does what its banner says, as a user would: every address
// answers, the remote_write snippet and the query curl (with the header
// the router and block builders read) write and read the tenant, and the
// browse command lists its blocks after the flush on exit. Once with the
// filesystem bucket strata dev picks itself, once with S3 from the
// environment.
func TestDevBanner(t *testing.T) {
	const header = "X-Scope-OrgID"
	for _, tc := range []struct {
		name      string
		bucketEnv func(t *testing.T) []string
	}{
		{"filesystem", func(*testing.T) []string { return nil }},
		{"s3", func(t *testing.T) []string { return harness.StartS3(t).Env() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearStrataEnv(t)
			for _, kv := range tc.bucketEnv(t) {
				k, v, _ := strings.Cut(kv, "=")
				t.Setenv(k, v)
			}
			t.Setenv("STRATA_TENANT_HEADER", header)
			dir := t.TempDir()

			stdout, stderr := newSyncBuffer("Ctrl-C flushes"), newSyncBuffer("")
			ctx, stop := context.WithCancel(context.Background())
			defer stop()
			devErr := make(chan error, 1)
			go func() {
				devErr <- runDev(ctx, []string{"-data-dir", dir, "-listen", "127.0.0.1:0", "-blockbuilders", "2", "-rf", "2"}, stdout, stderr)
			}()
			select {
			case <-stdout.seen:
			case err := <-devErr:
				t.Fatalf("strata dev exited before its banner: %v\n%s", err, stderr)
			}
			banner := stdout.String()
			t.Logf("banner:\n%s", banner)
			must := func(re string) []string {
				t.Helper()
				m := regexp.MustCompile(re).FindStringSubmatch(banner)
				if m == nil {
					t.Fatalf("the banner lacks %s:\n%s", re, banner)
				}
				return m
			}

			router := must(`(?m)^  router +http://(\S+)/api/v1/receive`)[1]
			waitDevReady(t, "http://"+router+"/-/ready", devErr, stderr)
			bbs := regexp.MustCompile(`(?m)^  blockbuilder-(\d) http://(\S+)   StoreAPI (\S+)   \(replica label receive_replica="blockbuilder-(\d)"\)$`).FindAllStringSubmatch(banner, -1)
			if len(bbs) != 2 {
				t.Fatalf("the banner names %d block builders, want 2:\n%s", len(bbs), banner)
			}
			for i, bb := range bbs {
				if bb[1] != bb[4] || bb[1] != string(rune('0'+i)) {
					t.Errorf("block builder line %d names replica %s as %s", i, bb[1], bb[4])
				}
				// The router is ready only once every block builder is.
				if code := httpGet(t, "http://"+bb[2]+"/-/ready", nil); code != http.StatusOK {
					t.Errorf("block builder %s at %s: /-/ready answers %d", bb[1], bb[2], code)
				}
				c, err := net.Dial("tcp", bb[3])
				if err != nil {
					t.Errorf("block builder %s's StoreAPI %s: %v", bb[1], bb[3], err)
				} else {
					c.Close()
				}
			}
			if ui := must(`bucket web UI  (http://\S+/bucket/)`)[1]; httpGet(t, ui, nil) != http.StatusOK {
				t.Errorf("the bucket web UI %s does not answer 200", ui)
			}

			rw := must(`remote_write:\n    - url: (\S+)\n      headers:\n        ([^:]+): (\S+)\n`)
			if rw[1] != "http://"+router+"/api/v1/receive" || rw[2] != header || rw[3] != "team-a" {
				t.Errorf("remote_write url %s, header %s: %s; want the router's and %s: team-a", rw[1], rw[2], rw[3], header)
			}
			req := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
				Labels:  []prompb.Label{{Name: "__name__", Value: "up"}, {Name: "job", Value: "banner"}},
				Samples: []prompb.Sample{{Value: 1, Timestamp: time.Now().UnixMilli()}},
			}}}
			remoteWrite(t, rw[1], http.Header{rw[2]: {rw[3]}}, req)

			q := must(`curl '(\S+)' -H '([^:]+): (\S+)'`)
			if q[2] != header || q[3] != "team-a" || !strings.HasPrefix(q[1], "http://"+bbs[0][2]+"/api/v1/query?") {
				t.Errorf("query %s with header %s: %s; want block builder 0 and %s: team-a", q[1], q[2], q[3], header)
			}
			if got := querySeries(t, q[1], http.Header{q[2]: {q[3]}}); len(got) != 1 || got[0]["job"] != "banner" {
				t.Errorf("the banner's query returns %v, want the series written as team-a", got)
			}

			stop()
			if err := <-devErr; err != nil {
				t.Fatalf("strata dev: %v\n%s", err, stderr)
			}
			browse := must(`Browse the bucket[^\n]*:\n\n  ((?:STRATA_[A-Z_]+=\S+ )?)strata bucket ls\n`)
			if k, v, ok := strings.Cut(strings.TrimSpace(browse[1]), "="); ok {
				t.Setenv(k, v)
			}
			out := mustStrata(t, "bucket", "ls")
			for _, want := range []string{"TENANT team-a  REPLICA blockbuilder-0", "TENANT team-a  REPLICA blockbuilder-1"} {
				if !strings.Contains(out, want) {
					t.Errorf("the banner's browse command does not list %q:\n%s", want, out)
				}
			}
		})
	}
}

// clearStrataEnv removes the STRATA_* variables of whoever runs the tests
// (but the tests' own), so that only what a test sets configures strata.
func clearStrataEnv(t *testing.T) {
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "STRATA_") && !strings.HasPrefix(k, "STRATA_TEST_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
}

// syncBuffer collects what goroutines write and closes seen once the
// text holds marker.
type syncBuffer struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	marker string
	seen   chan struct{}
}

func newSyncBuffer(marker string) *syncBuffer {
	return &syncBuffer{marker: marker, seen: make(chan struct{})}
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.buf.Write(p)
	select {
	case <-b.seen:
	default:
		if b.marker != "" && strings.Contains(b.buf.String(), b.marker) {
			close(b.seen)
		}
	}
	return n, err
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitDevReady polls url until it answers 200, failing if strata dev
// exits first or devReadyTimeout passes.
func waitDevReady(t *testing.T, url string, devErr chan error, logs *syncBuffer) {
	t.Helper()
	deadline := time.Now().Add(devReadyTimeout)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-devErr:
			t.Fatalf("strata dev exited before %s was ready: %v\n%s", url, err, logs)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready within %v\n%s", url, devReadyTimeout, logs)
		}
	}
}

func httpGet(t *testing.T, url string, h http.Header) int {
	t.Helper()
	resp := getWith(t, url, h)
	resp.Body.Close()
	return resp.StatusCode
}

// getWith sends a GET with headers h; the caller closes the body.
func getWith(t *testing.T, url string, h http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = h
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// querySeries runs a Prometheus instant query and returns the labels of
// the series it answers.
func querySeries(t *testing.T, url string, h http.Header) []map[string]string {
	t.Helper()
	resp := getWith(t, url, h)
	defer resp.Body.Close()
	var res struct {
		Status string `json:"status"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil || resp.StatusCode != http.StatusOK || res.Status != "success" {
		t.Fatalf("GET %s: %s, %v", url, resp.Status, err)
	}
	var out []map[string]string
	for _, r := range res.Data.Result {
		out = append(out, r.Metric)
	}
	return out
}
