package lambda

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/klauspost/compress/snappy"

	"github.com/stratametrics/strata/functions"
	"github.com/stratametrics/strata/internal/harness"
	"github.com/stratametrics/strata/loadgen"
	"github.com/stratametrics/strata/remotewrite"
)

// seen is what the echo handler saw of a request.
type seen struct {
	Method, Path, RawQuery, Host, RemoteAddr, Proto string
	ContentLength                                   int64
	Header                                          http.Header
	Body                                            []byte
}

// echo answers with what it saw, as JSON, so that a test can check the
// request the adapter built.
func echo(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(seen{r.Method, r.URL.Path, r.URL.RawQuery, r.Host, r.RemoteAddr, r.Proto, r.ContentLength, r.Header, body})
}

// invoke sends ev through a's Invoke as its JSON, as the Lambda runtime
// does, and decodes the response event.
func invoke(t *testing.T, a *Adapter, ev any) events.LambdaFunctionURLResponse {
	t.Helper()
	payload, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	out, err := a.Invoke(context.Background(), payload)
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	var resp events.LambdaFunctionURLResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatalf("decode response event %s: %v", out, err)
	}
	return resp
}

func echoed(t *testing.T, resp events.LambdaFunctionURLResponse) seen {
	t.Helper()
	if resp.StatusCode != http.StatusOK || resp.IsBase64Encoded {
		t.Fatalf("echo answered %d (base64 %v): %s", resp.StatusCode, resp.IsBase64Encoded, resp.Body)
	}
	var s seen
	if err := json.Unmarshal([]byte(resp.Body), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func urlEvent(method, rawPath string, headers map[string]string, body []byte) events.LambdaFunctionURLRequest {
	ev := events.LambdaFunctionURLRequest{
		Version: "2.0",
		RawPath: rawPath,
		Headers: headers,
		RequestContext: events.LambdaFunctionURLRequestContext{
			DomainName: "abc123.lambda-url.eu-west-1.on.aws",
			HTTP: events.LambdaFunctionURLRequestContextHTTPDescription{
				Method: method, Path: rawPath, Protocol: "HTTP/1.1", SourceIP: "203.0.113.7",
			},
		},
	}
	if body != nil {
		ev.Body, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
	}
	return ev
}

// TestRequest: what the handler sees of Function URL and HTTP API
// events.
func TestRequest(t *testing.T) {
	a := New(http.HandlerFunc(echo))
	body := []byte{0xff, 0x00, 0x10, 'x'}

	t.Run("function URL", func(t *testing.T) {
		ev := urlEvent("POST", "/api/v1/receive", map[string]string{
			"content-type":     "application/x-protobuf",
			"content-encoding": "snappy",
			"thanos-tenant":    "team-a",
			"host":             "abc123.lambda-url.eu-west-1.on.aws",
			"x-forwarded-for":  "203.0.113.7, 198.51.100.1",
		}, body)
		ev.RawQueryString = "a=1&b=%20x"
		ev.Cookies = []string{"c1=v1", "c2=v2"}
		s := echoed(t, invoke(t, a, ev))
		if s.Method != "POST" || s.Path != "/api/v1/receive" || s.RawQuery != "a=1&b=%20x" || s.Proto != "HTTP/1.1" {
			t.Errorf("request line: %s %s ? %s %s", s.Method, s.Path, s.RawQuery, s.Proto)
		}
		if string(s.Body) != string(body) || s.ContentLength != int64(len(body)) {
			t.Errorf("body %x (length %d), want %x", s.Body, s.ContentLength, body)
		}
		// Lower-case names arrive canonical: Header.Get finds the
		// tenant under the name the router is configured with.
		if got := s.Header.Get("THANOS-TENANT"); got != "team-a" {
			t.Errorf("tenant header %q, header %v", got, s.Header)
		}
		if got := s.Header.Values("X-Forwarded-For"); len(got) != 1 || got[0] != "203.0.113.7, 198.51.100.1" {
			t.Errorf("X-Forwarded-For %q", got)
		}
		if got := s.Header.Get("Cookie"); got != "c1=v1; c2=v2" {
			t.Errorf("Cookie %q", got)
		}
		if s.Host != "abc123.lambda-url.eu-west-1.on.aws" || s.Header.Get("Host") != "" {
			t.Errorf("Host %q, Host header %q", s.Host, s.Header.Get("Host"))
		}
		if s.RemoteAddr != "203.0.113.7:0" {
			t.Errorf("RemoteAddr %q", s.RemoteAddr)
		}
	})

	t.Run("text body", func(t *testing.T) {
		ev := urlEvent("POST", "/x", nil, nil)
		ev.Body = "plain text"
		if s := echoed(t, invoke(t, a, ev)); string(s.Body) != "plain text" || s.ContentLength != 10 {
			t.Errorf("body %q (length %d)", s.Body, s.ContentLength)
		}
	})

	t.Run("HTTP API stage", func(t *testing.T) {
		for _, c := range []struct{ stage, rawPath, want string }{
			{"$default", "/api/v1/receive", "/api/v1/receive"},
			{"prod", "/prod/api/v1/receive", "/api/v1/receive"},
			{"prod", "/prod", "/"},
			{"prod", "/production/x", "/production/x"},
		} {
			ev := events.APIGatewayV2HTTPRequest{
				Version: "2.0", RouteKey: "POST /{proxy+}", RawPath: c.rawPath,
				Headers: map[string]string{"content-type": "text/plain"},
				RequestContext: events.APIGatewayV2HTTPRequestContext{
					Stage: c.stage, DomainName: "api.example.com",
					HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "POST", Path: c.rawPath, Protocol: "HTTP/1.1"},
				},
			}
			if s := echoed(t, invoke(t, a, ev)); s.Path != c.want || s.Host != "api.example.com" {
				t.Errorf("stage %s, rawPath %s: path %q host %q, want %q", c.stage, c.rawPath, s.Path, s.Host, c.want)
			}
			// The typed entry point agrees with Invoke.
			resp, err := a.ServeHTTPAPI(context.Background(), &ev)
			if err != nil {
				t.Fatal(err)
			}
			if s := echoed(t, events.LambdaFunctionURLResponse{StatusCode: resp.StatusCode, Body: resp.Body}); s.Path != c.want {
				t.Errorf("ServeHTTPAPI: stage %s, rawPath %s: path %q, want %q", c.stage, c.rawPath, s.Path, c.want)
			}
		}
	})

	t.Run("ServeFunctionURL", func(t *testing.T) {
		ev := urlEvent("PUT", "/p", map[string]string{"thanos-tenant": "t"}, body)
		resp, err := a.ServeFunctionURL(context.Background(), &ev)
		if err != nil {
			t.Fatal(err)
		}
		s := echoed(t, *resp)
		if s.Method != "PUT" || string(s.Body) != string(body) || s.Header.Get("Thanos-Tenant") != "t" {
			t.Errorf("got %+v", s)
		}
		// The caller's headers map is the caller's: events served
		// later through the same adapter leave it alone.
		invoke(t, a, urlEvent("GET", "/", map[string]string{"x": "y"}, nil))
		if len(ev.Headers) != 1 || ev.Headers["thanos-tenant"] != "t" {
			t.Errorf("caller's headers became %v", ev.Headers)
		}
	})
}

// TestResponse: how the handler's answers become response events.
func TestResponse(t *testing.T) {
	binary := []byte{0x00, 0xff, 0xfe, 0x01}
	for _, c := range []struct {
		name    string
		handler http.HandlerFunc
		status  int
		headers map[string]string
		cookies []string
		body    string
		base64  bool
	}{
		{"no content", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set(remotewrite.HeaderSamplesWritten, "7")
			w.WriteHeader(http.StatusNoContent)
		}, 204, map[string]string{remotewrite.HeaderSamplesWritten: "7"}, nil, "", false},
		{"text error", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "try again", http.StatusServiceUnavailable)
		}, 503, map[string]string{"Retry-After": "1", "Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff"}, nil, "try again\n", false},
		{"implicit 200", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/problem+json")
			_, _ = w.Write([]byte(`{"a":1}`))
		}, 200, map[string]string{"Content-Type": "application/problem+json"}, nil, `{"a":1}`, false},
		{"binary", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/x-protobuf")
			_, _ = w.Write(binary)
		}, 200, map[string]string{"Content-Type": "application/x-protobuf"}, nil, base64.StdEncoding.EncodeToString(binary), true},
		{"text type, bytes not UTF-8", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			_, _ = w.Write(binary)
		}, 200, map[string]string{"Content-Type": "text/plain"}, nil, base64.StdEncoding.EncodeToString(binary), true},
		{"sniffed type", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte("hello"))
		}, 200, map[string]string{"Content-Type": "text/plain; charset=utf-8"}, nil, "hello", false},
		{"repeated headers and cookies", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Add("Vary", "A")
			w.Header().Add("Vary", "B")
			w.Header().Add("Set-Cookie", "x=1")
			w.Header().Add("Set-Cookie", "y=2")
			w.WriteHeader(http.StatusAccepted)
			w.WriteHeader(http.StatusTeapot) // ignored, as net/http does
		}, 202, map[string]string{"Vary": "A, B"}, []string{"x=1", "y=2"}, "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := New(c.handler)
			// Twice: the second answer must not carry anything of the
			// first (the writer is reused).
			for range 2 {
				resp := invoke(t, a, urlEvent("GET", "/", nil, nil))
				if resp.StatusCode != c.status || resp.Body != c.body || resp.IsBase64Encoded != c.base64 {
					t.Errorf("got %d %q (base64 %v), want %d %q (base64 %v)", resp.StatusCode, resp.Body, resp.IsBase64Encoded, c.status, c.body, c.base64)
				}
				if fmt.Sprint(resp.Headers) != fmt.Sprint(c.headers) && !(len(resp.Headers) == 0 && len(c.headers) == 0) {
					t.Errorf("headers %v, want %v", resp.Headers, c.headers)
				}
				if fmt.Sprint(resp.Cookies) != fmt.Sprint(c.cookies) {
					t.Errorf("cookies %v, want %v", resp.Cookies, c.cookies)
				}
			}
		})
	}
}

