// HTTP routes of the UI: pages and the JSON API.

package web

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/stratametrics/strata/bucket/browse"
	"github.com/stratametrics/strata/bucket/metadata"
)

//go:embed templates/*.html
var templateFS embed.FS

var templates = template.Must(template.New("").Funcs(template.FuncMap{
	"bytes": func(n int64) string {
		if n < 0 {
			return "-"
		}
		return browse.FormatBytes(n)
	},
	"time":  func(ms int64) string { return time.UnixMilli(ms).UTC().Format("2006-01-02 15:04:05") },
	"quote": strconv.Quote,
	"upper": strings.ToUpper,
	"str":   func(s browse.Severity) string { return string(s) },
	"plural": func(n int, what string) string {
		if n == 1 {
			return "1 " + what
		}
		return strconv.Itoa(n) + " " + what + "s"
	},
}).ParseFS(templateFS, "templates/*.html"))

// Handler serves the pages and the API under Options.Prefix.
func (u *UI) Handler() http.Handler {
	p := u.opts.Prefix
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+p+"/{$}", u.serveIndex)
	mux.HandleFunc("GET "+p+"/blocks/{ulid}", u.serveBlock)
	mux.HandleFunc("GET "+p+"/api/tenants", u.serveTenants)
	mux.HandleFunc("GET "+p+"/api/blocks", u.serveBlocks)
	mux.HandleFunc("GET "+p+"/api/blocks/{ulid}", u.serveInspect)
	mux.HandleFunc("GET "+p+"/api/blocks/{ulid}/meta.json", u.serveMeta)
	mux.HandleFunc("GET "+p+"/api/problems", u.serveProblems)
	if p != "" {
		mux.Handle("GET "+p, http.RedirectHandler(p+"/", http.StatusMovedPermanently))
	}
	mux.HandleFunc(p+"/", func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, p+"/api/") {
			writeError(w, http.StatusNotFound, fmt.Errorf("no API endpoint %s %s", r.Method, r.URL.Path))
			return
		}
		http.NotFound(w, r)
	})
	return mux
}

// query is the filter of a page or API request.
type query struct {
	Tenant, Replica, From, Until string
	filter                       browse.Filter
}

func (u *UI) parseQuery(r *http.Request) (query, error) {
	q := r.URL.Query()
	out := query{Tenant: q.Get("tenant"), Replica: q.Get("replica"), From: q.Get("from"), Until: q.Get("until")}
	now := u.opts.Now()
	from, err := browse.ParseTime(out.From, now)
	if err != nil {
		return out, fmt.Errorf("%w: from: %v", errBadRequest, err)
	}
	until, err := browse.ParseTime(out.Until, now)
	if err != nil {
		return out, fmt.Errorf("%w: until: %v", errBadRequest, err)
	}
	out.filter = browse.Filter{Tenant: out.Tenant, Replica: out.Replica, From: from, Until: until}
	if err := out.filter.Validate(); err != nil {
		return out, fmt.Errorf("%w: %v", errBadRequest, err)
	}
	return out, nil
}

func (q query) match(b *block) bool {
	f := q.filter
	return (f.Tenant == "" || b.tenant == f.Tenant) &&
		(f.Replica == "" || b.replica == f.Replica) &&
		(f.From.IsZero() || b.maxTime > f.From.UnixMilli()) &&
		(f.Until.IsZero() || b.minTime <= f.Until.UnixMilli())
}

func parseULID(r *http.Request) (ulid.ULID, error) {
	s := r.PathValue("ulid")
	id, err := ulid.ParseStrict(s)
	if err != nil {
		return ulid.ULID{}, fmt.Errorf("%w: %q is not a block ULID: %v", errBadRequest, s, err)
	}
	return id, nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}

