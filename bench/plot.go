package bench

import (
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
)

// The plot is an SVG written as text, the way bucket/web draws its
// timeline: the geometry is computed here, and every title, tick, label
// and legend entry is a <text> element. Two panels of lines, one per
// scenario, against active series on a log scale, with each scenario's
// target dashed and the baselines as diamonds (often a single one, at the
// anchors' series count).

const (
	plotFont = `font-family="sans-serif" font-size="14"`
	black    = "#1e1e1e"
	grey     = "#d7d7d7"
	// charWidth is a generous estimate of a character's width at the
	// plot's font size, to lay out the legend.
	charWidth = 8.0
)

var colors = map[string]string{
	BlockBuilder: "#1f77b4",
	Dev:          "#ff7f0e",
	Router:       "#2ca02c",
	RouterWide:   "#17becf",
	// The baselines' colours stand apart from Strata's.
	VictoriaMetrics: "#9467bd",
	Prometheus:      "#d62728",
}

// target is a scenario's target of its measured processes, drawn dashed:
// samples per CPU-second (panel 0) or peak RSS (panel 1); 0 for none.
func target(scenario string, panel int) float64 {
	for _, t := range Targets {
		if t.Scenario != scenario || t.AllProcesses {
			continue
		}
		if panel == 0 {
			return t.SamplesPerCPUSecond
		}
		return float64(t.PeakRSSBytes)
	}
	return 0
}

type series struct {
	name string
	x, y []float64
}

// panel is one chart's frame in the image.
type panel struct {
	x0, y0, x1, y1 float64 // plot area
	xmin, xmax     float64
	ymax           float64
}

func (p *panel) px(x float64) float64 {
	return p.x0 + (math.Log10(x)-math.Log10(p.xmin))/(math.Log10(p.xmax)-math.Log10(p.xmin))*(p.x1-p.x0)
}

func (p *panel) py(y float64) float64 {
	return p.y1 - y/p.ymax*(p.y1-p.y0)
}

// plotted tells whether a scenario has a line in the plot. The variants
// (unsorted labels, relabeling) are read against their base scenarios in
// results.md, usually at one number of series: beside them in the plot
// they would only hide them. The OTLP ones too, read against the OTLP
// baselines there, and the tenants ones, read against the block builder.
// The restart scenario has no throughput to draw.
func plotted(scenario string) bool {
	_, variant := VariantOf(scenario)
	_, otlp := OTLP(scenario)
	return variant == nil && !otlp && scenario != Tenants && scenario != TenantsOne && scenario != Restart
}

