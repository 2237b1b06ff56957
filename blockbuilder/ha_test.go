package blockbuilder

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/thanos-io/objstore"

	"github.com/stratametrics/strata/internal/forwarding"
	"github.com/stratametrics/strata/internal/harness"
)

// TestElectHandler: the block builder answers HA elections, keeps them
// across a restart on its data directory, counts and exports them, and
// refuses asks it cannot take with a 400 that says why.
func TestElectHandler(t *testing.T) {
	dir := t.TempDir()
	reg := prometheus.NewRegistry()
	b := newTestBlockBuilder(t, objstore.NewInMemBucket(), reg, func(c *Config) { c.DataDir = dir; c.HAMaxClusters = 1 })
	ask := func(b *BlockBuilder, body string) (int, string) {
		t.Helper()
		w := httptest.NewRecorder()
		b.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodPost, forwarding.ElectPath, strings.NewReader(body)))
		if w.Code != http.StatusOK {
			return w.Code, w.Body.String()
		}
		var res forwarding.ElectResponse
		if err := json.Unmarshal(w.Body.Bytes(), &res); err != nil {
			t.Fatal(err)
		}
		return w.Code, res.Replica
	}
	for _, c := range []struct{ body, want string }{
		{`{"tenant":"t","cluster":"prod","replica":"a","timeout_ms":30000}`, "a"},
		{`{"tenant":"t","cluster":"prod","replica":"b","timeout_ms":30000}`, "a"},
	} {
		if code, got := ask(b, c.body); code != 200 || got != c.want {
			t.Fatalf("%s: %d %s, want %s", c.body, code, got, c.want)
		}
	}
	if code, msg := ask(b, `{"tenant":"t","cluster":"dev","replica":"a","timeout_ms":30000}`); code != 503 || !strings.Contains(msg, "too many HA clusters") {
		t.Fatalf("a second cluster over STRATA_HA_MAX_CLUSTERS=1: %d %q, want 503", code, msg)
	}
	if v := harness.Gathered(t, reg, "strata_blockbuilder_ha_elected_replica", "tenant", "t", "cluster", "prod", "replica", "a"); v != 1 {
		t.Fatalf("elected replica gauge %v", v)
	}
	if v := harness.Gathered(t, reg, "strata_blockbuilder_ha_elections_total", "kind", "first"); v != 1 {
		t.Fatalf("elections %v, want 1", v)
	}
	for _, c := range []struct{ body, says string }{
		{`{`, "HA election request"},
		{`{"tenant":"t","cluster":"","replica":"a","timeout_ms":1}`, "cluster and replica"},
		{`{"tenant":"../x","cluster":"c","replica":"a","timeout_ms":1}`, "tenant"},
		{`{"tenant":"t","cluster":"c","replica":"a"}`, "timeout_ms"},
	} {
		if code, msg := ask(b, c.body); code != 400 || !strings.Contains(msg, c.says) {
			t.Errorf("%s: %d %q, want 400 saying %q", c.body, code, msg, c.says)
		}
	}
	// A restart on the same directory keeps a elected.
	if err := b.shutdown(); err != nil {
		t.Fatal(err)
	}
	b2 := newTestBlockBuilder(t, objstore.NewInMemBucket(), nil, func(c *Config) { c.DataDir = dir })
	if code, got := ask(b2, `{"tenant":"t","cluster":"prod","replica":"b","timeout_ms":30000}`); code != 200 || got != "a" {
		t.Fatalf("after a restart: %d %s, want a still elected", code, got)
	}
}
