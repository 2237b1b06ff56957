package e2e

// The router as an AWS Lambda function (cmd/strata-lambda), run by the
// real AWS Lambda Runtime Interface Emulator in front of real block
// builders and a real S3 server.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/stratametrics/strata/internal/harness"
	"github.com/stratametrics/strata/remotewrite"
)

// buildBootstrap builds cmd/strata-lambda for this machine as `make
// lambda` builds it for Lambda, and returns its path.
func buildBootstrap(t testing.TB) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("build the Lambda bootstrap: %v", err)
	}
	out := filepath.Join(t.TempDir(), "bootstrap")
	cmd := exec.Command(goBin, "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags", "-s -w", "-o", out, "github.com/stratametrics/strata/cmd/strata-lambda")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the Lambda bootstrap: %v\n%s", err, b)
	}
	return out
}

// lambdaFunction is a bootstrap run by aws-lambda-rie.
type lambdaFunction struct {
	*harness.Process
	invokeURL string
}

// startLambda runs bootstrap under the emulator on loopback ports, with
// env as the function's environment (the emulator passes its own on).
// The emulator starts the bootstrap on the first invocation, as Lambda
// does on a cold start.
func startLambda(t testing.TB, rie, bootstrap string, env ...string) *lambdaFunction {
	t.Helper()
	addr := harness.FreeAddr(t)
	p := harness.StartProcess(t, rie, []string{
		// Both default to well-known ports (8080 on every interface,
		// 9001): tests bind loopback ports of their own.
		"--runtime-interface-emulator-address", addr,
		"--runtime-api-address", harness.FreeAddr(t),
		bootstrap,
	}, env)
	return &lambdaFunction{Process: p, invokeURL: "http://" + addr + "/2015-03-31/functions/function/invocations"}
}

var lambdaClient = &http.Client{Timeout: 60 * time.Second}

// post sends one event to the emulator's invoke API; connection refused
// comes back as an error, for callers waiting for the emulator to listen.
func (f *lambdaFunction) post(ev any) (*http.Response, []byte, error) {
	payload, err := json.Marshal(ev)
	if err != nil {
		return nil, nil, err
	}
	resp, err := lambdaClient.Post(f.invokeURL, "application/json", bytes.NewReader(payload))
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// invoke sends ev and returns the function's response event, failing the
// test on a function error.
func (f *lambdaFunction) invoke(t testing.TB, ev any) events.LambdaFunctionURLResponse {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, body, err := f.post(ev)
		if err != nil {
			if time.Now().Before(deadline) && strings.Contains(err.Error(), "connection refused") {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			t.Fatalf("invoke: %v", err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("invoke: emulator answered %s: %s", resp.Status, body)
		}
		var out events.LambdaFunctionURLResponse
		if err := json.Unmarshal(body, &out); err != nil || out.StatusCode == 0 {
			t.Fatalf("invoke: not a response event (%v): %s", err, body)
		}
		return out
	}
}

// remoteWriteEvent is a Function URL event carrying a remote-write
// request, body base64, header names in lower case as Function URLs send
// them. tenant "" sends no tenant header.
func remoteWriteEvent(v remotewrite.Version, req *prompb.WriteRequest, tenant string) events.LambdaFunctionURLRequest {
	var raw []byte
	var err error
	h := map[string]string{
		"content-encoding": "snappy",
		"user-agent":       "Prometheus/3.5.0",
		"host":             "abcdefgh.lambda-url.eu-west-1.on.aws",
	}
	if v == remotewrite.V2 {
		raw, err = toV2(req).Marshal()
		h["content-type"] = remotewrite.ContentTypeV2
		h["x-prometheus-remote-write-version"] = "2.0.0"
	} else {
		raw, err = req.Marshal()
		h["content-type"] = "application/x-protobuf"
		h["x-prometheus-remote-write-version"] = "0.1.0"
	}
	if err != nil {
		panic(err)
	}
	if tenant != "" {
		h["thanos-tenant"] = tenant
	}
	return events.LambdaFunctionURLRequest{
		Version: "2.0",
		RawPath: "/api/v1/receive",
		Headers: h,
		RequestContext: events.LambdaFunctionURLRequestContext{
			DomainName: h["host"],
			HTTP:       events.LambdaFunctionURLRequestContextHTTPDescription{Method: "POST", Path: "/api/v1/receive", Protocol: "HTTP/1.1", SourceIP: "127.0.0.1"},
		},
		Body:            base64.StdEncoding.EncodeToString(snappy.Encode(nil, raw)),
		IsBase64Encoded: true,
	}
}

// toV2 is req as a remote-write 2.0 request.
func toV2(req *prompb.WriteRequest) *writev2.Request {
	st := writev2.NewSymbolTable()
	out := &writev2.Request{}
	for _, ts := range req.Timeseries {
		b := labels.NewScratchBuilder(len(ts.Labels))
		for _, l := range ts.Labels {
			b.Add(l.Name, l.Value)
		}
		s2 := writev2.TimeSeries{
			LabelsRefs: st.SymbolizeLabels(b.Labels(), nil),
			Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_GAUGE},
		}
		for _, s := range ts.Samples {
			s2.Samples = append(s2.Samples, writev2.Sample{Value: s.Value, Timestamp: s.Timestamp})
		}
		out.Timeseries = append(out.Timeseries, s2)
	}
	out.Symbols = st.Symbols()
	return out
}

// series makes one request: n series of name, each with perSeries
// samples one second apart from ts.
func series(name string, n, perSeries int, ts int64) *prompb.WriteRequest {
	req := &prompb.WriteRequest{}
	for i := 0; i < n; i++ {
		s := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: name}, {Name: "series", Value: fmt.Sprintf("s%04d", i)}}}
		for k := 0; k < perSeries; k++ {
			s.Samples = append(s.Samples, prompb.Sample{Timestamp: ts + int64(k)*1000, Value: float64(i*1000 + k)})
		}
		req.Timeseries = append(req.Timeseries, s)
	}
	return req
}

