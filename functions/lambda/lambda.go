// Package lambda runs an http.Handler, Strata's router, as an AWS Lambda
// function behind a Lambda Function URL or an API Gateway HTTP API
// (payload format 2.0): it turns each event into an *http.Request, runs it
// through the handler and turns the answer back into a response event.
//
// The one thing to know before changing it: the handler is the same one
// `strata router` serves, built once per execution environment; this
// package only translates, so everything a remote-write sender sees
// (status, X-Prometheus-Remote-Write-*-Written, Retry-After, messages)
// comes from the router unchanged.
package lambda

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
)

// Adapter serves Function URL and HTTP API 2.0 events with an
// http.Handler. It implements aws-lambda-go's lambda.Handler, so that
// lambda.Start(adapter) decodes events here, into the few fields used,
// rather than through reflection into the full event types.
type Adapter struct {
	h    http.Handler
	pool sync.Pool // *invocation
}

// New returns an Adapter that serves events with h.
func New(h http.Handler) *Adapter {
	a := &Adapter{h: h}
	a.pool.New = func() any { return &invocation{} }
	return a
}

// event is what the adapter reads of a Function URL or HTTP API 2.0
// event; both have this JSON shape (events.LambdaFunctionURLRequest,
// events.APIGatewayV2HTTPRequest).
type event struct {
	RawPath        string            `json:"rawPath"`
	RawQueryString string            `json:"rawQueryString"`
	Cookies        []string          `json:"cookies"`
	Headers        map[string]string `json:"headers"`
	RequestContext struct {
		Stage      string `json:"stage"`
		DomainName string `json:"domainName"`
		HTTP       struct {
			Method   string `json:"method"`
			Path     string `json:"path"`
			Protocol string `json:"protocol"`
			SourceIP string `json:"sourceIp"`
		} `json:"http"`
	} `json:"requestContext"`
	Body            string `json:"body"`
	IsBase64Encoded bool   `json:"isBase64Encoded"`
}

// response is the answer event, in the shape both Function URLs and HTTP
// APIs take (events.LambdaFunctionURLResponse,
// events.APIGatewayV2HTTPResponse).
type response struct {
	StatusCode      int               `json:"statusCode"`
	Headers         map[string]string `json:"headers,omitempty"`
	Body            string            `json:"body"`
	IsBase64Encoded bool              `json:"isBase64Encoded"`
	Cookies         []string          `json:"cookies,omitempty"`
}

// invocation is the scratch space of one event, pooled: execution
// environments serve one event at a time, so in practice one is reused
// for the life of the environment.
type invocation struct {
	ev   event  // the event; its body is in raw
	raw  []byte // the body as the event carries it, base64 or not
	rest []byte // the event's JSON without the body (see decode)
	body []byte // the decoded request body
	w    responseWriter
}

// Invoke implements lambda.Handler: payload is the event's JSON, the
// answer the response event's JSON. An event that is not an HTTP event
// at all is a function error; a bad HTTP request is answered 400 like
// any other.
func (a *Adapter) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	inv := a.pool.Get().(*invocation)
	defer a.put(inv, true)
	if err := inv.decode(payload); err != nil {
		return nil, err
	}
	resp, err := a.serve(ctx, inv)
	if err != nil {
		return nil, err
	}
	out, err := json.Marshal(resp)
	if err != nil {
		return nil, fmt.Errorf("encode HTTP response event: %w", err)
	}
	return out, nil
}

// ServeFunctionURL serves one Function URL event, for callers that decode
// events themselves.
func (a *Adapter) ServeFunctionURL(ctx context.Context, ev *events.LambdaFunctionURLRequest) (*events.LambdaFunctionURLResponse, error) {
	inv := a.pool.Get().(*invocation)
	defer a.put(inv, false)
	inv.ev = event{RawPath: ev.RawPath, RawQueryString: ev.RawQueryString, Cookies: ev.Cookies, Headers: ev.Headers, IsBase64Encoded: ev.IsBase64Encoded}
	inv.raw = []byte(ev.Body)
	rc := &inv.ev.RequestContext
	rc.DomainName = ev.RequestContext.DomainName
	rc.HTTP.Method, rc.HTTP.Path, rc.HTTP.Protocol, rc.HTTP.SourceIP = ev.RequestContext.HTTP.Method, ev.RequestContext.HTTP.Path, ev.RequestContext.HTTP.Protocol, ev.RequestContext.HTTP.SourceIP
	resp, err := a.serve(ctx, inv)
	if err != nil {
		return nil, err
	}
	return &events.LambdaFunctionURLResponse{StatusCode: resp.StatusCode, Headers: resp.Headers, Body: resp.Body, IsBase64Encoded: resp.IsBase64Encoded, Cookies: resp.Cookies}, nil
}

