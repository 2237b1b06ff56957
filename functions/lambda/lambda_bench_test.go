package lambda

// What an event costs on top of the handler: decoding the event's JSON
// and base64 body, building the *http.Request, collecting the answer and
// encoding the response event. Each benchmark runs the same request
// directly (handler.ServeHTTP, as `strata router` runs it once net/http
// has read it) and through Invoke (as the Lambda runtime calls it with
// the event's bytes); the difference is the adapter's overhead.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stratametrics/strata/internal/forwarding"
	"github.com/stratametrics/strata/internal/harness"
	"github.com/stratametrics/strata/remotewrite"
)

// benchRequest is a remote-write request of n series as an event's JSON
// and as the *http.Request net/http would have made of it.
func benchRequest(b *testing.B, v remotewrite.Version, n int) ([]byte, func() *http.Request) {
	ev := writeEvent(v, n, "bench")
	payload, err := json.Marshal(ev)
	if err != nil {
		b.Fatal(err)
	}
	// The request the adapter makes is the reference for the direct one.
	inv := &invocation{}
	if err := inv.decode(payload); err != nil {
		b.Fatal(err)
	}
	ref, err := inv.request(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	body := bytes.Clone(inv.body)
	if len(body) == 0 {
		b.Fatal("no request body")
	}
	return payload, func() *http.Request {
		r := ref.Clone(context.Background())
		r.Body = io.NopCloser(bytes.NewReader(body))
		return r
	}
}

// written answers like a block builder that took every sample, after
// reading the body: the handler of the overhead benchmark.
func written(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	forwarding.Written{Samples: 2000}.SetForwardedHeaders(w.Header())
	w.WriteHeader(http.StatusNoContent)
}

func runBench(b *testing.B, h http.Handler, v remotewrite.Version, n int) {
	payload, request := benchRequest(b, v, n)
	b.Run("direct", func(b *testing.B) {
		b.SetBytes(int64(len(payload)))
		b.ReportAllocs()
		for b.Loop() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, request())
			if w.Code != http.StatusNoContent {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
		}
	})
	b.Run("lambda", func(b *testing.B) {
		a := New(h)
		b.SetBytes(int64(len(payload)))
		b.ReportAllocs()
		for b.Loop() {
			out, err := a.Invoke(context.Background(), payload)
			if err != nil {
				b.Fatal(err)
			}
			if !bytes.HasPrefix(out, []byte(`{"statusCode":204`)) {
				b.Fatalf("answer %s", out)
			}
		}
	})
}

// BenchmarkAdapter: the adapter around a handler that does nothing but
// read the body, so the difference between direct and lambda is the
// adapter's own cost, for requests of 200 and 2000 series.
func BenchmarkAdapter(b *testing.B) {
	for _, v := range []remotewrite.Version{remotewrite.V1, remotewrite.V2} {
		for _, n := range []int{200, 2000} {
			b.Run(fmt.Sprintf("%s/series=%d", v, n), func(b *testing.B) {
				runBench(b, http.HandlerFunc(written), v, n)
			})
		}
	}
}

// BenchmarkRouter: the real router writing to a real block builder (a
// `strata blockbuilder` process with a filesystem bucket), directly and
// through the adapter, to put the adapter's cost beside a whole write.
func BenchmarkRouter(b *testing.B) {
	bb := harness.StartBlockBuilder(b, "bench", []string{"STRATA_BUCKET_DIR=" + b.TempDir()})
	h := newRouter(b, bb.Addr).Handler()
	for _, v := range []remotewrite.Version{remotewrite.V1, remotewrite.V2} {
		b.Run(fmt.Sprintf("%s/series=2000", v), func(b *testing.B) {
			runBench(b, h, v, 2000)
		})
	}
}
