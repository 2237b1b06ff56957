package bench

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"
	"sort"
)

// The plot is drawn with the standard library alone (image/png and a small
// bitmap font): two panels of lines, one per scenario, against active
// series on a log scale, with each scenario's target dashed and the
// baselines as diamonds (often a single one, at the anchors' series
// count). A plotting library would be a new dependency tree (fonts, vector
// back ends) for two panels of a few points.

var (
	white  = color.RGBA{255, 255, 255, 255}
	black  = color.RGBA{30, 30, 30, 255}
	grey   = color.RGBA{215, 215, 215, 255}
	colors = map[string]color.RGBA{
		BlockBuilder: {31, 119, 180, 255},
		Dev:          {255, 127, 14, 255},
		Router:       {44, 160, 44, 255},
		RouterWide:   {23, 190, 207, 255},
		// The baselines' colours stand apart from Strata's.
		VictoriaMetrics: {148, 103, 189, 255},
		Prometheus:      {214, 39, 40, 255},
	}
)

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
	x0, y0, x1, y1 int // plot area
	xmin, xmax     float64
	ymax           float64
}

func (p *panel) px(x float64) int {
	return p.x0 + int(math.Round((math.Log10(x)-math.Log10(p.xmin))/(math.Log10(p.xmax)-math.Log10(p.xmin))*float64(p.x1-p.x0)))
}

func (p *panel) py(y float64) int {
	return p.y1 - int(math.Round(y/p.ymax*float64(p.y1-p.y0)))
}

// WritePNG draws samples per CPU-second and peak RSS against active
// series, one line per scenario.
func WritePNG(w io.Writer, results []Result) error {
	const width, height = 1400, 620
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	draw.Draw(img, img.Bounds(), &image.Uniform{white}, image.Point{}, draw.Src)

	var spc, rss []series
	xs := map[float64]bool{}
	for _, s := range Scenarios {
		// The unsorted scenarios are read against their sorted ones in
		// results.md, usually at one number of series: beside them in
		// the plot they would only hide them. The OTLP ones too, read
		// against the OTLP baselines there.
		_, unsorted := Unsorted(s.Name)
		if _, otlp := OTLP(s.Name); unsorted || otlp {
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

	drawText(img, 30, 14, "Strata: samples per CPU-second and peak RSS against active series", 2, black)
	// Strata's scenarios on the first legend row, the baselines measured
	// in the same run on the second.
	lx, bx := 30, 30
	for _, s := range Scenarios {
		c, ok := colors[s.Name]
		_, unsorted := Unsorted(s.Name)
		if _, otlp := OTLP(s.Name); !ok || unsorted || otlp {
			continue
		}
		if s.Baseline {
			diamond(img, bx+11, 78, 7, c)
			drawText(img, bx+30, 72, s.Legend, 2, black)
			bx += 30 + textWidth(s.Legend, 2) + 40
			continue
		}
		fill(img, lx, 48, lx+22, 60, c)
		drawText(img, lx+30, 47, s.Legend, 2, black)
		lx += 30 + textWidth(s.Legend, 2) + 40
	}
	// The notes go on the baselines' row, which has room to spare.
	drawText(img, bx, 72, "(same run, same load)  (dashed: targets)", 2, black)

	left := panel{x0: 130, y0: 135, x1: 660, y1: height - 80}
	right := panel{x0: 830, y0: 135, x1: 1360, y1: height - 80}
	drawPanel(img, &left, spc, ticks, "samples per CPU-second", 0, count)
	drawPanel(img, &right, rss, ticks, "peak RSS", 1, func(v float64) string { return fmt.Sprintf("%.0f MB", v/1e6) })
	return png.Encode(w, img)
}

func drawPanel(img *image.RGBA, p *panel, data []series, ticks []float64, title string, which int, label func(float64) string) {
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

	// Grid, axes and ticks.
	for y := 0.0; y <= p.ymax+step/2; y += step {
		py := p.py(y)
		line(img, p.x0, py, p.x1, py, grey, 1, false)
		s := label(y)
		drawText(img, p.x0-12-textWidth(s, 2), py-7, s, 2, black)
	}
	for _, x := range ticks {
		px := p.px(x)
		line(img, px, p.y0, px, p.y1, grey, 1, false)
		s := count(x)
		drawText(img, px-textWidth(s, 2)/2, p.y1+12, s, 2, black)
	}
	line(img, p.x0, p.y1, p.x1, p.y1, black, 2, false)
	line(img, p.x0, p.y0, p.x0, p.y1, black, 2, false)
	drawText(img, (p.x0+p.x1)/2-textWidth("active series", 2)/2, p.y1+40, "active series", 2, black)
	drawText(img, p.x0, p.y0-26, title, 2, black)

	for _, s := range data {
		c := colors[s.name]
		if t := target(s.name, which); t > 0 {
			line(img, p.x0, p.py(t), p.x1, p.py(t), c, 2, true)
		}
		baseline := IsBaseline(s.name)
		for i := range s.x {
			x, y := p.px(s.x[i]), p.py(s.y[i])
			if i > 0 {
				line(img, p.px(s.x[i-1]), p.py(s.y[i-1]), x, y, c, 3, false)
			}
			if baseline {
				diamond(img, x, y, 9, c)
			} else {
				fill(img, x-5, y-5, x+5, y+5, c)
			}
		}
	}
}

// diamond fills a diamond of radius r around (x, y).
func diamond(img *image.RGBA, x, y, r int, c color.Color) {
	for dy := -r; dy <= r; dy++ {
		w := r - abs(dy)
		fill(img, x-w, y+dy, x+w, y+dy, c)
	}
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

func fill(img *image.RGBA, x0, y0, x1, y1 int, c color.Color) {
	draw.Draw(img, image.Rect(x0, y0, x1+1, y1+1), &image.Uniform{c}, image.Point{}, draw.Src)
}

// line draws from (x0, y0) to (x1, y1), width pixels thick, dashed or not.
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.Color, width int, dashed bool) {
	dx, dy := x1-x0, y1-y0
	n := max(abs(dx), abs(dy))
	for i := 0; i <= n; i++ {
		if dashed && (i/10)%2 == 1 {
			continue
		}
		x, y := x0, y0
		if n > 0 {
			x = x0 + int(math.Round(float64(dx*i)/float64(n)))
			y = y0 + int(math.Round(float64(dy*i)/float64(n)))
		}
		for o := -(width / 2); o < width-width/2; o++ {
			if abs(dx) >= abs(dy) {
				img.Set(x, y+o, c)
			} else {
				img.Set(x+o, y, c)
			}
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}
