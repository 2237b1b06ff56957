package lambda

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/stratametrics/strata/remotewrite"
)

// decodeSeeds are events whose body the fast path takes, and events it
// must leave to encoding/json.
var decodeSeeds = []string{
	`{"version":"2.0","rawPath":"/api/v1/receive","headers":{"content-type":"application/x-protobuf","thanos-tenant":"a"},"requestContext":{"http":{"method":"POST"}},"body":"AAEC/w==","isBase64Encoded":true}`,
	`{"body":"plain text","requestContext":{"http":{"method":"POST","path":"/x"}}}`,
	` { "body" : "x" , "headers" : { "a" : "b" } } `,
	`{"body":"a\nb"}`,
	`{"body":"a\\nb\"c\u00e9\/"}`,
	`{"Body":"x"}`,
	`{"body":"x","BODY":"y"}`,
	`{"body":"x","body":"y"}`,
	`{"b\u006fdy":"x"}`,
	`{"body":null}`,
	`{"body":1}`,
	`{"body":"\xff\xfe"}`,
	`{"body":"é ü"}`,
	`{"body":"x",}`,
	`{"body":"x"} trailing`,
	`{"body":"x"`,
	`{"requestContext":{"body":"inner","http":{"method":"GET"}},"body":"outer"}`,
	`{"headers":{"body":"h"},"cookies":["body","x\"y"],"body":"b"}`,
	`{"headers":{"a":"1"},"headers":{"b":"2"},"body":""}`,
	`["body","x"]`,
	`"body"`,
	``,
	`{}`,
}

// FuzzDecode: the fast path decodes every event exactly as encoding/json
// does, or fails where it fails, fresh and on an invocation reused after
// another event.
func FuzzDecode(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add([]byte(s))
	}
	ev := writeEvent(remotewrite.V2, 20, "team-a")
	if b, err := json.Marshal(ev); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		var ref event
		refErr := json.Unmarshal(payload, &ref)
		refBody := ref.Body
		ref.Body = ""

		reused := &invocation{}
		if err := reused.decode([]byte(decodeSeeds[0])); err != nil {
			t.Fatal(err)
		}
		for _, inv := range []*invocation{{}, reused} {
			err := inv.decode(payload)
			if (err != nil) != (refErr != nil) {
				t.Fatalf("decode %q: error %v, encoding/json: %v", payload, err, refErr)
			}
			if err != nil {
				continue
			}
			if string(inv.raw) != refBody {
				t.Fatalf("decode %q: body %q, encoding/json: %q", payload, inv.raw, refBody)
			}
			got := inv.ev
			if len(got.Headers) == 0 && len(ref.Headers) == 0 {
				got.Headers = ref.Headers
			}
			if !reflect.DeepEqual(got, ref) {
				t.Fatalf("decode %q:\n got %+v\nwant %+v", payload, got, ref)
			}
		}
	})
}

// TestDecodeFastPath: the events Function URLs send take the fast path
// (else the benchmark would measure encoding/json).
func TestDecodeFastPath(t *testing.T) {
	for _, s := range []string{decodeSeeds[0], decodeSeeds[1], decodeSeeds[2], decodeSeeds[16], decodeSeeds[17]} {
		p := []byte(s)
		start, end, ok := findBody(p)
		if !ok || !plainString(p[start:end]) {
			t.Errorf("%s: not on the fast path", s)
		}
	}
	for _, i := range []int{3, 4, 5, 6, 7, 8, 9, 10, 11} {
		p := []byte(decodeSeeds[i])
		if start, end, ok := findBody(p); ok && plainString(p[start:end]) {
			t.Errorf("%s: on the fast path, want encoding/json", p)
		}
	}
}