// TestLambdaUnderRuntimeEmulator: the bootstrap `make lambda` ships, run
// by the real Lambda Runtime Interface Emulator, takes remote-write 1.0
// and 2.0 as Function URL and HTTP API events and writes them to two
// real block builders, which upload them to a real S3 bucket; refusals
// come back with the router's status.
func TestLambdaUnderRuntimeEmulator(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	rie := harness.Tool(t, "aws-lambda-rie")
	bootstrap := buildBootstrap(t)
	s3 := harness.StartS3(t)
	bbs := []*harness.Component{
		harness.StartBlockBuilder(t, "lambda-0", s3.Env()),
		harness.StartBlockBuilder(t, "lambda-1", s3.Env()),
	}
	fn := startLambda(t, rie, bootstrap,
		"STRATA_ENDPOINTS="+bbs[0].Addr+","+bbs[1].Addr,
		"STRATA_ENDPOINT_BACKOFF=100ms",
		"STRATA_ENDPOINT_MAX_BACKOFF=1s",
		"AWS_LAMBDA_FUNCTION_TIMEOUT=30",
	)

	ts := time.Now().Add(-5 * time.Minute).UnixMilli()
	ack := map[string]*acked{"lambda-team": newAcked(), "default-tenant": newAcked()}
	// written checks a 204 and, for 2.0, the written header (1.0 answers
	// have none), then records req as stored for tenant.
	written := func(what string, v remotewrite.Version, resp events.LambdaFunctionURLResponse, req *prompb.WriteRequest, tenant string) {
		t.Helper()
		want := 0
		for _, s := range req.Timeseries {
			want += len(s.Samples)
		}
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("%s: status %d, want 204: %s", what, resp.StatusCode, resp.Body)
		}
		wantHeader := strconv.Itoa(want)
		if v == remotewrite.V1 {
			wantHeader = ""
		}
		if got := resp.Headers[remotewrite.HeaderSamplesWritten]; got != wantHeader {
			t.Fatalf("%s: %s = %q, want %q (headers %v)", what, remotewrite.HeaderSamplesWritten, got, wantHeader, resp.Headers)
		}
		ack[tenant].add(req)
	}

	v1 := series("lambda_v1", 60, 3, ts)
	written("1.0", remotewrite.V1, fn.invoke(t, remoteWriteEvent(remotewrite.V1, v1, "lambda-team")), v1, "lambda-team")

	// Labels out of order, in both versions: sorted on receipt.
	for _, v := range []remotewrite.Version{remotewrite.V1, remotewrite.V2} {
		unsorted := series("lambda_unsorted_"+strings.ReplaceAll(v.String(), ".", ""), 20, 1, ts)
		for i := range unsorted.Timeseries {
			slices.Reverse(unsorted.Timeseries[i].Labels)
		}
		written("unsorted "+v.String(), v, fn.invoke(t, remoteWriteEvent(v, unsorted, "lambda-team")), unsorted, "lambda-team")
	}

	v2 := series("lambda_v2", 60, 2, ts)
	resp := fn.invoke(t, remoteWriteEvent(remotewrite.V2, v2, "lambda-team"))
	written("2.0", remotewrite.V2, resp, v2, "lambda-team")
	for _, h := range []string{remotewrite.HeaderHistogramsWritten, remotewrite.HeaderExemplarsWritten} {
		if resp.Headers[h] != "0" {
			t.Errorf("2.0: %s = %q, want 0", h, resp.Headers[h])
		}
	}

	// No tenant header: the default tenant.
	def := series("lambda_default", 20, 1, ts)
	written("no tenant header", remotewrite.V1, fn.invoke(t, remoteWriteEvent(remotewrite.V1, def, "")), def, "default-tenant")

	// The same request as an API Gateway HTTP API event of a named
	// stage: the stage prefix of rawPath is not part of the route.
	api := series("lambda_httpapi", 10, 1, ts)
	url := remoteWriteEvent(remotewrite.V2, api, "lambda-team")
	written("HTTP API", remotewrite.V2, fn.invoke(t, events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: "POST /api/v1/receive", RawPath: "/prod/api/v1/receive", Headers: url.Headers,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			Stage: "prod", RouteKey: "POST /api/v1/receive", DomainName: "api.example.com",
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "POST", Path: "/prod/api/v1/receive", Protocol: "HTTP/1.1", SourceIP: "127.0.0.1"},
		},
		Body: url.Body, IsBase64Encoded: true,
	}), api, "lambda-team")

	// Refusals: the router's status and message, as text.
	bad := remoteWriteEvent(remotewrite.V1, series("lambda_refused", 5, 1, ts), "lambda-team")
	bad.Headers["content-type"] = "application/json"
	resp = fn.invoke(t, bad)
	if resp.StatusCode != http.StatusUnsupportedMediaType || resp.IsBase64Encoded || !strings.Contains(resp.Body, "application/json") {
		t.Errorf("wrong content type: got %d %q (base64 %v), want 415 naming the type", resp.StatusCode, resp.Body, resp.IsBase64Encoded)
	}
	bad = remoteWriteEvent(remotewrite.V1, series("lambda_refused", 5, 1, ts), "no/slashes")
	if resp = fn.invoke(t, bad); resp.StatusCode != http.StatusBadRequest || !strings.Contains(resp.Body, "tenant") {
		t.Errorf("bad tenant: got %d %q, want 400", resp.StatusCode, resp.Body)
	}
	ready := events.LambdaFunctionURLRequest{Version: "2.0", RawPath: "/-/ready", RequestContext: events.LambdaFunctionURLRequestContext{
		HTTP: events.LambdaFunctionURLRequestContextHTTPDescription{Method: "GET", Path: "/-/ready"},
	}}
	if resp = fn.invoke(t, ready); resp.StatusCode != http.StatusOK || resp.Body != "ready\n" {
		t.Errorf("/-/ready: got %d %q", resp.StatusCode, resp.Body)
	}

	// One execution environment served every event: the router was
	// built once, before the first.
	if n := strings.Count(fn.Logs(), `msg="router ready"`); n != 1 {
		t.Errorf("router built %d times for one execution environment, want 1", n)
	}

	bkt := flushedBucket(t, s3, bbs)
	got, infos := harness.BucketSamples(t, bkt, "tenant_id", "receive_replica")
	for tenant, a := range ack {
		if miss := a.missing(got[tenant]); len(miss) > 0 {
			t.Errorf("tenant %s: %d of %d acknowledged samples missing from the bucket, e.g. %v", tenant, len(miss), a.count(), miss[:min(5, len(miss))])
		}
		if n := got.TenantCount(tenant); n != a.count() {
			t.Errorf("tenant %s: bucket holds %d samples, %d were written", tenant, n, a.count())
		}
	}
	if _, ok := got["lambda-team"][`{__name__="lambda_refused", series="s0000"}`]; ok {
		t.Error("a refused request was stored")
	}
	// RF=1 over two block builders: each owns part of the series.
	replicas := map[string]bool{}
	for _, in := range infos {
		replicas[in.Replica] = true
	}
	if !replicas["lambda-0"] || !replicas["lambda-1"] {
		t.Errorf("blocks from replicas %v, want both block builders", replicas)
	}
}

