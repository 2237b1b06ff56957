package web

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/thanos-io/objstore/providers/filesystem"

	"github.com/stratametrics/strata/bucket/browse"
	"github.com/stratametrics/strata/bucket/metadata"
)

// The pages are tested in a real browser against blocks written by real
// block builders in cmd/strata (TestBucketWebInChromium); this tests the
// routing under a prefix and the API's answers to bad requests.
func TestHandlerUnderPrefix(t *testing.T) {
	dir := t.TempDir()
	id := ulid.Make()
	m := metadata.Meta{
		BlockMeta: tsdb.BlockMeta{ULID: id, MinTime: 1000, MaxTime: 7201000, Version: metadata.TSDBVersion1},
		Thanos:    metadata.Thanos{Labels: map[string]string{"tenant_id": "t1", "receive_replica": "r1"}, Source: metadata.ReceiveSource},
	}
	if err := os.MkdirAll(filepath.Join(dir, id.String()), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := m.Write(filepath.Join(dir, id.String())); err != nil {
		t.Fatal(err)
	}
	bkt, err := filesystem.NewBucket(dir)
	if err != nil {
		t.Fatal(err)
	}
	ui, err := New(browse.New(bkt, browse.DefaultConfig()), Options{Prefix: "/bucket/"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ui.Handler())
	defer srv.Close()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range []struct {
		path, want string
		code       int
	}{
		{"/bucket/", `data-tenant="t1"`, 200},
		{"/bucket", "/bucket/", 301},
		{"/bucket/api/tenants", `"tenant": "t1"`, 200},
		{"/bucket/api/blocks?tenant=t1&from=1970-01-01", id.String(), 200},
		{"/bucket/api/blocks?tenant=t2", "[\n]", 200},
		{"/bucket/api/blocks?until=tomorrow", "until", 400},
		{"/bucket/api/blocks/" + id.String() + "/meta.json", `"tenant_id": "t1"`, 200},
		{"/bucket/api/blocks/" + strings.ToLower(id.String()), id.String(), 200},
		{"/bucket/api/blocks/01M88-not-a-ulid", "not a block ULID", 400},
		{"/bucket/api/blocks/" + ulid.Make().String(), "no such block", 404},
		{"/bucket/api/problems", `"problems": []`, 200},
		{"/bucket/api/else", "no API endpoint", 404},
		{"/bucket/blocks/x", "not a block ULID", 400},
		{"/elsewhere", "", 404},
	} {
		resp, err := client.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		var body bytes.Buffer
		_, _ = body.ReadFrom(resp.Body)
		resp.Body.Close()
		got := body.String()
		if tc.code == 301 {
			got = resp.Header.Get("Location")
		}
		if resp.StatusCode != tc.code || !strings.Contains(got, tc.want) {
			t.Errorf("GET %s: %d %q; want %d with %q", tc.path, resp.StatusCode, got, tc.code, tc.want)
		}
		if strings.Contains(tc.path, "/api/") && tc.code >= 400 && tc.code != 404 || strings.HasPrefix(tc.path, "/bucket/api/blocks/0") && tc.code == 404 {
			var e map[string]string
			if json.Unmarshal(body.Bytes(), &e) != nil || e["error"] == "" {
				t.Errorf("GET %s: error is not JSON {\"error\": ...}: %s", tc.path, body.String())
			}
		}
	}
}
