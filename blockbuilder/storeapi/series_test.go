package storeapi

import (
	"testing"

	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/tsdbutil"
)

// TestReencodeUnknownEncodings: chunks of encodings Thanos 0.42 does not
// know (XOR2, histograms with start timestamps) are sent re-encoded in
// the classic encoding of their sample type, samples intact.
func TestReencodeUnknownEncodings(t *testing.T) {
	xor2 := chunkenc.NewXOR2Chunk()
	app, err := xor2.Appender()
	if err != nil {
		t.Fatal(err)
	}
	for i := int64(0); i < 50; i++ {
		app.Append(i*1000-5, i*1000, float64(i)*1.5)
	}
	hst := chunkenc.NewHistogramSTChunk()
	happ, err := hst.Appender()
	if err != nil {
		t.Fatal(err)
	}
	hs := tsdbutil.GenerateTestHistograms(20)
	for i, h := range hs {
		var nc chunkenc.Chunk
		nc, _, happ, err = happ.AppendHistogram(nil, 0, int64(i)*1000, h, false)
		if err != nil || nc != nil {
			t.Fatalf("build the histogram chunk: %v %v", nc, err)
		}
	}
	for _, tc := range []struct {
		in   chunkenc.Chunk
		want ChunkEncoding
	}{{xor2, EncodingXOR}, {hst, EncodingHistogram}} {
		out, _, err := appendChunk(nil, nil, chunks.Meta{Chunk: tc.in, MinTime: 0, MaxTime: 49000})
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != 1 || out[0].Raw.Type != tc.want {
			t.Fatalf("%s: got %d chunks, first %+v", tc.in.Encoding(), len(out), out[0].Raw.Type)
		}
		got, err := chunkenc.FromData(chunkenc.Encoding(out[0].Raw.Type+1), out[0].Raw.Data)
		if err != nil {
			t.Fatal(err)
		}
		wantIt, gotIt := tc.in.Iterator(nil), got.Iterator(nil)
		n := 0
		for vt := wantIt.Next(); vt != chunkenc.ValNone; vt = wantIt.Next() {
			if gotIt.Next() != vt {
				t.Fatalf("%s: sample %d missing or of another type", tc.in.Encoding(), n)
			}
			if vt == chunkenc.ValFloat {
				wt, wv := wantIt.At()
				gt, gv := gotIt.At()
				if wt != gt || wv != gv {
					t.Fatalf("sample %d: (%d, %g), want (%d, %g)", n, gt, gv, wt, wv)
				}
			} else {
				wt, wh := wantIt.AtHistogram(nil)
				gt, gh := gotIt.AtHistogram(nil)
				if wt != gt || !wh.Equals(gh) {
					t.Fatalf("histogram sample %d differs", n)
				}
			}
			n++
		}
		if gotIt.Next() != chunkenc.ValNone {
			t.Fatalf("%s: extra samples after %d", tc.in.Encoding(), n)
		}
		if out[0].MinTime != 0 || out[0].MaxTime != int64(n-1)*1000 {
			t.Errorf("%s: range [%d, %d]", tc.in.Encoding(), out[0].MinTime, out[0].MaxTime)
		}
	}
}