// TestBadEvents: an event that is not an HTTP event is a function error
// (the invoker sent the wrong thing); a malformed HTTP request in a good
// event is answered 400.
func TestBadEvents(t *testing.T) {
	a := New(http.HandlerFunc(echo))
	for _, c := range []struct {
		name, payload, want string
	}{
		{"not JSON", `not json`, "decode HTTP event"},
		{"empty object", `{}`, "requestContext.http.method is empty"},
		{"S3 event", `{"Records":[{"eventSource":"aws:s3"}]}`, "requestContext.http.method is empty"},
	} {
		if _, err := a.Invoke(context.Background(), []byte(c.payload)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", c.name, err, c.want)
		}
	}
	for _, c := range []struct {
		name string
		ev   events.LambdaFunctionURLRequest
		want string
	}{
		{"bad base64", events.LambdaFunctionURLRequest{Body: "!!!", IsBase64Encoded: true,
			RequestContext: events.LambdaFunctionURLRequestContext{HTTP: events.LambdaFunctionURLRequestContextHTTPDescription{Method: "POST"}}}, "invalid base64"},
		{"bad method", events.LambdaFunctionURLRequest{RawPath: "/",
			RequestContext: events.LambdaFunctionURLRequestContext{HTTP: events.LambdaFunctionURLRequestContextHTTPDescription{Method: "P OST"}}}, "request method"},
	} {
		resp := invoke(t, a, c.ev)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(resp.Body, c.want) {
			t.Errorf("%s: got %d %q, want 400 containing %q", c.name, resp.StatusCode, resp.Body, c.want)
		}
	}
}

