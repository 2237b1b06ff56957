package functions

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stratametrics/strata/shard"
)

// TestForwardTokenInClearIsWarned: a forward bearer token sent over plain
// http is logged once per block builder, and not for those reached over
// https.
func TestForwardTokenInClearIsWarned(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ForwardBearerTokenFile = filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(cfg.ForwardBearerTokenFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	eps, err := newEndpoints(context.Background(), &cfg, slog.New(slog.NewTextHandler(&logs, nil)), newMetrics(nil, 1))
	if err != nil {
		t.Fatal(err)
	}
	// Twice, as after a reload of the hashrings: endpoints are kept.
	for range 2 {
		ring, err := shard.SingleHashring([]string{"plain:19291", "https://secure:19291"}, cfg.shardOptions())
		if err != nil {
			t.Fatal(err)
		}
		eps.of(ring)
	}
	out := logs.String()
	if n := strings.Count(out, "in clear"); n != 1 || !strings.Contains(out, "plain:19291") {
		t.Fatalf("want one warning, for plain:19291; logged:\n%s", out)
	}
	if strings.Contains(out, "s3cret") {
		t.Fatalf("the token itself was logged:\n%s", out)
	}
}
