package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/stratametrics/strata/bucket/browse"
	"github.com/stratametrics/strata/bucket/web"
	"github.com/stratametrics/strata/internal/harness"
)

// ScreenshotEnv, when "1", makes the web test copy its screenshot to
// bucket/web/testdata/screenshot.png, for the README and reviews.
const ScreenshotEnv = "STRATA_TEST_SCREENSHOT"

// chromium runs Debian's headless Chromium with a fresh profile and
// returns its stdout. The timeout only keeps a hung browser from holding
// the test run; nothing is asserted on time.
func chromium(t *testing.T, args ...string) string {
	t.Helper()
	bin := harness.Tool(t, "chromium")
	base := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic",
		"--disable-dev-shm-usage", "--user-data-dir=" + t.TempDir(),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return stdout.String()
}

// waitHTTP waits until url answers 200.
func waitHTTP(t *testing.T, url string, proc *harness.Process) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer 200: %v\n%s", url, err, proc.Logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func get(t *testing.T, url string) (int, http.Header, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// TestBucketWebInChromium serves a bucket written by real block builders
// with the real strata binary and reads its pages in a real browser.
func TestBucketWebInChromium(t *testing.T) {
	harness.Tool(t, "chromium") // before starting anything
	f := newBucketFixture(t)
	bb0, bb1 := f.blockBuilder("bb-0"), f.blockBuilder("bb-1")
	f.write(bb0, "team-a", 6)
	f.write(bb1, "team-a", 6)
	f.write(bb0, "team-b", 3)
	f.flush(bb0, bb1)
	twin := f.blockBuilder("bb-0") // overlaps bb-0's team-a block
	f.write(twin, "team-a", 6)
	f.flush(twin)
	infos := f.blocks()
	partial := f.partialUpload(infos[0].Meta.ULID)
	f.age(partial, 3*time.Hour)

	addr := harness.FreeAddr(t)
	proc := harness.StartProcess(t, harness.Tool(t, "strata"), []string{"bucket", "web", "--listen", addr}, f.s3.Env())
	base := "http://" + addr
	waitHTTP(t, base+"/api/problems", proc)

	t.Run("index page", func(t *testing.T) {
		dom := chromium(t, "--dump-dom", base+"/")
		for _, want := range []string{
			`<section class="tenant" id="tenant-team-a" data-tenant="team-a">`,
			`<section class="tenant" id="tenant-team-b" data-tenant="team-b">`,
			`data-replica="bb-0"`, `data-replica="bb-1"`,
			`data-kind="overlap"`,
			`data-kind="partial-upload" data-block="` + partial.String() + `"`,
			"<svg",
		} {
			if !strings.Contains(dom, want) {
				t.Errorf("page lacks %s", want)
			}
		}
		for _, b := range infos {
			id := b.Meta.ULID.String()
			// A bar in the timeline and a row in the table.
			if n := strings.Count(dom, `data-ulid="`+id+`"`); n != 2 {
				t.Errorf("block %s (tenant %s) appears %d times, want a bar and a row", id, b.Tenant, n)
			}
			start := strings.Index(dom, `<section class="tenant" id="tenant-`+b.Tenant+`"`)
			if start < 0 {
				continue // reported above
			}
			section := dom[start:]
			if end := strings.Index(section, "</section>"); end < 0 || !strings.Contains(section[:end], id) {
				t.Errorf("block %s is not in tenant %s's section", id, b.Tenant)
			}
		}
		if strings.Contains(dom, `data-ulid="`+partial.String()+`"`) {
			t.Errorf("the partial upload is drawn as a block")
		}
		if t.Failed() {
			t.Logf("DOM:\n%s\nserver log:\n%s", dom, proc.Logs())
		}
	})

	t.Run("filter", func(t *testing.T) {
		dom := chromium(t, "--dump-dom", base+"/?tenant=team-b")
		for _, b := range infos {
			if got := strings.Contains(dom, `data-ulid="`+b.Meta.ULID.String()+`"`); got != (b.Tenant == "team-b") {
				t.Errorf("?tenant=team-b: block of %s shown: %v", b.Tenant, got)
			}
		}
	})

	t.Run("block page", func(t *testing.T) {
		m := infos[slices.IndexFunc(infos, func(b harness.BlockInfo) bool { return b.Tenant == "team-a" })].Meta
		dom := chromium(t, "--dump-dom", base+"/blocks/"+m.ULID.String())
		for _, want := range []string{
			`<h1 class="mono" id="ulid">` + m.ULID.String() + `</h1>`,
			`<div id="tenant">team-a</div>`,
			`<span id="index-series">6</span>`,
			`id="download-meta"`, "Download meta.json",
			`<td class="mono">instance</td><td class="num">6</td><td class="num">6</td>`,
			`chunks/000001`,
		} {
			if !strings.Contains(dom, want) {
				t.Errorf("block page lacks %s\n%s", want, dom)
			}
		}
		// The download is the object in the bucket, byte for byte.
		code, hdr, body := get(t, base+"/api/blocks/"+m.ULID.String()+"/meta.json")
		rc, err := f.bkt.Get(context.Background(), harness.BlockPath(m.ULID, "meta.json"))
		if err != nil {
			t.Fatal(err)
		}
		want, _ := io.ReadAll(rc)
		rc.Close()
		if code != 200 || !bytes.Equal(body, want) || !strings.HasPrefix(hdr.Get("Content-Disposition"), "attachment;") {
			t.Errorf("meta.json download: %d %v\n%s", code, hdr, body)
		}
		dom = chromium(t, "--dump-dom", base+"/blocks/"+partial.String())
		if !strings.Contains(dom, "no meta.json") {
			t.Errorf("the partial upload's page does not say it has no meta.json:\n%s", dom)
		}
	})

	t.Run("api", func(t *testing.T) {
		code, _, body := get(t, base+"/api/tenants")
		var ts []web.TenantSummary
		if err := json.Unmarshal(body, &ts); err != nil || code != 200 {
			t.Fatalf("/api/tenants: %d %v\n%s", code, err, body)
		}
		if len(ts) != 2 || ts[0].Tenant != "team-a" || len(ts[0].Replicas) != 2 || ts[1].Tenant != "team-b" || len(ts[1].Replicas) != 1 {
			t.Errorf("/api/tenants: %+v", ts)
		}
		code, _, body = get(t, base+"/api/blocks?tenant=team-b")
		var rows []browse.Row
		if err := json.Unmarshal(body, &rows); err != nil || code != 200 {
			t.Fatalf("/api/blocks: %d %v\n%s", code, err, body)
		}
		var got []string
		for _, r := range rows {
			got = append(got, r.ULID)
		}
		if want := idsOf(infos, func(b harness.BlockInfo) bool { return b.Tenant == "team-b" }); !slices.Equal(got, want) {
			t.Errorf("/api/blocks?tenant=team-b: %v, want %v", got, want)
		}
		code, _, body = get(t, base+"/api/blocks/"+infos[0].Meta.ULID.String())
		var in browse.Inspection
		if err := json.Unmarshal(body, &in); err != nil || code != 200 || in.Index == nil || in.Index.Series != infos[0].Meta.Stats.NumSeries {
			t.Errorf("/api/blocks/ULID: %d %v %+v", code, err, in.Index)
		}
		for _, tc := range []struct {
			path string
			code int
		}{
			{"/api/blocks?from=someday", 400},
			{"/api/blocks?from=now&until=-1h", 400},
			{"/api/blocks/not-a-ulid", 400},
			{"/api/blocks/" + ulid.Make().String(), 404},
			{"/api/blocks/" + ulid.Make().String() + "/meta.json", 404},
			{"/api/nothing", 404},
			{"/blocks/not-a-ulid", 400},
		} {
			code, _, body := get(t, base+tc.path)
			if code != tc.code || len(body) == 0 {
				t.Errorf("GET %s: %d %s, want %d", tc.path, code, body, tc.code)
			}
		}
	})

	t.Run("screenshot", func(t *testing.T) {
		png := filepath.Join(t.TempDir(), "bucket.png")
		chromium(t, "--screenshot="+png, "--window-size=1280,900", "--hide-scrollbars", base+"/")
		b, err := os.ReadFile(png)
		if err != nil || !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
			t.Fatalf("screenshot: %v (%d bytes)", err, len(b))
		}
		if os.Getenv(ScreenshotEnv) == "1" {
			dst := filepath.Join("..", "..", "bucket", "web", "testdata", "screenshot.png")
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dst, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// TestDevServesBucketWeb checks that `strata dev` serves the web UI under
// /bucket/ on the router's port, next to the router.
func TestDevServesBucketWeb(t *testing.T) {
	bin := harness.Tool(t, "strata")
	dir := t.TempDir()
	proc := harness.StartProcess(t, bin, []string{"dev", "--data-dir", dir, "--listen", "127.0.0.1:0", "--blockbuilders", "1", "--rf", "1"}, nil)
	re := regexp.MustCompile(`bucket web UI  (http://[0-9.:]+/bucket/)`)
	deadline := time.Now().Add(60 * time.Second)
	var url string
	for url == "" {
		if m := re.FindStringSubmatch(proc.Logs()); m != nil {
			url = m[1]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dev banner names no bucket web UI:\n%s", proc.Logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	waitHTTP(t, url, proc)
	code, _, body := get(t, url)
	if code != 200 || !strings.Contains(string(body), "Strata bucket") || !strings.Contains(string(body), "filesystem:"+filepath.Join(dir, "bucket")) {
		t.Errorf("GET %s: %d\n%s", url, code, body)
	}
	if code, _, _ := get(t, strings.TrimSuffix(url, "/bucket/")+"/metrics"); code != 200 {
		t.Errorf("the router's /metrics answers %d next to the UI", code)
	}
	if code, _, body := get(t, url+"api/tenants"); code != 200 || strings.TrimSpace(string(body)) != "[]" {
		t.Errorf("/bucket/api/tenants of an empty dev bucket: %d %s", code, body)
	}
}