// initReport is the emulator's log line for the bootstrap's init: from
// starting the process to its first request for an event.
var initReport = regexp.MustCompile(`INIT REPORT\(durationMs: ([0-9.]+)\)`)

// BenchmarkLambdaColdStart: a cold start under the Runtime Interface
// Emulator, repeated: the emulator and bootstrap start, and a 200-series
// remote-write event is written to a real block builder. ms/cold-start is
// from starting the emulator to the first answer; init-ms is the
// bootstrap's init alone (process start to ready for events, as the
// emulator reports it, Lambda's "Init Duration"); warm-ms is a further
// event on the same environment, through the emulator's HTTP API.
func BenchmarkLambdaColdStart(b *testing.B) {
	rie := harness.Tool(b, "aws-lambda-rie")
	bootstrap := buildBootstrap(b)
	s3 := harness.StartS3(b)
	bb := harness.StartBlockBuilder(b, "lambda-bench", s3.Env())
	env := []string{"STRATA_ENDPOINTS=" + bb.Addr}
	ts := time.Now().Add(-5 * time.Minute).UnixMilli()
	var cold, warm time.Duration
	var initMs float64
	i := 0
	for b.Loop() {
		ev := remoteWriteEvent(remotewrite.V1, series("lambda_bench", 200, 1, ts+int64(i)*1000), "bench")
		start := time.Now()
		fn := startLambda(b, rie, bootstrap, env...)
		if resp := fn.invoke(b, ev); resp.StatusCode != http.StatusNoContent {
			b.Fatalf("cold event: %d %s", resp.StatusCode, resp.Body)
		}
		cold += time.Since(start)
		ev = remoteWriteEvent(remotewrite.V1, series("lambda_bench", 200, 1, ts+int64(i)*1000+500), "bench")
		start = time.Now()
		if resp := fn.invoke(b, ev); resp.StatusCode != http.StatusNoContent {
			b.Fatalf("warm event: %d %s", resp.StatusCode, resp.Body)
		}
		warm += time.Since(start)
		fn.Stop()
		m := initReport.FindStringSubmatch(fn.Logs())
		if m == nil {
			b.Fatalf("no INIT REPORT in the emulator's log:\n%s", fn.Logs())
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		initMs += v
		i++
	}
	b.ReportMetric(float64(cold.Microseconds())/1000/float64(i), "ms/cold-start")
	b.ReportMetric(initMs/float64(i), "init-ms")
	b.ReportMetric(float64(warm.Microseconds())/1000/float64(i), "warm-ms")
}
