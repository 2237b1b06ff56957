package loadgen

import (
	"math"
	"strconv"
	"strings"
)

// The series look like what a kubelet's cAdvisor endpoint exposes: twenty
// container metrics per pod, ten labels each, with label values that
// repeat across series the way real ones do (a few clusters and jobs, many
// nodes, one value per pod). That repetition is what a receiver's symbol
// tables, hashing and compression see in production.

// SeriesID names one generated series: a slot (0 to Config.Series-1) and
// the generation of the slot, which churn increments when it replaces the
// series by a new one (a new pod).
type SeriesID struct {
	Slot int
	Gen  int
}

// Label is a label pair of a generated series.
type Label struct{ Name, Value string }

// metricsPerPod is the number of series of one pod.
const metricsPerPod = 20

// podMetrics are the metric names of a pod's series; counters are the ones
// ending in _total.
var podMetrics = [metricsPerPod]string{
	"container_cpu_cfs_periods_total",
	"container_cpu_cfs_throttled_periods_total",
	"container_cpu_usage_seconds_total",
	"container_file_descriptors",
	"container_fs_reads_bytes_total",
	"container_fs_usage_bytes",
	"container_fs_writes_bytes_total",
	"container_last_seen",
	"container_memory_cache",
	"container_memory_rss",
	"container_memory_working_set_bytes",
	"container_network_receive_bytes_total",
	"container_network_receive_packets_total",
	"container_network_transmit_bytes_total",
	"container_network_transmit_packets_total",
	"container_processes",
	"container_sockets",
	"container_spec_cpu_shares",
	"container_spec_memory_limit_bytes",
	"container_threads",
}

// RelabelRules are metric_relabel_configs, in Prometheus' syntax, of the
// kind an operator applies to these series: 2 of every pod's 20 metrics
// dropped (10% of the series), and a label dropped from the others.
const RelabelRules = `- source_labels: [__name__]
  regex: container_(last_seen|spec_cpu_shares)
  action: drop
- regex: endpoint
  action: labeldrop
`

var (
	namespaces = []string{"default", "kube-system", "monitoring", "ingress-nginx", "payments", "checkout", "search", "identity", "logging", "data-pipeline", "recommendations", "notifications"}
	apps       = []string{"api", "worker", "frontend", "cache", "scheduler", "gateway", "indexer", "exporter"}
)

// podsPerNode spreads pods over nodes as a cluster of busy nodes does.
const podsPerNode = 30

// Labels returns the series' labels, sorted by name as remote-write
// requires.
func (id SeriesID) Labels() []Label {
	pod := id.Slot / metricsPerPod
	node := pod / podsPerNode
	ns := namespaces[pod%len(namespaces)]
	app := apps[(pod/len(namespaces))%len(apps)]
	return []Label{
		{"__name__", podMetrics[id.Slot%metricsPerPod]},
		{"cluster", "prod-eu-west-1"},
		{"container", app},
		{"endpoint", "https-metrics"},
		{"instance", "10." + strconv.Itoa(node>>16&255) + "." + strconv.Itoa(node>>8&255) + "." + strconv.Itoa(node&255) + ":10250"},
		{"job", "kubelet"},
		{"namespace", ns},
		{"node", "ip-10-" + strconv.Itoa(node>>16&255) + "-" + strconv.Itoa(node>>8&255) + "-" + strconv.Itoa(node&255) + ".eu-west-1.compute.internal"},
		{"pod", app + "-" + podSuffix(pod, id.Gen)},
		{"service", "kubelet"},
	}
}

// unsortedOrder is the order, as indexes into Labels, in which the
// unsorted mode writes a series' labels: a fixed permutation, so that
// every request costs a receiver the same to sort; a zigzag of ascending
// runs of at most two, so that it is neither nearly sorted nor reversed,
// which some sorts detect and undo cheaply; and __name__ last, so that
// nothing keyed on the first label finds the metric name there.
var unsortedOrder = [...]int{6, 2, 8, 4, 9, 1, 7, 3, 5, 0}

// UnsortedLabels returns the labels of Labels in an order that is not
// sorted by name (the same for every series), for measuring a receiver
// that sorts them on receipt: sorted, they are Labels.
func (id SeriesID) UnsortedLabels() []Label {
	ls := id.Labels()
	out := make([]Label, len(ls))
	for i, j := range unsortedOrder {
		out[i] = ls[j]
	}
	return out
}

// labels returns the series' labels in the order a request carries them.
func (id SeriesID) labels(unsorted bool) []Label {
	if unsorted {
		return id.UnsortedLabels()
	}
	return id.Labels()
}

// String renders the labels as Prometheus does ({a="b", c="d"}), so that
// acknowledged samples can be matched with what a TSDB returns.
func (id SeriesID) String() string { return formatLabels(id.Labels()) }

func formatLabels(ls []Label) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, l := range ls {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(l.Name)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(l.Value))
	}
	b.WriteByte('}')
	return b.String()
}

// podSuffix is a pod name suffix like a ReplicaSet's ("7f9c4d8b6-x2x9q..."):
// it looks random but is a one-to-one function of pod and generation, so
// that every generation of every pod is a distinct series.
func podSuffix(pod, gen int) string {
	const digits = "bcdfghjklmnpqrstvwxz0123456789"
	var b [19]byte
	// The first part, like a ReplicaSet hash, is shared by neighbouring
	// pods and need not be unique.
	h := mix(uint64(pod / 8))
	for i := 0; i < 9; i++ {
		b[i] = digits[h%uint64(len(digits))]
		h /= uint64(len(digits))
	}
	b[9] = '-'
	// The second is unique: up to 2^20 pods (20M series) and 2^21
	// generations fit 41 bits, which an odd multiplier permutes (it is
	// invertible modulo 2^41), and 9 digits of base 30 hold 41 bits.
	n := ((uint64(gen)<<20 | uint64(pod)) * 0x9e3779b97f4a7c15) & (1<<41 - 1)
	for i := 18; i > 9; i-- {
		b[i] = digits[n%uint64(len(digits))]
		n /= uint64(len(digits))
	}
	return string(b[:])
}

// isCounter tells whether the slot's metric is a counter.
func isCounter(slot int) bool { return strings.HasSuffix(podMetrics[slot%metricsPerPod], "_total") }

// Value is the value of the k-th sample of a series (k counts samples from
// the start of the run). Counters grow by a per-series step, gauges move
// around a per-series level, as real ones do; neither is constant, so the
// receiver's chunk encoder does real work.
func Value(id SeriesID, k int64) float64 {
	h := mix(uint64(id.Slot)<<32 ^ uint64(id.Gen))
	if isCounter(id.Slot) {
		step := float64(h%1000 + 1)
		return float64(k+1) * step
	}
	level := float64(h % (1 << 30))
	return level + float64(mix(h^uint64(k))%4096)
}

// mix is SplitMix64's finalizer: a cheap, well-spread hash.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// generation is the generation of slot after replaced replacements: churn
// replaces slots in order, wrapping around.
func generation(slot int, replaced int64, series int) int {
	n := int64(series)
	g := replaced / n
	if int64(slot) < replaced%n {
		g++
	}
	return int(g)
}

// replacements is how many series churn has replaced by sample time
// elapsed (ms since the first sample).
func replacements(churnPerMinute float64, series int, elapsedMs int64) int64 {
	if churnPerMinute <= 0 {
		return 0
	}
	return int64(math.Floor(churnPerMinute * float64(series) * float64(elapsedMs) / 60000))
}