// newRouter is the real router in front of block builders at endpoints.
func newRouter(t testing.TB, endpoints ...string) *functions.Router {
	t.Helper()
	cfg := functions.DefaultConfig()
	cfg.Endpoints = endpoints
	r, err := functions.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

// writeEvent is a Function URL event carrying a remote-write request of
// version v with n series, as Prometheus sends it.
func writeEvent(v remotewrite.Version, n int, tenant string) events.LambdaFunctionURLRequest {
	raw := loadgen.Encode(v, 0, n, 1, 0, time.Now().Add(-time.Minute).UnixMilli(), 15000)
	h := map[string]string{
		"content-type":                      remotewrite.ContentTypeV1,
		"content-encoding":                  "snappy",
		"x-prometheus-remote-write-version": "0.1.0",
		"user-agent":                        "Prometheus/3.0.0",
	}
	if v == remotewrite.V2 {
		h["content-type"] = remotewrite.ContentTypeV2
		h["x-prometheus-remote-write-version"] = "2.0.0"
	}
	if tenant != "" {
		h["thanos-tenant"] = tenant
	}
	return urlEvent("POST", "/api/v1/receive", h, snappy.Encode(nil, raw))
}

// TestRouterAnswers: the real router's refusals come back through the
// adapter with the router's status, headers and message. (Writes that
// reach block builders are in internal/e2e, under the Lambda runtime
// emulator.)
func TestRouterAnswers(t *testing.T) {
	// Nothing listens on the endpoint: writes cannot reach a quorum.
	a := New(newRouter(t, harness.FreeAddr(t)).Handler())

	ev := writeEvent(remotewrite.V1, 10, "team-a")
	ev.Headers["content-type"] = "application/json"
	resp := invoke(t, a, ev)
	if resp.StatusCode != http.StatusUnsupportedMediaType || resp.IsBase64Encoded || !strings.Contains(resp.Body, "application/json") {
		t.Errorf("wrong content type: got %d %q", resp.StatusCode, resp.Body)
	}

	ev = writeEvent(remotewrite.V2, 10, "../etc")
	resp = invoke(t, a, ev)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(resp.Body, "tenant") {
		t.Errorf("bad tenant: got %d %q", resp.StatusCode, resp.Body)
	}

	resp = invoke(t, a, writeEvent(remotewrite.V2, 10, "team-a"))
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Headers["Retry-After"] == "" {
		t.Errorf("no block builder: got %d %v %q", resp.StatusCode, resp.Headers, resp.Body)
	}
	if got := resp.Headers[remotewrite.HeaderSamplesWritten]; got != "0" {
		t.Errorf("%s = %q, want 0 (written headers come with every answer)", remotewrite.HeaderSamplesWritten, got)
	}

	resp = invoke(t, a, urlEvent("GET", "/-/healthy", nil, nil))
	if resp.StatusCode != http.StatusOK || resp.Body != "healthy\n" || resp.IsBase64Encoded {
		t.Errorf("health: got %d %q (base64 %v)", resp.StatusCode, resp.Body, resp.IsBase64Encoded)
	}
	resp = invoke(t, a, urlEvent("GET", "/api/v1/receive", nil, nil))
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET of the write path: got %d", resp.StatusCode)
	}
}