// statusOf classifies an error for the API.
func statusOf(err error) int {
	switch {
	case errors.Is(err, errBadRequest):
		return http.StatusBadRequest
	case errors.Is(err, browse.ErrNoBlock), errors.Is(err, metadata.ErrNotFound):
		return http.StatusNotFound
	}
	return http.StatusBadGateway // the bucket failed us
}

// TenantSummary is an entry of /api/tenants.
type TenantSummary struct {
	Tenant    string           `json:"tenant"`
	Blocks    int              `json:"blocks"`
	Samples   uint64           `json:"samples"`
	SizeBytes int64            `json:"sizeBytes"`
	MinTime   int64            `json:"minTime"`
	MaxTime   int64            `json:"maxTime"`
	Replicas  []ReplicaSummary `json:"replicas"`
}

// ReplicaSummary is a replica of a tenant in /api/tenants.
type ReplicaSummary struct {
	Replica   string `json:"replica"`
	Blocks    int    `json:"blocks"`
	Samples   uint64 `json:"samples"`
	SizeBytes int64  `json:"sizeBytes"`
	MinTime   int64  `json:"minTime"`
	MaxTime   int64  `json:"maxTime"`
}

// tenants summarises the blocks q selects, by tenant and replica, sorted.
func tenants(s *snapshot, q query) []TenantSummary {
	byTenant := map[string]*TenantSummary{}
	byReplica := map[[2]string]*ReplicaSummary{}
	for _, b := range s.blocks {
		if !q.match(b) {
			continue
		}
		t := byTenant[b.tenant]
		if t == nil {
			t = &TenantSummary{Tenant: b.tenant, MinTime: b.minTime, MaxTime: b.maxTime}
			byTenant[b.tenant] = t
		}
		r := byReplica[[2]string{b.tenant, b.replica}]
		if r == nil {
			r = &ReplicaSummary{Replica: b.replica, MinTime: b.minTime, MaxTime: b.maxTime}
			byReplica[[2]string{b.tenant, b.replica}] = r
		}
		for _, acc := range []struct {
			blocks  *int
			samples *uint64
			size    *int64
			min     *int64
			max     *int64
		}{{&t.Blocks, &t.Samples, &t.SizeBytes, &t.MinTime, &t.MaxTime}, {&r.Blocks, &r.Samples, &r.SizeBytes, &r.MinTime, &r.MaxTime}} {
			*acc.blocks++
			*acc.samples += b.samples
			*acc.size += max(b.size, 0)
			*acc.min = min(*acc.min, b.minTime)
			*acc.max = max(*acc.max, b.maxTime)
		}
	}
	for k, r := range byReplica {
		t := byTenant[k[0]]
		t.Replicas = append(t.Replicas, *r)
	}
	out := make([]TenantSummary, 0, len(byTenant))
	for _, t := range byTenant {
		slices.SortFunc(t.Replicas, func(a, b ReplicaSummary) int { return strings.Compare(a.Replica, b.Replica) })
		out = append(out, *t)
	}
	slices.SortFunc(out, func(a, b TenantSummary) int { return strings.Compare(a.Tenant, b.Tenant) })
	return out
}

func (u *UI) serveTenants(w http.ResponseWriter, r *http.Request) {
	q, err := u.parseQuery(r)
	if err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	s := u.snapshotFor(r)
	if s.at.IsZero() {
		writeError(w, http.StatusBadGateway, s.err)
		return
	}
	writeJSON(w, tenants(s, q))
}

