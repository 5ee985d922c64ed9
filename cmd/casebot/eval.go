package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/casebot/casebot/triage"
)

// maxEvalLine bounds one line of an evaluation file.
const maxEvalLine = 1 << 20

// evalRow is one line of the evaluation format (SPEC section 9).
type evalRow struct {
	ID      string `json:"id"`
	Channel string `json:"channel"`
	Text    string `json:"text"`
	Expect  struct {
		Type      *triage.Type      `json:"type"`
		Sentiment *triage.Sentiment `json:"sentiment"`
		Urgency   *triage.Level     `json:"urgency"`
		Flags     *[]triage.Flag    `json:"flags"`
	} `json:"expect"`
}

// fieldScore is the accuracy of one enum field over rows that expect it;
// null when no row does.
type fieldScore struct {
	N        int      `json:"n"`
	Accuracy *float64 `json:"accuracy"`
	correct  int
}

// flagScore is precision and recall of one flag over rows that list flags;
// each is null when it is undefined (nothing predicted, nothing expected).
type flagScore struct {
	Precision *float64 `json:"precision"`
	Recall    *float64 `json:"recall"`
	N         int      `json:"n"`
	tp, fp    int
}

func share(num, den int) *float64 {
	if den == 0 {
		return nil
	}
	v := float64(num) / float64(den)
	return &v
}

// evalReport is the --json output of `casebot eval`.
type evalReport struct {
	Rows      int                   `json:"rows"`
	Errors    int                   `json:"errors"`
	Type      fieldScore            `json:"type"`
	Sentiment fieldScore            `json:"sentiment"`
	Urgency   fieldScore            `json:"urgency"`
	Flags     map[string]*flagScore `json:"flags"`
	Latency   map[string]float64    `json:"latency_ms"`
	confusion map[string]map[string]int
	errLines  []string
}

// prediction is one line of --predictions.
type prediction struct {
	ID             string                `json:"id"`
	Classification triage.Classification `json:"classification"`
	Source         string                `json:"source"`
}

func cmdEval(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c commonFlags
	fs := newFlagSet("eval", stderr, &c)
	asJSON := fs.Bool("json", false, "print one JSON object for machines")
	predOut := fs.String("predictions", "", "write one prediction per row to `OUT.jsonl`")
	classifier := fs.String("classifier", "", "keyword or ollama (default: as configured)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if err := checkClassifier(*classifier); err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: eval takes one FILE", errUsage)
	}
	cfg, err := loadConfig(fs, c)
	if err != nil {
		return err
	}
	f, err := os.Open(pos[0])
	if err != nil {
		return fmt.Errorf("open evaluation file: %w", err)
	}
	defer f.Close()
	var pred io.Writer
	if *predOut != "" {
		pf, err := os.Create(*predOut)
		if err != nil {
			return fmt.Errorf("create predictions file: %w", err)
		}
		defer pf.Close()
		bw := bufio.NewWriter(pf)
		defer bw.Flush()
		pred = bw
	}
	tr, cleanup, err := newAssessor(ctx, cfg, *classifier, stderr)
	if err != nil {
		return err
	}
	defer cleanup()
	rep, err := evaluate(ctx, tr, f, pred)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(rep)
	}
	return printEval(stdout, rep)
}