// ServeHTTPAPI serves one API Gateway HTTP API event (payload format
// 2.0), for callers that decode events themselves.
func (a *Adapter) ServeHTTPAPI(ctx context.Context, ev *events.APIGatewayV2HTTPRequest) (*events.APIGatewayV2HTTPResponse, error) {
	inv := a.pool.Get().(*invocation)
	defer a.put(inv, false)
	inv.ev = event{RawPath: ev.RawPath, RawQueryString: ev.RawQueryString, Cookies: ev.Cookies, Headers: ev.Headers, IsBase64Encoded: ev.IsBase64Encoded}
	inv.raw = []byte(ev.Body)
	rc := &inv.ev.RequestContext
	rc.Stage, rc.DomainName = ev.RequestContext.Stage, ev.RequestContext.DomainName
	rc.HTTP.Method, rc.HTTP.Path, rc.HTTP.Protocol, rc.HTTP.SourceIP = ev.RequestContext.HTTP.Method, ev.RequestContext.HTTP.Path, ev.RequestContext.HTTP.Protocol, ev.RequestContext.HTTP.SourceIP
	resp, err := a.serve(ctx, inv)
	if err != nil {
		return nil, err
	}
	return &events.APIGatewayV2HTTPResponse{StatusCode: resp.StatusCode, Headers: resp.Headers, Body: resp.Body, IsBase64Encoded: resp.IsBase64Encoded, Cookies: resp.Cookies}, nil
}

// put returns inv to the pool without the caller's data: inv.raw may
// point into the event's payload, and the typed entry points lend the
// caller's headers map, which decode would otherwise clear and refill.
func (a *Adapter) put(inv *invocation, ownHeaders bool) {
	inv.raw = nil
	if !ownHeaders {
		inv.ev.Headers = nil
	}
	a.pool.Put(inv)
}

// errNotHTTP marks an event without an HTTP method: not from a Function
// URL or an HTTP API (a test event sent by hand, another trigger).
var errNotHTTP = errors.New("not a Function URL or HTTP API 2.0 event: requestContext.http.method is empty")

// serve runs the decoded event in inv through the handler.
func (a *Adapter) serve(ctx context.Context, inv *invocation) (*response, error) {
	ev := &inv.ev
	if ev.RequestContext.HTTP.Method == "" {
		return nil, errNotHTTP
	}
	req, err := inv.request(ctx)
	if err != nil {
		return &response{
			StatusCode: http.StatusBadRequest,
			Headers:    map[string]string{"Content-Type": "text/plain; charset=utf-8"},
			Body:       err.Error() + "\n",
		}, nil
	}
	inv.w.reset()
	a.h.ServeHTTP(&inv.w, req)
	return inv.w.response(), nil
}

