// `strata bucket ls`: blocks by tenant and replica as a table, JSON or CSV.

package browse

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/oklog/ulid/v2"
)

// Format is an output format of List.
type Format string

const (
	// FormatTable is a compact table per tenant and replica.
	FormatTable Format = "table"
	// FormatWide is the table with every column.
	FormatWide Format = "wide"
	// FormatJSON is a JSON array of Row, written as blocks are read.
	FormatJSON Format = "json"
	// FormatCSV is CSV with a header line, written as blocks are read.
	FormatCSV Format = "csv"
)

// ParseFormat reads -o; "" is the table.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case "":
		return FormatTable, nil
	case FormatTable, FormatWide, FormatJSON, FormatCSV:
		return f, nil
	}
	return "", fmt.Errorf("output format %q: want table, wide, json or csv", s)
}

// Row is a block as ls and the web API show it.
type Row struct {
	Tenant  string `json:"tenant"`
	Replica string `json:"replica"`
	ULID    string `json:"ulid"`
	// MinTime and MaxTime are milliseconds since the epoch; MaxTime is
	// exclusive. From and Until are the same in RFC 3339, UTC.
	MinTime    int64  `json:"minTime"`
	MaxTime    int64  `json:"maxTime"`
	From       string `json:"from"`
	Until      string `json:"until"`
	Range      string `json:"range"`
	Series     uint64 `json:"series"`
	Samples    uint64 `json:"samples"`
	Chunks     uint64 `json:"chunks"`
	Level      int    `json:"level"`
	Source     string `json:"source"`
	Resolution int64  `json:"resolution"`
	// SizeBytes is the sum of the sizes meta.json lists; -1 when it lists
	// none (metas of old Thanos versions).
	SizeBytes int64             `json:"sizeBytes"`
	Labels    map[string]string `json:"labels"`
}

// RowOf is bl as a Row.
func RowOf(bl Block) Row {
	m := bl.Meta
	size, ok := bl.Size()
	if !ok {
		size = -1
	}
	return Row{
		Tenant:     bl.Tenant,
		Replica:    bl.Replica,
		ULID:       m.ULID.String(),
		MinTime:    m.MinTime,
		MaxTime:    m.MaxTime,
		From:       FormatTime(m.MinTime),
		Until:      FormatTime(m.MaxTime),
		Range:      FormatDuration(time.Duration(m.MaxTime-m.MinTime) * time.Millisecond),
		Series:     m.Stats.NumSeries,
		Samples:    m.Stats.NumSamples,
		Chunks:     m.Stats.NumChunks,
		Level:      m.Compaction.Level,
		Source:     m.Thanos.Source,
		Resolution: m.Thanos.Downsample.Resolution,
		SizeBytes:  size,
		Labels:     m.Thanos.Labels,
	}
}

