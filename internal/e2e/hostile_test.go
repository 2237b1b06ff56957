package e2e

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/stratametrics/strata/internal/harness"
	"github.com/stratametrics/strata/loadgen"
)

// TestHostileInput sends, over real HTTP to a real router in front of a
// real block builder, one bad request per row and checks the status and
// the message; after each row both processes must be healthy and their
// memory bounded.
func TestHostileInput(t *testing.T) { hostileInput(t, false) }

// TestHostileInputShuffledLabels: the same rows with every series' labels
// out of order get the same answers: valid ones stored, defective ones
// refused for the same defect.
func TestHostileInputShuffledLabels(t *testing.T) { hostileInput(t, true) }

func hostileInput(t *testing.T, shuffle bool) {
	bbs := []*harness.Component{harness.StartBlockBuilder(t, "hostile-0", []string{"STRATA_BUCKET_DIR=" + t.TempDir()})}
	router := harness.StartRouter(t, bbs, 1)
	now := time.Now().UnixMilli()
	// Reversed, then the first moved last: no label set of a row stays
	// sorted, and __name__ never comes first.
	order := func(ls []prompb.Label) {
		if shuffle && len(ls) > 1 {
			slices.Reverse(ls)
			first := ls[0]
			copy(ls, ls[1:])
			ls[len(ls)-1] = first
		}
	}

	one := func(mutate func(*prompb.TimeSeries)) []byte {
		ts := prompb.TimeSeries{
			Labels:  []prompb.Label{{Name: "__name__", Value: "hostile"}, {Name: "job", Value: "x"}},
			Samples: []prompb.Sample{{Value: 1, Timestamp: now}},
		}
		if mutate != nil {
			mutate(&ts)
		}
		order(ts.Labels)
		raw, err := (&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{ts}}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	many := func(n int) []byte {
		req := &prompb.WriteRequest{}
		for i := 0; i < n; i++ {
			ls := []prompb.Label{{Name: "__name__", Value: "many"}, {Name: "i", Value: strconv.Itoa(i)}}
			order(ls)
			req.Timeseries = append(req.Timeseries, prompb.TimeSeries{Labels: ls, Samples: []prompb.Sample{{Value: 1, Timestamp: now}}})
		}
		raw, _ := req.Marshal()
		return raw
	}
	sz := func(b []byte) []byte { return snappy.Encode(nil, b) }
	// A valid write first, so that the tenant has a head and old samples
	// are out of its bounds.
	if code := write(router.URL(), "hostile", batch("hostile_seed", 1, now)); code != http.StatusNoContent {
		t.Fatalf("seed write: %d", code)
	}
	hugeHeader := append(binaryUvarint(0xFFFFFFF0), 0x00, 0x01, 0x02)

	rows := []struct {
		name    string
		body    []byte
		ct      string
		tenant  string
		status  int
		message string
	}{
		{"empty body", nil, "", "", 400, "snappy"},
		{"wrong content type", sz(one(nil)), "application/json", "", 415, "application/x-protobuf"},
		{"truncated snappy", sz(one(nil))[:10], "", "", 400, "snappy"},
		{"snappy declaring 4 GiB", hugeHeader, "", "", 413, "limit is"},
		{"truncated protobuf", sz(one(nil)[:15]), "", "", 400, "truncated"},
		{"1 MiB label value", sz(one(func(ts *prompb.TimeSeries) { ts.Labels[1].Value = strings.Repeat("v", 1<<20) })), "", "", 413, "label \"job\" with a value of 1048576 bytes"},
		{"10k labels", sz(one(func(ts *prompb.TimeSeries) {
			for i := 0; i < 10000; i++ {
				ts.Labels = append(ts.Labels, prompb.Label{Name: fmt.Sprintf("l%05d", i), Value: "v"})
			}
		})), "", "", 413, "10002 labels"},
		{"duplicate labels", sz(one(func(ts *prompb.TimeSeries) { ts.Labels = append(ts.Labels, prompb.Label{Name: "job", Value: "y"}) })), "", "", 400, "twice"},
		{"labels out of order are sorted, as by Prometheus", sz(one(func(ts *prompb.TimeSeries) {
			ts.Labels[0].Value = "hostile_unsorted" // a series of its own: later rows write at now+1
			ts.Labels[0], ts.Labels[1] = ts.Labels[1], ts.Labels[0]
		})), "", "", 204, ""},
		{"a label twice, apart", sz(one(func(ts *prompb.TimeSeries) {
			ts.Labels = append([]prompb.Label{{Name: "job", Value: "y"}}, ts.Labels...)
		})), "", "", 400, `label "job" twice`},
		{"empty label name", sz(one(func(ts *prompb.TimeSeries) { ts.Labels = append(ts.Labels, prompb.Label{Name: "", Value: "v"}) })), "", "", 400, "empty name"},
		{"no metric name", sz(one(func(ts *prompb.TimeSeries) { ts.Labels[0].Name = "name" })), "", "", 400, "no metric name"},
		{"invalid UTF-8", sz(one(func(ts *prompb.TimeSeries) { ts.Labels[1].Value = "\xff\xfe" })), "", "", 400, "UTF-8"},
		{"tenant ../../etc", sz(one(nil)), "", "../../etc", 400, "tenant"},
		{"tenant of 10 kB", sz(one(nil)), "", strings.Repeat("t", 10<<10), 400, "tenant of 10240 bytes"},
		{"NaN and Inf values", sz(one(func(ts *prompb.TimeSeries) {
			ts.Samples = []prompb.Sample{{Value: math.NaN(), Timestamp: now + 1}, {Value: math.Inf(1), Timestamp: now + 2}, {Value: math.Inf(-1), Timestamp: now + 3}}
		})), "", "", 204, ""},
		{"timestamp far in the future", sz(one(func(ts *prompb.TimeSeries) { ts.Samples[0].Timestamp = now + 365*24*3600*1000 })), "", "", 400, "ahead of this receiver's clock"},
		{"timestamp far in the past", sz(one(func(ts *prompb.TimeSeries) { ts.Samples[0].Timestamp = now - 10*365*24*3600*1000 })), "", "", 400, "out of bounds"},
		{"100k series in one request", sz(many(100_000)), "", "", 413, "100000 series"},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, router.URL(), bytes.NewReader(r.body))
			ct := r.ct
			if ct == "" {
				ct = "application/x-protobuf"
			}
			req.Header.Set("Content-Type", ct)
			req.Header.Set("Content-Encoding", "snappy")
			tenant := r.tenant
			if tenant == "" {
				tenant = "hostile"
			}
			req.Header.Set("THANOS-TENANT", tenant)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			if resp.StatusCode != r.status {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, r.status)
			}
			if r.message != "" && !strings.Contains(string(body), r.message) {
				t.Fatalf("message %q does not say %q", body, r.message)
			}
			if len(body) > 8<<10 {
				t.Fatalf("answer of %d bytes: hostile input must not make huge errors", len(body))
			}
			for _, c := range []*harness.Component{router, bbs[0]} {
				resp, err := client.Get("http://" + c.Addr + "/-/healthy")
				if err != nil || resp.StatusCode != 200 {
					t.Fatalf("%s unhealthy after the row: %v %v", c.Addr, err, resp)
				}
				resp.Body.Close()
				if rss := rssBytes(t, c.Pid()); rss > 512<<20 {
					t.Fatalf("pid %d uses %d MiB after the row", c.Pid(), rss>>20)
				}
			}
		})
	}
}

func binaryUvarint(v uint64) []byte {
	var b []byte
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// rssBytes reads a process's resident memory.
func rssBytes(t *testing.T, pid int) int64 {
	t.Helper()
	_, rss, err := loadgen.ProcessMemory(pid)
	if err != nil {
		t.Fatal(err)
	}
	return rss
}
