package shard

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// benchSeries returns n series of 10 labels as name/value slices of one
// buffer, the way the router reads them from a request.
func benchSeries(n int) [][][2][]byte {
	var buf []byte
	type span struct{ name, value [2]int }
	spans := make([][]span, n)
	for i := range spans {
		pairs := [][2]string{
			{"__name__", "http_server_request_duration_seconds_bucket"},
			{"cluster", "eu-west-1-prod"},
			{"code", strconv.Itoa(200 + i%5)},
			{"handler", "/api/v1/push"},
			{"instance", "10.42." + strconv.Itoa(i/256%256) + "." + strconv.Itoa(i%256) + ":8080"},
			{"job", "ingest-gateway"},
			{"le", strconv.Itoa(i % 13)},
			{"method", "POST"},
			{"namespace", "observability"},
			{"pod", "ingest-gateway-7c9f8d6b5-" + strconv.Itoa(i)},
		}
		for _, p := range pairs {
			var sp span
			sp.name = [2]int{len(buf), len(buf) + len(p[0])}
			buf = append(buf, p[0]...)
			sp.value = [2]int{len(buf), len(buf) + len(p[1])}
			buf = append(buf, p[1]...)
			spans[i] = append(spans[i], sp)
		}
	}
	out := make([][][2][]byte, n)
	flat := make([][2][]byte, 0, 10*n)
	for i, ss := range spans {
		start := len(flat)
		for _, sp := range ss {
			flat = append(flat, [2][]byte{buf[sp.name[0]:sp.name[1]], buf[sp.value[0]:sp.value[1]]})
		}
		out[i] = flat[start:len(flat):len(flat)]
	}
	return out
}

// BenchmarkOwners measures what the router does per series: hash the tenant
// and labels, then look up the owners.
func BenchmarkOwners(b *testing.B) {
	series := benchSeries(4096)
	for _, algorithm := range []string{"ketama", "hashmod"} {
		for _, n := range []int{3, 30} {
			b.Run(fmt.Sprintf("%s/endpoints=%d/rf=3", algorithm, n), func(b *testing.B) {
				h := ringOf(b, algorithm, 3, addresses(n))
				var hasher Hasher
				dst := make([]int, 0, 3)
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					hasher.Reset("tenant-a")
					for _, p := range series[i&4095] {
						hasher.Add(p[0], p[1])
					}
					dst = h.Owners(hasher.Sum64(), dst[:0])
					i++
				}
			})
		}
	}
}

// BenchmarkHashSeries measures the hash alone, from labels.Labels.
func BenchmarkHashSeries(b *testing.B) {
	ls := labels.FromStrings(
		"__name__", "http_server_request_duration_seconds_bucket", "cluster", "eu-west-1-prod", "code", "200",
		"handler", "/api/v1/push", "instance", "10.42.0.1:8080", "job", "ingest-gateway", "le", "0.5",
		"method", "POST", "namespace", "observability", "pod", "ingest-gateway-7c9f8d6b5-x2x9q")
	b.ReportAllocs()
	for b.Loop() {
		_ = HashSeries("tenant-a", ls)
	}
}

// BenchmarkNewRing measures building a ring, which a reload does.
func BenchmarkNewRing(b *testing.B) {
	for _, n := range []int{3, 30} {
		b.Run(fmt.Sprintf("endpoints=%d/rf=3", n), func(b *testing.B) {
			cfg := HashringConfig{Name: "h"}
			for _, a := range addresses(n) {
				cfg.Endpoints = append(cfg.Endpoints, Endpoint{Address: a})
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := NewRing([]HashringConfig{cfg}, Options{ReplicationFactor: 3}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