// WriteSVG draws samples per CPU-second and peak RSS against active
// series, one line per scenario.
func WriteSVG(w io.Writer, results []Result) error {
	const width, height = 1400, 620
	var spc, rss []series
	xs := map[float64]bool{}
	for _, s := range Scenarios {
		if !plotted(s.Name) {
			continue
		}
		a, b := series{name: s.Name}, series{name: s.Name}
		for _, r := range results {
			if r.Scenario != s.Name || !r.ok() {
				continue
			}
			peak, _ := r.PeakRSS()
			a.x, a.y = append(a.x, float64(r.Series)), append(a.y, r.SamplesPerCPUSecond())
			b.x, b.y = append(b.x, float64(r.Series)), append(b.y, float64(peak))
			xs[float64(r.Series)] = true
		}
		if len(a.x) > 0 {
			spc, rss = append(spc, a), append(rss, b)
		}
	}
	if len(xs) == 0 {
		return fmt.Errorf("plot: no successful result to draw")
	}
	var ticks []float64
	for x := range xs {
		ticks = append(ticks, x)
	}
	sort.Float64s(ticks)

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" %s>`+"\n", width, height, width, height, plotFont)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#fff"/>`+"\n", width, height)
	text(&b, 30, 30, "start", `font-size="20" font-weight="bold"`, "Strata: samples per CPU-second and peak RSS against active series")
	// Strata's scenarios on the first legend row, the baselines measured
	// in the same run on the second.
	b.WriteString(`<g class="legend">` + "\n")
	lx, bx := 30.0, 30.0
	for _, s := range Scenarios {
		c, ok := colors[s.Name]
		if !ok || !plotted(s.Name) {
			continue
		}
		if s.Baseline {
			diamond(&b, bx+11, 84, 7, c)
			text(&b, bx+30, 89, "start", "", s.Legend)
			bx += 30 + charWidth*float64(len(s.Legend)) + 40
			continue
		}
		fmt.Fprintf(&b, `<rect x="%.1f" y="48" width="22" height="12" fill="%s"/>`+"\n", lx, c)
		text(&b, lx+30, 59, "start", "", s.Legend)
		lx += 30 + charWidth*float64(len(s.Legend)) + 40
	}
	// The notes go on the baselines' row, which has room to spare.
	text(&b, bx, 89, "start", "", "(same run, same load)  (dashed: targets)")
	b.WriteString("</g>\n")

	left := panel{x0: 130, y0: 135, x1: 660, y1: height - 80}
	right := panel{x0: 830, y0: 135, x1: 1360, y1: height - 80}
	drawPanel(&b, &left, spc, ticks, "samples per CPU-second", 0, count)
	drawPanel(&b, &right, rss, ticks, "peak RSS", 1, func(v float64) string { return fmt.Sprintf("%.0f MB", v/1e6) })
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func drawPanel(b *strings.Builder, p *panel, data []series, ticks []float64, title string, which int, label func(float64) string) {
	p.xmin, p.xmax = ticks[0]/2, ticks[len(ticks)-1]*2
	for _, s := range data {
		for _, y := range s.y {
			p.ymax = max(p.ymax, y)
		}
		if t := target(s.name, which); t > 0 {
			p.ymax = max(p.ymax, t)
		}
	}
	step := niceStep(p.ymax * 1.1 / 5)
	p.ymax = math.Ceil(p.ymax*1.1/step) * step

	fmt.Fprintf(b, "<g class=\"panel\">\n")
	// Grid, axes and ticks.
	for y := 0.0; y <= p.ymax+step/2; y += step {
		py := p.py(y)
		line(b, p.x0, py, p.x1, py, grey, 1, false)
		text(b, p.x0-12, py+5, "end", "", label(y))
	}
	for _, x := range ticks {
		px := p.px(x)
		line(b, px, p.y0, px, p.y1, grey, 1, false)
		text(b, px, p.y1+24, "middle", "", count(x))
	}
	line(b, p.x0, p.y1, p.x1, p.y1, black, 2, false)
	line(b, p.x0, p.y0, p.x0, p.y1, black, 2, false)
	text(b, (p.x0+p.x1)/2, p.y1+52, "middle", "", "active series")
	text(b, p.x0, p.y0-14, "start", `font-weight="bold"`, title)

	for _, s := range data {
		c := colors[s.name]
		fmt.Fprintf(b, "<g class=\"series\" data-scenario=\"%s\">\n", escape(s.name))
		if t := target(s.name, which); t > 0 {
			line(b, p.x0, p.py(t), p.x1, p.py(t), c, 2, true)
		}
		if len(s.x) > 1 {
			var pts []string
			for i := range s.x {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", p.px(s.x[i]), p.py(s.y[i])))
			}
			fmt.Fprintf(b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="3"/>`+"\n", strings.Join(pts, " "), c)
		}
		baseline := IsBaseline(s.name)
		for i := range s.x {
			x, y := p.px(s.x[i]), p.py(s.y[i])
			if baseline {
				diamond(b, x, y, 9, c)
			} else {
				fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="10" height="10" fill="%s"/>`+"\n", x-5, y-5, c)
			}
		}
		b.WriteString("</g>\n")
	}
	b.WriteString("</g>\n")
}

// text writes s at (x, y), anchored start, middle or end, with extra
// attributes.
func text(b *strings.Builder, x, y float64, anchor, attrs, s string) {
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="%s" fill="%s"`, x, y, anchor, black)
	if attrs != "" {
		b.WriteString(" " + attrs)
	}
	fmt.Fprintf(b, ">%s</text>\n", escape(s))
}

// line draws from (x0, y0) to (x1, y1), width units thick, dashed or not.
func line(b *strings.Builder, x0, y0, x1, y1 float64, c string, width int, dashed bool) {
	fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="%d"`, x0, y0, x1, y1, c, width)
	if dashed {
		b.WriteString(` stroke-dasharray="10 10"`)
	}
	b.WriteString("/>\n")
}

// diamond fills a diamond of radius r around (x, y).
func diamond(b *strings.Builder, x, y, r float64, c string) {
	fmt.Fprintf(b, `<polygon points="%.1f,%.1f %.1f,%.1f %.1f,%.1f %.1f,%.1f" fill="%s"/>`+"\n", x, y-r, x+r, y, x, y+r, x-r, y, c)
}

// escape makes s safe as XML text or attribute value.
func escape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// niceStep rounds a raw tick step up to 1, 2, 2.5 or 5 times a power of
// ten.
func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			return m * mag
		}
	}
	return 10 * mag
}
