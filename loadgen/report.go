package loadgen

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"
)

// Report is what a run measured. Rates, latencies and CPU are over the
// measured window (after the warm-up); the acknowledged, dropped and
// abandoned counts and the errors are over the whole run.
type Report struct {
	URL      string   `json:"url"`
	Protocol Protocol `json:"protocol"`
	// Compression is the requests' Content-Encoding ("identity" for
	// none).
	Compression       string  `json:"compression"`
	Series            int     `json:"series"`
	SamplesPerRequest int     `json:"samples_per_request"`
	SamplesPerSeries  int     `json:"samples_per_series"`
	Concurrency       int     `json:"concurrency"`
	Churn             float64 `json:"churn_per_minute"`
	UnsortedLabels    bool    `json:"unsorted_labels,omitempty"`
	Tenants           int     `json:"tenants,omitempty"`

	// DurationSeconds is the measured window.
	DurationSeconds  float64 `json:"duration_seconds"`
	Requests         int64   `json:"requests"`
	Samples          int64   `json:"samples"`
	SamplesPerSecond float64 `json:"samples_per_second"`
	// BodyBytesPerSample is the bytes sent per sample, as compressed.
	BodyBytesPerSample float64 `json:"body_bytes_per_sample"`
	LatencyP50Seconds  float64 `json:"latency_p50_seconds"`
	LatencyP99Seconds  float64 `json:"latency_p99_seconds"`

	AckedSamples int64 `json:"acked_samples"`
	// DroppedSamples were refused for good: 4xx but 429, or refused in
	// an OTLP partial success (counted in Errors under PartialKey).
	DroppedSamples   int64 `json:"dropped_samples"`
	AbandonedSamples int64 `json:"abandoned_samples"`
	Retries          int64 `json:"retries"`
	// Errors counts failed attempts by status code, or "transport" when no
	// answer came; ErrorExamples holds the first answer of each.
	Errors        map[string]int64  `json:"errors"`
	ErrorExamples map[string]string `json:"error_examples,omitempty"`

	Processes []ProcessReport `json:"processes,omitempty"`
	// ServerCPUSeconds is the CPU time of all Processes in the window.
	ServerCPUSeconds          float64 `json:"server_cpu_seconds,omitempty"`
	SamplesPerServerCPUSecond float64 `json:"samples_per_server_cpu_second,omitempty"`
	ServerNsPerSample         float64 `json:"server_ns_per_sample,omitempty"`
	// GeneratorCPUSeconds is this process's CPU time in the window.
	GeneratorCPUSeconds  float64 `json:"generator_cpu_seconds"`
	GeneratorNsPerSample float64 `json:"generator_ns_per_sample"`
}

// ProcessReport is one watched process.
type ProcessReport struct {
	Pid          int     `json:"pid"`
	CPUSeconds   float64 `json:"cpu_seconds"`
	PeakRSSBytes int64   `json:"peak_rss_bytes"`
	RSSBytes     int64   `json:"rss_bytes"`
	Error        string  `json:"error,omitempty"`
}

func (r *runner) report(before, after snapshot, lat []time.Duration) Report {
	c := &r.cfg
	rep := Report{
		URL: r.url, Protocol: c.Protocol, Compression: c.compression(), Series: c.Series, SamplesPerRequest: c.SamplesPerRequest,
		SamplesPerSeries: c.SamplesPerSeries, Concurrency: c.Concurrency, Churn: c.Churn, UnsortedLabels: c.UnsortedLabels, Tenants: c.Tenants,
		DurationSeconds:  after.at.Sub(before.at).Seconds(),
		Requests:         r.winRequests.Load(),
		Samples:          r.winSamples.Load(),
		AckedSamples:     r.acked.Load(),
		DroppedSamples:   r.dropped.Load(),
		AbandonedSamples: r.abandoned.Load(),
		Retries:          r.retries.Load(),
		Errors:           map[string]int64{},
	}
	r.mu.Lock()
	for k, v := range r.errors {
		rep.Errors[k] = v
	}
	if len(r.examples) > 0 {
		rep.ErrorExamples = map[string]string{}
		for k, v := range r.examples {
			rep.ErrorExamples[k] = v
		}
	}
	r.mu.Unlock()
	if rep.DurationSeconds > 0 {
		rep.SamplesPerSecond = float64(rep.Samples) / rep.DurationSeconds
	}
	if rep.Samples > 0 {
		rep.BodyBytesPerSample = float64(r.winBytes.Load()) / float64(rep.Samples)
	}
	slices.Sort(lat)
	rep.LatencyP50Seconds = percentile(lat, 0.50).Seconds()
	rep.LatencyP99Seconds = percentile(lat, 0.99).Seconds()

	var server time.Duration
	for i, pid := range c.Pids {
		p := ProcessReport{Pid: pid}
		switch {
		case before.errs[i] != nil:
			p.Error = before.errs[i].Error()
		case after.errs[i] != nil:
			p.Error = after.errs[i].Error()
		default:
			d := after.cpu[i] - before.cpu[i]
			p.CPUSeconds = d.Seconds()
			server += d
		}
		if peak, cur, err := ProcessMemory(pid); err == nil {
			p.PeakRSSBytes, p.RSSBytes = peak, cur
		} else if p.Error == "" {
			p.Error = err.Error()
		}
		rep.Processes = append(rep.Processes, p)
	}
	rep.ServerCPUSeconds = server.Seconds()
	if server > 0 && rep.Samples > 0 {
		rep.SamplesPerServerCPUSecond = float64(rep.Samples) / server.Seconds()
		rep.ServerNsPerSample = float64(server.Nanoseconds()) / float64(rep.Samples)
	}
	gen := after.self - before.self
	rep.GeneratorCPUSeconds = gen.Seconds()
	if rep.Samples > 0 {
		rep.GeneratorNsPerSample = float64(gen.Nanoseconds()) / float64(rep.Samples)
	}
	return rep
}

