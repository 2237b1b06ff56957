package monitoring

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// SchemaVersion is the Grafana dashboard schema the JSON is written in
// (Grafana 10.4 and 11); newer Grafanas migrate it when they load it.
const SchemaVersion = 39

// datasource is what every panel, target and variable queries: the
// dashboard's own data source variable, so that one JSON fits any
// Grafana whatever its Prometheus data source is called.
var datasource = map[string]any{"type": "prometheus", "uid": "${datasource}"}

// Grafana's layout: 24 columns, panels 8 rows high (stat panels 4).
const (
	gridWidth   = 24
	panelHeight = 8
	statHeight  = 4
)

// DashboardJSON renders d as Grafana dashboard JSON.
func DashboardJSON(d Dashboard) ([]byte, error) {
	vars := []any{map[string]any{
		"name":    "datasource",
		"label":   "Data source",
		"type":    "datasource",
		"query":   "prometheus",
		"current": map[string]any{},
		"hide":    0,
		"refresh": 1,
		"regex":   "",
	}}
	for _, v := range d.Vars {
		vars = append(vars, map[string]any{
			"name":       v.Name,
			"label":      v.Label,
			"type":       "query",
			"datasource": datasource,
			"definition": v.Query(),
			"query":      map[string]any{"query": v.Query(), "refId": "StandardVariableQuery"},
			"refresh":    2,
			"includeAll": true,
			"allValue":   ".*",
			"multi":      true,
			"current":    map[string]any{"selected": true, "text": []string{"All"}, "value": []string{"$__all"}},
			"options":    []any{},
			"sort":       1,
			"hide":       0,
			"regex":      "",
		})
	}

	var panels []any
	id, y := 0, 0
	for _, row := range d.Rows {
		id++
		panels = append(panels, map[string]any{
			"id":        id,
			"type":      "row",
			"title":     row.Title,
			"collapsed": false,
			"panels":    []any{},
			"gridPos":   map[string]int{"h": 1, "w": gridWidth, "x": 0, "y": y},
		})
		y++
		x, rowHeight := 0, 0
		for _, p := range row.Panels {
			w := p.Width
			if w == 0 {
				w = 8
			}
			h := panelHeight
			if p.Type == Stat || p.Type == Text {
				h = statHeight
			}
			if x+w > gridWidth {
				x, y, rowHeight = 0, y+rowHeight, 0
			}
			id++
			panel, err := panelJSON(p, id)
			if err != nil {
				return nil, fmt.Errorf("dashboard %s, panel %q: %w", d.UID, p.Title, err)
			}
			panel["gridPos"] = map[string]int{"h": h, "w": w, "x": x, "y": y}
			panels = append(panels, panel)
			x += w
			rowHeight = max(rowHeight, h)
		}
		y += rowHeight
	}

	doc := map[string]any{
		"uid":                  d.UID,
		"title":                d.Title,
		"description":          d.Description + " Generated from monitoring/dashboards.go (make monitoring).",
		"tags":                 []string{"strata"},
		"schemaVersion":        SchemaVersion,
		"version":              1,
		"editable":             true,
		"graphTooltip":         1,
		"refresh":              "30s",
		"time":                 map[string]string{"from": "now-6h", "to": "now"},
		"timepicker":           map[string]any{},
		"timezone":             "",
		"fiscalYearStartMonth": 0,
		"liveNow":              false,
		"weekStart":            "",
		"templating":           map[string]any{"list": vars},
		"annotations": map[string]any{"list": []any{map[string]any{
			"builtIn":    1,
			"datasource": map[string]string{"type": "grafana", "uid": "-- Grafana --"},
			"enable":     true,
			"hide":       true,
			"iconColor":  "rgba(0, 211, 255, 1)",
			"name":       "Annotations & Alerts",
			"type":       "dashboard",
		}}},
		"links": []any{map[string]any{
			"title":       "Strata",
			"type":        "dashboards",
			"tags":        []string{"strata"},
			"asDropdown":  true,
			"includeVars": true,
			"keepTime":    true,
		}},
		"panels": panels,
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// PromQL is full of > and &&: left as they are, not as \u003e.
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func panelJSON(p Panel, id int) (map[string]any, error) {
	typ := p.Type
	if typ == "" {
		typ = TimeSeries
	}
	out := map[string]any{
		"id":          id,
		"type":        string(typ),
		"title":       p.Title,
		"description": p.Description,
	}
	if typ == Text {
		if len(p.Targets) > 0 || p.Markdown == "" {
			return nil, fmt.Errorf("a text panel has Markdown and no targets")
		}
		out["options"] = map[string]any{"mode": "markdown", "content": p.Markdown}
		return out, nil
	}
	if len(p.Targets) == 0 {
		return nil, fmt.Errorf("no targets")
	}
	var targets []any
	for i, t := range p.Targets {
		targets = append(targets, map[string]any{
			"refId":        string(rune('A' + i)),
			"datasource":   datasource,
			"editorMode":   "code",
			"expr":         t.Expr,
			"legendFormat": t.Legend,
			"range":        true,
		})
	}
	out["datasource"] = datasource
	out["targets"] = targets
	defaults := map[string]any{"unit": p.Unit}
	switch typ {
	case TimeSeries:
		stacking := "none"
		if p.Stack {
			stacking = "normal"
		}
		defaults["custom"] = map[string]any{
			"drawStyle":         "line",
			"lineWidth":         1,
			"fillOpacity":       10,
			"showPoints":        "never",
			"spanNulls":         false,
			"stacking":          map[string]any{"mode": stacking, "group": "A"},
			"axisSoftMin":       0,
			"pointSize":         5,
			"gradientMode":      "none",
			"lineInterpolation": "linear",
		}
		out["options"] = map[string]any{
			"legend":  map[string]any{"displayMode": "list", "placement": "bottom", "showLegend": true, "calcs": []string{}},
			"tooltip": map[string]any{"mode": "multi", "sort": "desc"},
		}
	case Stat:
		out["options"] = map[string]any{
			"reduceOptions": map[string]any{"calcs": []string{"lastNotNull"}, "fields": "", "values": false},
			"colorMode":     "value",
			"graphMode":     "area",
			"justifyMode":   "auto",
			"textMode":      "auto",
			"orientation":   "auto",
		}
	default:
		return nil, fmt.Errorf("unknown panel type %q", typ)
	}
	out["fieldConfig"] = map[string]any{"defaults": defaults, "overrides": []any{}}
	return out, nil
}
