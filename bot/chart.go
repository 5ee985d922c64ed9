package bot

import (
	"bytes"
	"fmt"
	"image/color"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/casebot/casebot/triage"
)

// Chart size and resolution: wide enough for seven labelled days, small
// enough to load at once in Slack.
const (
	chartWidth  = 9 * vg.Inch
	chartHeight = 7 * vg.Inch
	chartDPI    = 96
)

// WeeklyChart renders the Monday thread's chart as a PNG: above, the week's
// tickets by issue type and day as stacked bars; below, the daily median
// first response time in minutes as a line (days without an answered ticket
// are left out). Types are stacked in triage.Types order with stable colours,
// so weeks compare at a glance.
func WeeklyChart(r triage.WeeklyReport) ([]byte, error) {
	bars, err := typesByDay(r)
	if err != nil {
		return nil, fmt.Errorf("weekly chart: %w", err)
	}
	trend, err := responseTrend(r)
	if err != nil {
		return nil, fmt.Errorf("weekly chart: %w", err)
	}
	img := vgimg.NewWith(vgimg.UseWH(chartWidth, chartHeight), vgimg.UseDPI(chartDPI),
		vgimg.UseBackgroundColor(color.White))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadTop: vg.Points(8), PadBottom: vg.Points(8),
		PadLeft: vg.Points(8), PadRight: vg.Points(8), PadY: vg.Points(16)}
	canvases := plot.Align([][]*plot.Plot{{bars}, {trend}}, tiles, dc)
	bars.Draw(canvases[0][0])
	trend.Draw(canvases[1][0])
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("weekly chart: encode PNG: %w", err)
	}
	return buf.Bytes(), nil
}

// dayLabels names the report's days like "Mon 2".
func dayLabels(r triage.WeeklyReport) []string {
	out := make([]string, len(r.Days))
	for i, d := range r.Days {
		out[i] = d.Date.Format("Mon 2")
	}
	return out
}

func typesByDay(r triage.WeeklyReport) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "Tickets by issue type, week of " + r.WeekStart.Format("2 Jan 2006")
	p.Y.Label.Text = "tickets"
	p.NominalX(dayLabels(r)...)
	p.Legend.Top = true
	p.Legend.Left = true
	peak := 1.0
	for _, d := range r.Days {
		total := 0
		for _, n := range d.ByType {
			total += n
		}
		peak = max(peak, float64(total))
	}
	var below *plotter.BarChart
	stacked := 0
	for i, typ := range triage.Types {
		vals := make(plotter.Values, len(r.Days))
		seen := false
		for j, d := range r.Days {
			vals[j] = float64(d.ByType[typ])
			seen = seen || d.ByType[typ] > 0
		}
		if !seen {
			continue
		}
		b, err := plotter.NewBarChart(vals, vg.Points(28))
		if err != nil {
			return nil, fmt.Errorf("bars of %s: %w", typ, err)
		}
		b.Color = plotutil.Color(i)
		b.LineStyle.Width = 0
		if below != nil {
			b.StackOn(below)
		}
		below, stacked = b, stacked+1
		p.Add(b)
		p.Legend.Add(typeLabel(typ), b)
	}
	// Room above the tallest stack for the legend, a line per type.
	p.Y.Min, p.Y.Max = 0, peak/max(0.4, 1-0.065*float64(stacked))
	p.X.Min, p.X.Max = -0.5, float64(len(r.Days))-0.5
	return p, nil
}

func responseTrend(r triage.WeeklyReport) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "First response time, daily median (minutes)"
	p.Y.Label.Text = "minutes"
	p.NominalX(dayLabels(r)...)
	var xys plotter.XYs
	for i, d := range r.Days {
		if d.FirstResponseP50 != nil {
			xys = append(xys, plotter.XY{X: float64(i), Y: *d.FirstResponseP50 / 60})
		}
	}
	p.X.Min, p.X.Max = -0.5, float64(len(r.Days))-0.5
	p.Y.Min, p.Y.Max = 0, 1
	if len(xys) == 0 {
		p.Title.Text += ": no ticket answered this week"
		return p, nil
	}
	line, points, err := plotter.NewLinePoints(xys)
	if err != nil {
		return nil, fmt.Errorf("response trend: %w", err)
	}
	line.Color = plotutil.Color(0)
	line.Width = vg.Points(2)
	points.Color = line.Color
	points.Shape = draw.CircleGlyph{}
	p.Add(line, points)
	top := slices.MaxFunc(xys, func(a, b plotter.XY) int {
		switch {
		case a.Y < b.Y:
			return -1
		case a.Y > b.Y:
			return 1
		}
		return 0
	}).Y
	p.Y.Max = max(1, top*1.2)
	return p, nil
}

// typeLabel names an issue type for people ("Product defect").
func typeLabel(t triage.Type) string {
	if l, ok := typeLabels[t]; ok {
		return l
	}
	return string(t)
}
