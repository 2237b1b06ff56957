package harness

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/prompb"
)

// PostWrite sends req to url as Prometheus sends remote-write 1.0
// (snappy-compressed protobuf and its headers), with the extra headers h,
// through client (http.DefaultClient if nil). It returns the answer, its
// body read and closed, and that body; a request that cannot be sent
// fails the test.
func PostWrite(t testing.TB, client *http.Client, url string, h http.Header, req *prompb.WriteRequest) (*http.Response, []byte) {
	t.Helper()
	raw, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	hreq, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(snappy.Encode(nil, raw)))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		hreq.Header[http.CanonicalHeaderKey(k)] = v
	}
	hreq.Header.Set("Content-Type", "application/x-protobuf")
	hreq.Header.Set("Content-Encoding", "snappy")
	hreq.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(hreq)
	if err != nil {
		t.Fatalf("remote-write to %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}