// request builds the *http.Request of the event in inv. Its body is
// inv.body, valid until inv is reused: the handler has returned by then.
func (inv *invocation) request(ctx context.Context) (*http.Request, error) {
	ev := &inv.ev
	inv.body = inv.body[:0]
	if ev.IsBase64Encoded {
		var err error
		if inv.body, err = base64.StdEncoding.AppendDecode(inv.body, inv.raw); err != nil {
			return nil, fmt.Errorf("request body: invalid base64: %w", err)
		}
	} else {
		inv.body = append(inv.body, inv.raw...)
	}
	target := requestPath(ev)
	if ev.RawQueryString != "" {
		target += "?" + ev.RawQueryString
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return nil, fmt.Errorf("request path %q: %w", target, err)
	}
	req, err := http.NewRequestWithContext(ctx, ev.RequestContext.HTTP.Method, "/", bytes.NewReader(inv.body))
	if err != nil {
		return nil, fmt.Errorf("request method %q: %w", ev.RequestContext.HTTP.Method, err)
	}
	req.URL, req.RequestURI = u, target
	req.ContentLength = int64(len(inv.body))
	if p := ev.RequestContext.HTTP.Protocol; p != "" {
		if major, minor, ok := http.ParseHTTPVersion(p); ok {
			req.Proto, req.ProtoMajor, req.ProtoMinor = p, major, minor
		}
	}
	// Function URLs send header names in lower case and join repeated
	// headers with commas; canonical keys make Header.Get find them, as
	// for a request read by net/http (the tenant header included).
	req.Header = make(http.Header, len(ev.Headers)+1)
	for k, v := range ev.Headers {
		req.Header[http.CanonicalHeaderKey(k)] = []string{v}
	}
	if len(ev.Cookies) > 0 {
		req.Header["Cookie"] = []string{strings.Join(ev.Cookies, "; ")}
	}
	// As net/http does, the Host header becomes req.Host.
	req.Host = req.Header.Get("Host")
	delete(req.Header, "Host")
	if req.Host == "" {
		req.Host = ev.RequestContext.DomainName
	}
	if ip := ev.RequestContext.HTTP.SourceIP; ip != "" {
		req.RemoteAddr = net.JoinHostPort(ip, "0")
	}
	return req, nil
}

// requestPath is the path the client asked for. An HTTP API stage other
// than $default prefixes rawPath with its name; the router's routes know
// nothing of stages, so the prefix goes.
func requestPath(ev *event) string {
	p := ev.RawPath
	if p == "" {
		p = ev.RequestContext.HTTP.Path
	}
	if s := ev.RequestContext.Stage; s != "" && s != "$default" {
		if rest, ok := strings.CutPrefix(p, "/"+s); ok && (rest == "" || rest[0] == '/') {
			p = rest
		}
	}
	if p == "" || p[0] != '/' {
		p = "/" + p
	}
	return p
}

// responseWriter collects the handler's answer, like
// httptest.ResponseRecorder but reused across invocations.
type responseWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *responseWriter) reset() {
	if w.header == nil {
		w.header = make(http.Header, 8)
	}
	clear(w.header)
	w.status = 0
	w.body.Reset()
}

func (w *responseWriter) Header() http.Header { return w.header }

func (w *responseWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(p)
}

// response turns the collected answer into a response event. Header
// values are joined with commas (response events have one value per
// name) except Set-Cookie, which goes to cookies as the event asks.
func (w *responseWriter) response() *response {
	resp := &response{StatusCode: w.status}
	if resp.StatusCode == 0 {
		resp.StatusCode = http.StatusOK
	}
	body := w.body.Bytes()
	// net/http would sniff a missing Content-Type; so does this, so a
	// body's type does not depend on how the router is run.
	if len(body) > 0 && w.header.Get("Content-Type") == "" {
		w.header.Set("Content-Type", http.DetectContentType(body))
	}
	if len(w.header) > 0 {
		resp.Headers = make(map[string]string, len(w.header))
	}
	for k, vs := range w.header {
		if k == "Set-Cookie" {
			resp.Cookies = append(resp.Cookies, vs...)
			continue
		}
		resp.Headers[k] = strings.Join(vs, ", ")
	}
	if len(body) == 0 {
		return resp
	}
	if isText(w.header.Get("Content-Type")) && utf8.Valid(body) {
		resp.Body = string(body)
	} else {
		resp.Body, resp.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
	}
	return resp
}

// isText tells whether a body of this media type is sent as text: the
// router's messages are text/plain, and JSON or XML read better in logs
// and test events than base64.
func isText(contentType string) bool {
	media, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	switch {
	case strings.HasPrefix(media, "text/"),
		media == "application/json", media == "application/xml", media == "application/javascript",
		strings.HasSuffix(media, "+json"), strings.HasSuffix(media, "+xml"):
		return true
	}
	return false
}