// FormatTime is a TSDB timestamp in RFC 3339 with milliseconds, UTC.
func FormatTime(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// ListOptions configure List.
type ListOptions struct {
	Filter Filter
	Format Format
	// TempDir holds the table's spill file; "" is os.TempDir().
	TempDir string
}

// ListSummary counts what List saw.
type ListSummary struct {
	// Blocks is the number of blocks written, Groups the number of
	// tenant and replica pairs they belong to.
	Blocks, Groups int
	// Partial counts directories without meta.json; PartialIDs are the
	// first few of them.
	Partial    int
	PartialIDs []ulid.ULID
	// Unreadable are blocks whose meta.json could not be read, with why.
	Unreadable []Entry
}

// maxListed bounds the IDs a summary keeps for a message.
const maxListed = 5

// List writes the blocks opts.Filter selects to w in opts.Format.
//
// Memory: JSON and CSV write each row as its meta.json arrives, so they
// hold Config.Concurrency metas at most. The tables group rows by tenant
// and replica while blocks arrive in ULID order, so they spill each row
// to an unlinked temporary file (about 150 bytes a block) and keep per
// group two file offsets and its totals, plus the column widths: memory
// is O(groups + Concurrency), disk O(blocks). Unreadable metas are kept
// in the summary; a healthy bucket has none.
func (b *Browser) List(ctx context.Context, w io.Writer, opts ListOptions) (ListSummary, error) {
	if err := opts.Filter.Validate(); err != nil {
		return ListSummary{}, err
	}
	var out rowWriter
	bw := bufio.NewWriterSize(w, 64<<10)
	switch opts.Format {
	case FormatJSON:
		out = &jsonRows{w: bw}
	case FormatCSV:
		out = &csvRows{w: csv.NewWriter(bw)}
	case FormatTable, FormatWide, "":
		t, err := newTableRows(bw, opts.Format == FormatWide, opts.TempDir, b.cfg)
		if err != nil {
			return ListSummary{}, err
		}
		defer t.close()
		out = t
	default:
		return ListSummary{}, fmt.Errorf("output format %q: want table, wide, json or csv", opts.Format)
	}
	var sum ListSummary
	err := b.Walk(ctx, func(e Entry) error {
		switch {
		case e.Partial():
			sum.Partial++
			if len(sum.PartialIDs) < maxListed {
				sum.PartialIDs = append(sum.PartialIDs, e.ID)
			}
			return nil
		case e.Err != nil:
			sum.Unreadable = append(sum.Unreadable, e)
			return nil
		}
		bl := b.NewBlock(e.Meta)
		if !opts.Filter.Match(bl) {
			return nil
		}
		sum.Blocks++
		return out.row(bl)
	})
	if err != nil {
		return sum, err
	}
	groups, err := out.finish()
	if err != nil {
		return sum, err
	}
	sum.Groups = groups
	if err := bw.Flush(); err != nil {
		return sum, fmt.Errorf("write output: %w", err)
	}
	return sum, nil
}

// rowWriter writes blocks in one format; finish returns the number of
// tenant and replica groups.
type rowWriter interface {
	row(Block) error
	finish() (int, error)
}

// groupCounter counts distinct tenant and replica pairs for the
// streaming formats; it is the one per-group state they keep.
type groupCounter map[[2]string]struct{}

func (g groupCounter) add(bl Block) { g[[2]string{bl.Tenant, bl.Replica}] = struct{}{} }

type jsonRows struct {
	w      *bufio.Writer
	n      int
	groups groupCounter
}

func (j *jsonRows) row(bl Block) error {
	if j.groups == nil {
		j.groups = groupCounter{}
	}
	j.groups.add(bl)
	b, err := json.Marshal(RowOf(bl))
	if err != nil {
		return fmt.Errorf("encode block %s: %w", bl.Meta.ULID, err)
	}
	sep := ",\n"
	if j.n == 0 {
		sep = "[\n"
	}
	j.n++
	j.w.WriteString(sep)
	_, err = j.w.Write(b)
	return err
}

func (j *jsonRows) finish() (int, error) {
	if j.n == 0 {
		_, err := j.w.WriteString("[]\n")
		return 0, err
	}
	_, err := j.w.WriteString("\n]\n")
	return len(j.groups), err
}

// CSVHeader is the header line of -o csv.
var CSVHeader = []string{"tenant", "replica", "ulid", "min_time", "max_time", "from", "until", "range", "series", "samples", "chunks", "level", "source", "resolution", "size_bytes", "labels"}

type csvRows struct {
	w      *csv.Writer
	n      int
	groups groupCounter
}

func (c *csvRows) row(bl Block) error {
	if c.n == 0 {
		c.groups = groupCounter{}
		if err := c.w.Write(CSVHeader); err != nil {
			return err
		}
	}
	c.n++
	c.groups.add(bl)
	r := RowOf(bl)
	rec := []string{
		r.Tenant, r.Replica, r.ULID,
		strconv.FormatInt(r.MinTime, 10), strconv.FormatInt(r.MaxTime, 10), r.From, r.Until, r.Range,
		strconv.FormatUint(r.Series, 10), strconv.FormatUint(r.Samples, 10), strconv.FormatUint(r.Chunks, 10),
		strconv.Itoa(r.Level), r.Source, strconv.FormatInt(r.Resolution, 10), strconv.FormatInt(r.SizeBytes, 10),
		FormatLabels(r.Labels),
	}
	if err := c.w.Write(rec); err != nil {
		return err
	}
	// csv.Writer buffers without bound; hand rows to the bufio.Writer.
	c.w.Flush()
	return c.w.Error()
}

func (c *csvRows) finish() (int, error) {
	if c.n == 0 {
		if err := c.w.Write(CSVHeader); err != nil {
			return 0, err
		}
	}
	c.w.Flush()
	return len(c.groups), c.w.Error()
}

// FormatLabels writes labels sorted by name as name="value",...
func FormatLabels(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + strconv.Quote(m[k])
	}
	return strings.Join(parts, ",")
}

// tableRows writes the tables: rows go to the spill file, grouped by
// tenant and replica, and are printed group by group at the end with
// column widths measured on the way in.
type tableRows struct {
	w      *bufio.Writer
	wide   bool
	cfg    Config
	spill  *spill
	groups map[[2]string]*tableGroup
	header []string
	widths []int
	cells  []string
	buf    []byte
}

type tableGroup struct {
	tenant, replica  string
	chain            spillChain
	minTime, maxTime int64
	samples          uint64
	size             int64
}

var (
	compactColumns = []string{"ULID", "FROM", "UNTIL", "RANGE", "SERIES", "SAMPLES", "SIZE"}
	wideColumns    = []string{"ULID", "FROM", "UNTIL", "RANGE", "SERIES", "SAMPLES", "CHUNKS", "LEVEL", "SOURCE", "SIZE", "LABELS"}
)

func newTableRows(w *bufio.Writer, wide bool, tempDir string, cfg Config) (*tableRows, error) {
	sp, err := newSpill(tempDir)
	if err != nil {
		return nil, err
	}
	header := compactColumns
	if wide {
		header = wideColumns
	}
	t := &tableRows{w: w, wide: wide, cfg: cfg, spill: sp, groups: map[[2]string]*tableGroup{}, header: header, widths: make([]int, len(header)), cells: make([]string, len(header))}
	for i, h := range header {
		t.widths[i] = len(h)
	}
	return t, nil
}

