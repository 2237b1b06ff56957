package remotewrite

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"testing"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/s2"

	"github.com/stratametrics/strata/writeerr"
)

// TestFramedPiecesRecombine: the chunks of pieces encoded into one stream,
// copied after the identifier in any selection, decode to those pieces
// concatenated, with this package's decoder and with the snappy package's
// framing reader (the format's reference decoder in Go).
func TestFramedPiecesRecombine(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	var pieces [][]byte
	for _, n := range []int{0, 1, 100, 64 << 10, 64<<10 + 1, 300 << 10} {
		p := make([]byte, n)
		for i := range p {
			p[i] = "abcdefgh"[rnd.IntN(8)] // compressible
		}
		pieces = append(pieces, p)
	}
	incompressible := make([]byte, 70<<10)
	for i := range incompressible {
		incompressible[i] = byte(rnd.Uint32())
	}
	pieces = append(pieces, incompressible)

	enc := NewFramedEncoder()
	var stream Buffer
	enc.Start(&stream)
	if !bytes.Equal(stream.B, StreamIdentifier) {
		t.Fatalf("stream starts with %q, want %q", stream.B, StreamIdentifier)
	}
	bounds := []int{len(stream.B)}
	for _, p := range pieces {
		enc.Encode(p)
		bounds = append(bounds, len(stream.B))
	}
	enc.Done()

	for _, pick := range [][]int{{0, 1, 2, 3, 4, 5, 6}, {6, 2}, {3}, {}, {5, 1, 5}} {
		body := append([]byte(nil), StreamIdentifier...)
		var want []byte
		for _, k := range pick {
			body = append(body, stream.B[bounds[k]:bounds[k+1]]...)
			want = append(want, pieces[k]...)
		}
		var got Buffer
		if err := DecodeFramed(&got, body, 1<<30); err != nil {
			t.Fatalf("%v: %v", pick, err)
		}
		if !bytes.Equal(got.B, want) {
			t.Fatalf("%v: decoded %d bytes, want %d", pick, len(got.B), len(want))
		}
		ref, err := io.ReadAll(snappy.NewReader(bytes.NewReader(body)))
		if err != nil || !bytes.Equal(ref, want) {
			t.Fatalf("%v: the snappy package reads %d bytes (%v), want %d", pick, len(ref), err, len(want))
		}
	}
}

// TestDecodeFramedRefuses: a stream over the limit is ErrTooLarge without
// decoding much past it; a snappy block, a truncated stream and a bad
// checksum are ErrInvalid.
func TestDecodeFramedRefuses(t *testing.T) {
	zeros := make([]byte, 8<<20)
	var big bytes.Buffer
	w := s2.NewWriter(&big, s2.WriterSnappyCompat())
	_, _ = w.Write(zeros)
	_ = w.Close()
	var dst Buffer
	err := DecodeFramed(&dst, big.Bytes(), 1<<20)
	if !errors.Is(err, writeerr.ErrTooLarge) || writeerr.HTTPStatus(err) != http.StatusRequestEntityTooLarge {
		t.Fatalf("8 MiB over a 1 MiB limit: %v", err)
	}
	if cap(dst.B) > 4<<20 {
		t.Fatalf("grew to %d bytes for a 1 MiB limit", cap(dst.B))
	}

	var block Buffer
	EncodeSnappy(&block, []byte("a snappy block, not a stream"))
	truncated := big.Bytes()[:len(big.Bytes())/2]
	badCRC := bytes.Clone(big.Bytes()[:200])
	badCRC[len(StreamIdentifier)+5] ^= 0xff
	for name, src := range map[string][]byte{"block": block.B, "truncated": truncated, "bad checksum": badCRC} {
		err := DecodeFramed(&Buffer{}, src, 64<<20)
		if !errors.Is(err, writeerr.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

func FuzzDecodeFramed(f *testing.F) {
	enc := NewFramedEncoder()
	var stream Buffer
	enc.Start(&stream)
	enc.Encode(mustMarshal(f, sampleV1Request()))
	f.Add(stream.B)
	f.Add(StreamIdentifier)
	f.Fuzz(func(t *testing.T, src []byte) {
		var dst Buffer
		const limit = 1 << 20
		err := DecodeFramed(&dst, src, limit)
		if err == nil && len(dst.B) > limit {
			t.Fatalf("decoded %d bytes past the limit", len(dst.B))
		}
		if err != nil && !errors.Is(err, writeerr.ErrInvalid) && !errors.Is(err, writeerr.ErrTooLarge) {
			t.Fatalf("unclassified error %v", err)
		}
	})
}

// TestNegotiateEncoding: a block builder takes snappy and framed bodies;
// Negotiate, the router's, takes snappy only; answers announce framed in
// Accept-Encoding as RFC 7694 writes it.
func TestNegotiateEncoding(t *testing.T) {
	for _, c := range []struct {
		enc     string
		want    Encoding
		refused bool
	}{
		{"", Snappy, false},
		{"snappy", Snappy, false},
		{"x-snappy-framed", SnappyFramed, false},
		{" X-Snappy-Framed ", SnappyFramed, false},
		{"gzip", 0, true},
		{"snappy-framed", 0, true},
	} {
		h := http.Header{"Content-Type": {ContentTypeV2}}
		if c.enc != "" {
			h.Set("Content-Encoding", c.enc)
		}
		v, enc, err := NegotiateEncoding(h)
		if c.refused {
			if writeerr.HTTPStatus(err) != http.StatusUnsupportedMediaType {
				t.Errorf("%q: %v, want 415", c.enc, err)
			}
			continue
		}
		if err != nil || v != V2 || enc != c.want {
			t.Errorf("%q: %v %v %v, want 2.0 %v", c.enc, v, enc, err, c.want)
		}
		_, err = Negotiate(h)
		if (c.want == SnappyFramed) != (writeerr.HTTPStatus(err) == http.StatusUnsupportedMediaType) {
			t.Errorf("Negotiate %q: %v", c.enc, err)
		}
	}
	for value, want := range map[string]bool{
		AcceptEncoding:                true,
		"gzip, x-snappy-framed;q=0.5": true,
		"X-SNAPPY-FRAMED":             true,
		"snappy":                      false,
		"x-snappy-framed-not":         false,
		"":                            false,
	} {
		h := http.Header{}
		if value != "" {
			h.Set("Accept-Encoding", value)
		}
		if got := AcceptsFramed(h); got != want {
			t.Errorf("Accept-Encoding %q: %v, want %v", value, got, want)
		}
	}
}