// percentile of sorted durations, nearest rank.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// PeakRSSBytes is the sum of the watched processes' peak RSS.
func (r *Report) PeakRSSBytes() int64 {
	var n int64
	for _, p := range r.Processes {
		n += p.PeakRSSBytes
	}
	return n
}

// WriteText writes the report for people.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	unsorted := ""
	if r.UnsortedLabels {
		unsorted = ", labels unsorted"
	}
	if r.Tenants > 1 {
		unsorted += fmt.Sprintf(", over %d tenants", r.Tenants)
	}
	proto := fmt.Sprintf("remote-write %s.0", r.Protocol)
	if r.Protocol == OTLP {
		proto = "OTLP/HTTP protobuf, " + r.Compression
	}
	fmt.Fprintf(&b, "strata loadgen: %s series, %s, %d samples/request (%d per series), %d senders, churn %g/min%s\n",
		thousands(float64(r.Series)), proto, r.SamplesPerRequest, r.SamplesPerSeries, r.Concurrency, r.Churn, unsorted)
	fmt.Fprintf(&b, "  target           %s\n", r.URL)
	fmt.Fprintf(&b, "  samples/s        %s  (%s samples in %s requests over %.1fs, %.2f bytes/sample on the wire)\n",
		thousands(r.SamplesPerSecond), thousands(float64(r.Samples)), thousands(float64(r.Requests)), r.DurationSeconds, r.BodyBytesPerSample)
	fmt.Fprintf(&b, "  latency          p50 %s  p99 %s\n", seconds(r.LatencyP50Seconds), seconds(r.LatencyP99Seconds))
	if len(r.Errors) == 0 {
		fmt.Fprintf(&b, "  errors           none\n")
	} else {
		keys := make([]string, 0, len(r.Errors))
		for k := range r.Errors {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%s: %d", k, r.Errors[k])
		}
		fmt.Fprintf(&b, "  errors           %s\n", strings.Join(parts, ", "))
		for _, k := range keys {
			if ex := r.ErrorExamples[k]; ex != "" {
				fmt.Fprintf(&b, "    first %s: %s\n", k, clip(ex, 300))
			}
		}
	}
	fmt.Fprintf(&b, "  whole run        %s samples acknowledged, %s dropped (4xx or partial success), %s abandoned, %d retries\n",
		thousands(float64(r.AckedSamples)), thousands(float64(r.DroppedSamples)), thousands(float64(r.AbandonedSamples)), r.Retries)
	for _, p := range r.Processes {
		if p.Error != "" {
			fmt.Fprintf(&b, "  pid %-12d %s\n", p.Pid, p.Error)
			continue
		}
		fmt.Fprintf(&b, "  pid %-12d CPU %.2fs (%.2f cores), peak RSS %s\n", p.Pid, p.CPUSeconds, p.CPUSeconds/max(r.DurationSeconds, 1e-9), mb(p.PeakRSSBytes))
	}
	if r.SamplesPerServerCPUSecond > 0 {
		fmt.Fprintf(&b, "  server           %s samples per CPU-second (%.0f ns/sample), peak RSS %s\n",
			thousands(r.SamplesPerServerCPUSecond), r.ServerNsPerSample, mb(r.PeakRSSBytes()))
	}
	fmt.Fprintf(&b, "  generator        CPU %.2fs, %.0f ns/sample", r.GeneratorCPUSeconds, r.GeneratorNsPerSample)
	if r.ServerNsPerSample > 0 {
		fmt.Fprintf(&b, " (%.1f%% of the server's)", 100*r.GeneratorNsPerSample/r.ServerNsPerSample)
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var out []byte
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

func seconds(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(10 * time.Microsecond).String()
}

func mb(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/1e6) }

func clip(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