func (t *tableRows) close() { t.spill.Close() }

// tableTime is the table's time column: UTC to the second.
func tableTime(ms int64) string { return time.UnixMilli(ms).UTC().Format("2006-01-02 15:04:05") }

func (t *tableRows) row(bl Block) error {
	m := bl.Meta
	size := "-"
	if n, ok := bl.Size(); ok {
		size = FormatBytes(n)
	}
	c := t.cells[:0]
	c = append(c, m.ULID.String(), tableTime(m.MinTime), tableTime(m.MaxTime),
		FormatDuration(time.Duration(m.MaxTime-m.MinTime)*time.Millisecond),
		strconv.FormatUint(m.Stats.NumSeries, 10), strconv.FormatUint(m.Stats.NumSamples, 10))
	if t.wide {
		c = append(c, strconv.FormatUint(m.Stats.NumChunks, 10), strconv.Itoa(m.Compaction.Level), m.Thanos.Source, size, bl.OtherLabels(t.cfg))
	} else {
		c = append(c, size)
	}
	for i, s := range c {
		t.widths[i] = max(t.widths[i], utf8.RuneCountInString(s))
	}
	key := [2]string{bl.Tenant, bl.Replica}
	g := t.groups[key]
	if g == nil {
		g = &tableGroup{tenant: bl.Tenant, replica: bl.Replica, minTime: m.MinTime, maxTime: m.MaxTime}
		t.groups[key] = g
	}
	g.minTime, g.maxTime = min(g.minTime, m.MinTime), max(g.maxTime, m.MaxTime)
	g.samples += m.Stats.NumSamples
	if n, ok := bl.Size(); ok {
		g.size += n
	}
	t.buf = appendCells(t.buf[:0], c)
	return t.spill.add(&g.chain, t.buf)
}

func (t *tableRows) finish() (int, error) {
	if len(t.groups) == 0 {
		_, err := t.w.WriteString("No blocks.\n")
		return 0, err
	}
	groups := make([]*tableGroup, 0, len(t.groups))
	for _, g := range t.groups {
		groups = append(groups, g)
	}
	slices.SortFunc(groups, func(a, b *tableGroup) int {
		if c := strings.Compare(a.tenant, b.tenant); c != 0 {
			return c
		}
		return strings.Compare(a.replica, b.replica)
	})
	blocks := 0
	tenants := map[string]struct{}{}
	for i, g := range groups {
		if i > 0 {
			t.w.WriteByte('\n')
		}
		tenants[g.tenant] = struct{}{}
		blocks += g.chain.n
		fmt.Fprintf(t.w, "TENANT %s  REPLICA %s  %s, %s to %s, %d samples, %s\n",
			orNone(g.tenant, t.cfg.TenantLabel), orNone(g.replica, t.cfg.ReplicaLabel), plural(g.chain.n, "block"),
			tableTime(g.minTime), tableTime(g.maxTime), g.samples, FormatBytes(g.size))
		t.line(t.header)
		if err := t.spill.each(g.chain, func(rec []byte) error {
			if err := readCells(rec, t.cells); err != nil {
				return err
			}
			t.line(t.cells)
			return nil
		}); err != nil {
			return 0, err
		}
	}
	fmt.Fprintf(t.w, "\n%s of %s in %s; times are UTC.\n", plural(blocks, "block"), plural(len(tenants), "tenant"), plural(len(groups), "tenant and replica group"))
	return len(groups), nil
}

// line writes cells padded to the column widths; numbers align right.
func (t *tableRows) line(cells []string) {
	for i, c := range cells {
		pad := t.widths[i] - utf8.RuneCountInString(c)
		last := i == len(cells)-1
		if rightAligned(t.header[i]) {
			t.w.WriteString(strings.Repeat(" ", pad))
			t.w.WriteString(c)
		} else {
			t.w.WriteString(c)
			if !last {
				t.w.WriteString(strings.Repeat(" ", pad))
			}
		}
		if !last {
			t.w.WriteString("  ")
		}
	}
	t.w.WriteByte('\n')
}

func rightAligned(col string) bool {
	switch col {
	case "SERIES", "SAMPLES", "CHUNKS", "LEVEL", "SIZE":
		return true
	}
	return false
}

func orNone(v, label string) string {
	if v == "" {
		return "(no " + label + " label)"
	}
	return v
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

// FormatBytes writes a size in binary units: 512 B, 12.3 KiB, 4.0 MiB.
func FormatBytes(n int64) string {
	if n < 1024 {
		return strconv.FormatInt(n, 10) + " B"
	}
	f := float64(n)
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB"} {
		f /= 1024
		if f < 1024 || u == "TiB" {
			return strconv.FormatFloat(f, 'f', 1, 64) + " " + u
		}
	}
	return ""
}