// serveBlocks streams the selected blocks as a JSON array of browse.Row,
// in ULID order.
func (u *UI) serveBlocks(w http.ResponseWriter, r *http.Request) {
	q, err := u.parseQuery(r)
	if err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	s := u.snapshotFor(r)
	if s.at.IsZero() {
		writeError(w, http.StatusBadGateway, s.err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, "[")
	n := 0
	for _, b := range s.blocks {
		if !q.match(b) {
			continue
		}
		row, err := json.Marshal(b.row())
		if err != nil {
			return
		}
		if n > 0 {
			io.WriteString(w, ",")
		}
		io.WriteString(w, "\n")
		w.Write(row)
		n++
	}
	io.WriteString(w, "\n]\n")
}

func (u *UI) serveInspect(w http.ResponseWriter, r *http.Request) {
	id, err := parseULID(r)
	if err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	in, err := u.inspect(r.Context(), id)
	if err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	writeJSON(w, in)
}

// serveMeta sends the block's meta.json as it is in the bucket, as a
// download.
func (u *UI) serveMeta(w http.ResponseWriter, r *http.Request) {
	id, err := parseULID(r)
	if err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	bkt := u.br.Bucket()
	rc, err := bkt.Get(r.Context(), id.String()+"/"+metadata.MetaFilename)
	if err != nil {
		if bkt.IsObjNotFoundErr(err) {
			writeError(w, http.StatusNotFound, fmt.Errorf("block %s has no meta.json in %s", id, u.br.Name()))
			return
		}
		writeError(w, http.StatusBadGateway, err)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", id.String()+"-meta.json"))
	_, _ = io.Copy(w, rc)
}

// ProblemsResponse is /api/problems.
type ProblemsResponse struct {
	RefreshedAt time.Time        `json:"refreshedAt"`
	Problems    []browse.Problem `json:"problems"`
	// Note says what these checks leave to strata bucket verify.
	Note string `json:"note"`
}

const problemsNote = "Partial uploads and overlaps, from the listing and meta.json files; strata bucket verify also checks every block's files and index."

func (u *UI) serveProblems(w http.ResponseWriter, r *http.Request) {
	s := u.snapshotFor(r)
	if s.at.IsZero() {
		writeError(w, http.StatusBadGateway, s.err)
		return
	}
	ps := s.problems
	if ps == nil {
		ps = []browse.Problem{}
	}
	writeJSON(w, ProblemsResponse{RefreshedAt: s.at, Problems: ps, Note: problemsNote})
}

// page is what every page template gets.
type page struct {
	Prefix string
	Bucket string
	Title  string
}

func (u *UI) page(title string) page {
	return page{Prefix: u.opts.Prefix, Bucket: u.br.Name(), Title: title}
}

func (u *UI) render(w http.ResponseWriter, status int, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := templates.ExecuteTemplate(w, name, data); err != nil {
		u.opts.Logger.Warn("bucket web: render", "template", name, "err", err)
	}
}

type errorPage struct {
	page
	Status int
	Error  string
}

func (u *UI) renderError(w http.ResponseWriter, status int, err error) {
	u.render(w, status, "error.html", errorPage{page: u.page(http.StatusText(status)), Status: status, Error: err.Error()})
}

// blockPage is the data of a block's page.
type blockPage struct {
	page
	In     *browse.Inspection
	Labels [][2]string
	Total  int64
	Cut    string
}

func (u *UI) serveBlock(w http.ResponseWriter, r *http.Request) {
	id, err := parseULID(r)
	if err != nil {
		u.renderError(w, statusOf(err), err)
		return
	}
	in, err := u.inspect(r.Context(), id)
	if err != nil {
		u.renderError(w, statusOf(err), err)
		return
	}
	bp := blockPage{page: u.page("Block " + id.String()), In: in, Cut: ulid.Time(id.Time()).UTC().Format(time.RFC3339)}
	if in.Meta != nil {
		for _, k := range slices.Sorted(maps.Keys(in.Meta.Thanos.Labels)) {
			bp.Labels = append(bp.Labels, [2]string{k, in.Meta.Thanos.Labels[k]})
		}
	}
	for _, f := range in.Files {
		bp.Total += max(f.SizeBytes, 0)
	}
	u.render(w, http.StatusOK, "block.html", bp)
}

// link builds a page URL with a query.
func (u *UI) link(path string, q url.Values) string {
	s := u.opts.Prefix + path
	if enc := q.Encode(); enc != "" {
		s += "?" + enc
	}
	return s
}