// evaluate scores every row of r. A line that is not a valid row counts as an
// error and is reported, not fatal.
func evaluate(ctx context.Context, tr *triage.Triager, r io.Reader, pred io.Writer) (*evalReport, error) {
	rep := &evalReport{Flags: map[string]*flagScore{}, confusion: map[string]map[string]int{}}
	for _, f := range triage.Flags {
		rep.Flags[string(f)] = &flagScore{}
	}
	var latencies []float64
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), maxEvalLine)
	line := 0
	for sc.Scan() {
		line++
		raw := strings.TrimSpace(sc.Text())
		if raw == "" {
			continue
		}
		rep.Rows++
		var row evalRow
		if err := json.Unmarshal([]byte(raw), &row); err != nil || strings.TrimSpace(row.Text) == "" {
			rep.Errors++
			rep.errLines = append(rep.errLines, fmt.Sprintf("line %d: %s", line, rowError(err)))
			continue
		}
		start := time.Now()
		a := tr.Assess(ctx, triage.ClassifyRequest{Text: row.Text, Channel: row.Channel}, triage.Money{})
		latencies = append(latencies, float64(time.Since(start).Microseconds())/1000)
		rep.score(row, a.Classification)
		if pred != nil {
			b, err := json.Marshal(prediction{ID: row.ID, Classification: a.Classification, Source: a.By})
			if err != nil {
				return nil, fmt.Errorf("encode prediction: %w", err)
			}
			if _, err := fmt.Fprintf(pred, "%s\n", b); err != nil {
				return nil, fmt.Errorf("write prediction: %w", err)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read evaluation file after line %d: %w", line, err)
	}
	rep.finish(latencies)
	return rep, nil
}

func rowError(err error) string {
	if err != nil {
		return "invalid JSON: " + err.Error()
	}
	return "no text"
}

func (rep *evalReport) score(row evalRow, c triage.Classification) {
	if e := row.Expect.Type; e != nil {
		rep.Type.add(*e == c.Type)
		m := rep.confusion[string(*e)]
		if m == nil {
			m = map[string]int{}
			rep.confusion[string(*e)] = m
		}
		m[string(c.Type)]++
	}
	if e := row.Expect.Sentiment; e != nil {
		rep.Sentiment.add(*e == c.Sentiment)
	}
	if e := row.Expect.Urgency; e != nil {
		rep.Urgency.add(*e == c.Urgency)
	}
	if e := row.Expect.Flags; e != nil {
		for name, s := range rep.Flags {
			want, got := slices.Contains(*e, triage.Flag(name)), c.HasFlag(triage.Flag(name))
			if want {
				s.N++
			}
			switch {
			case want && got:
				s.tp++
			case got:
				s.fp++
			}
		}
	}
}

func (s *fieldScore) add(ok bool) {
	s.N++
	if ok {
		s.correct++
	}
}

func (rep *evalReport) finish(latencies []float64) {
	for _, s := range []*fieldScore{&rep.Type, &rep.Sentiment, &rep.Urgency} {
		s.Accuracy = share(s.correct, s.N)
	}
	for _, s := range rep.Flags {
		s.Precision = share(s.tp, s.tp+s.fp)
		s.Recall = share(s.tp, s.N)
	}
	sort.Float64s(latencies)
	rep.Latency = map[string]float64{"p50": nearestRank(latencies, 50), "p99": nearestRank(latencies, 99)}
}

func nearestRank(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}

func printEval(w io.Writer, rep *evalReport) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "rows:\t%d\t(errors %d)\n", rep.Rows, rep.Errors)
	for _, f := range []struct {
		name string
		s    fieldScore
	}{{"type", rep.Type}, {"sentiment", rep.Sentiment}, {"urgency", rep.Urgency}} {
		if f.s.N > 0 {
			fmt.Fprintf(tw, "%s accuracy:\t%.3f\t(n=%d)\n", f.name, *f.s.Accuracy, f.s.N)
		}
	}
	for _, f := range triage.Flags {
		if s := rep.Flags[string(f)]; s.N > 0 || s.fp > 0 {
			fmt.Fprintf(tw, "flag %s:\tprecision %s\trecall %s (n=%d)\n", f, fmtShare(s.Precision), fmtShare(s.Recall), s.N)
		}
	}
	fmt.Fprintf(tw, "latency:\tp50 %.3f ms\tp99 %.3f ms\n", rep.Latency["p50"], rep.Latency["p99"])
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(rep.confusion) > 0 {
		fmt.Fprintln(w, "\nconfusion (rows: expected, columns: predicted):")
		printConfusion(w, rep.confusion)
	}
	for _, l := range rep.errLines {
		fmt.Fprintln(w, l)
	}
	return nil
}

func printConfusion(w io.Writer, m map[string]map[string]int) {
	var cols []string
	for _, t := range triage.Types {
		cols = append(cols, string(t))
	}
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "\t")
	for _, c := range cols {
		fmt.Fprintf(tw, "%s\t", abbrev(c))
	}
	fmt.Fprintln(tw)
	for _, r := range cols {
		row, ok := m[r]
		if !ok {
			continue
		}
		fmt.Fprintf(tw, "%s\t", r)
		for _, c := range cols {
			fmt.Fprintf(tw, "%d\t", row[c])
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}

func abbrev(s string) string {
	if len(s) > 8 {
		return s[:8]
	}
	return s
}

func fmtShare(p *float64) string {
	if p == nil {
		return "n/a"
	}
	return fmt.Sprintf("%.3f", *p)
}
