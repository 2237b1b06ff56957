// Decoding an event's JSON without running its body through encoding/json.

package lambda

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// decode reads payload, an event's JSON, into inv.ev and inv.raw (the
// body as the event carries it: base64 when ev.IsBase64Encoded).
//
// The body is almost all of an event, and encoding/json is slow on long
// strings: it validates the whole input, then unquotes each string byte
// by byte (four fifths of the adapter's time on a 2000-series write). So
// the body string is cut out first: a scan of the top-level object finds
// it, and when it holds no escapes its bytes are the body as they stand.
// encoding/json then decodes the rest, a few hundred bytes. Anything the
// scan is not sure of (escapes, invalid UTF-8, control characters, a key
// spelt otherwise, a repeated key, malformed JSON) goes to encoding/json
// whole, which is the reference FuzzDecode holds the fast path to.
func (inv *invocation) decode(payload []byte) error {
	// The headers map is kept: encoding/json fills a non-nil map in
	// place.
	h := inv.ev.Headers
	clear(h)
	inv.ev = event{Headers: h}
	if start, end, ok := findBody(payload); ok {
		raw := payload[start:end]
		if plainString(raw) {
			inv.rest = append(append(inv.rest[:0], payload[:start]...), payload[end:]...)
			if err := json.Unmarshal(inv.rest, &inv.ev); err != nil {
				return fmt.Errorf("decode HTTP event: %w", err)
			}
			inv.raw = raw
			return nil
		}
	}
	if err := json.Unmarshal(payload, &inv.ev); err != nil {
		return fmt.Errorf("decode HTTP event: %w", err)
	}
	inv.raw = append(inv.raw[:0:0], inv.ev.Body...)
	inv.ev.Body = ""
	return nil
}

// plainString tells whether raw, the bytes between a JSON string's
// quotes, is the string itself: valid UTF-8 without escapes or control
// characters (which JSON does not allow raw).
func plainString(raw []byte) bool {
	for _, c := range raw {
		if c < 0x20 || c == '\\' {
			return false
		}
	}
	return utf8.Valid(raw)
}

// findBody returns where the value of the top-level "body" key starts and
// ends, its quotes excluded, when payload is a JSON object in which that
// key appears once, spelt so, with a string value. It does not validate
// what it skips; encoding/json does, on the rest.
func findBody(p []byte) (start, end int, ok bool) {
	i := skipSpace(p, 0)
	if i >= len(p) || p[i] != '{' {
		return 0, 0, false
	}
	i = skipSpace(p, i+1)
	found := false
	for i < len(p) && p[i] != '}' {
		if p[i] != '"' {
			return 0, 0, false
		}
		kEnd, escaped, ok := skipString(p, i)
		if !ok || escaped {
			// An escaped key may spell "body": too rare to decode here.
			return 0, 0, false
		}
		key := p[i+1 : kEnd-1]
		i = skipSpace(p, kEnd)
		if i >= len(p) || p[i] != ':' {
			return 0, 0, false
		}
		i = skipSpace(p, i+1)
		vEnd, ok := skipValue(p, i)
		if !ok {
			return 0, 0, false
		}
		// encoding/json matches keys without regard to case, the last
		// one winning: any other spelling, or a second one, is left to
		// it.
		if bytes.EqualFold(key, []byte("body")) {
			if found || string(key) != "body" || p[i] != '"' {
				return 0, 0, false
			}
			found, start, end = true, i+1, vEnd-1
		}
		i = skipSpace(p, vEnd)
		if i < len(p) && p[i] == ',' {
			i = skipSpace(p, i+1)
			if i < len(p) && p[i] == '}' {
				return 0, 0, false // trailing comma
			}
		}
	}
	if i >= len(p) {
		return 0, 0, false
	}
	return start, end, found
}

func skipSpace(p []byte, i int) int {
	for i < len(p) && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at p[i] (a
// quote), and whether it holds escapes.
func skipString(p []byte, i int) (end int, escaped, ok bool) {
	j := i + 1
	for {
		q := bytes.IndexByte(p[j:], '"')
		if q < 0 {
			return 0, false, false
		}
		// A backslash before the quote escapes something: step over
		// it and the byte it escapes, and look again.
		if b := bytes.IndexByte(p[j:j+q], '\\'); b >= 0 {
			escaped = true
			j += b + 2
			if j > len(p) {
				return 0, false, false
			}
			continue
		}
		return j + q + 1, escaped, true
	}
}

// skipValue returns the index after the value starting at p[i].
func skipValue(p []byte, i int) (int, bool) {
	if i >= len(p) {
		return 0, false
	}
	switch p[i] {
	case '"':
		end, _, ok := skipString(p, i)
		return end, ok
	case '{', '[':
		depth := 0
		for i < len(p) {
			switch p[i] {
			case '"':
				end, _, ok := skipString(p, i)
				if !ok {
					return 0, false
				}
				i = end
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, true
				}
			}
			i++
		}
		return 0, false
	}
	// A number, true, false or null: up to the next delimiter.
	j := i
	for j < len(p) && p[j] != ',' && p[j] != '}' && p[j] != ']' && p[j] != ' ' && p[j] != '\t' && p[j] != '\n' && p[j] != '\r' {
		j++
	}
	if j == i {
		return 0, false
	}
	return j, true
}
