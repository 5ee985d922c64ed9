package bot

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"testing"
	"time"

	"github.com/casebot/casebot/triage"
)

// inkShare is the share of an image's pixels that are not white.
func inkShare(img image.Image) float64 {
	b := img.Bounds()
	ink := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if color.GrayModel.Convert(img.At(x, y)).(color.Gray).Y < 250 {
				ink++
			}
		}
	}
	return float64(ink) / float64(b.Dx()*b.Dy())
}

func TestWeeklyChart(t *testing.T) {
	weekStart := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	var busy []triage.Ticket
	for i := range 60 {
		at := weekStart.Add(time.Duration(i) * 2 * time.Hour)
		busy = append(busy, triage.Ticket{ID: fmt.Sprintf("T%d", i), ReceivedAt: at,
			FirstResponseAt: at.Add(time.Duration(10+i) * time.Minute),
			Classification:  triage.Classification{Type: triage.Types[i%len(triage.Types)]}})
	}
	// Unknown types and unanswered tickets must not break the chart.
	odd := []triage.Ticket{{ID: "X1", ReceivedAt: weekStart.Add(time.Hour), Classification: triage.Classification{Type: "<!here>"}}}
	cases := []struct {
		name    string
		tickets []triage.Ticket
		// minInk is the least share of drawn pixels: axes and titles
		// alone draw some; bars and a line draw more.
		minInk float64
	}{
		{"empty week", nil, 0.005},
		{"busy week", busy, 0.05},
		{"odd week", odd, 0.005},
	}
	var empty float64
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := triage.BuildWeeklyReport(tc.tickets, tc.tickets, weekStart, time.UTC)
			data, err := WeeklyChart(r)
			if err != nil {
				t.Fatal(err)
			}
			img, err := png.Decode(bytes.NewReader(data))
			if err != nil {
				t.Fatalf("not a PNG: %v", err)
			}
			if b := img.Bounds(); b.Dx() != 864 || b.Dy() != 672 {
				t.Errorf("size %v, want 864×672 (9×7 in at 96 dpi)", b)
			}
			ink := inkShare(img)
			if ink < tc.minInk {
				t.Errorf("%.3f of the pixels drawn, want at least %.3f", ink, tc.minInk)
			}
			if tc.tickets == nil {
				empty = ink
			} else if tc.name == "busy week" && ink <= empty {
				t.Errorf("a busy week draws no more than an empty one (%.3f ≤ %.3f)", ink, empty)
			}
		})
	}
}
