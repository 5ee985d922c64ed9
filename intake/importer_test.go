package intake

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/casebot/casebot/triage"
	"github.com/casebot/casebot/triage/triagetest"
)

// store is a Triager over the in-memory store, for imports.
func store(t testing.TB) (*triagetest.Tickets, func(context.Context, triage.Inbound) (triage.Ticket, error)) {
	t.Helper()
	clock := triagetest.NewClock(t0)
	tickets := triagetest.NewTickets(clock)
	tr, err := triage.NewTriager(triage.DefaultConfig(), tickets, clock)
	if err != nil {
		t.Fatal(err)
	}
	return tickets, tr.Intake
}

func rejectedLines(s Summary) []int {
	var out []int
	for _, r := range s.Rejected {
		out = append(out, r.Line)
	}
	return out
}

func TestImportJSONL(t *testing.T) {
	file := "\ufeff" + strings.Join([]string{
		`{"id": "bitext-0", "channel": "chat", "text": "how can I cancel purchase 113542617735902?", "expect": {"type": "order_change"}}`,
		`{"external_id":"w-1","channel":"review","customer":{"email":"ann@example.com"},"text":"Broken on arrival","order":{"ref":"1001","amount":40,"currency":"EUR"},"received_at":"2024-11-02T10:00:00Z"}`,
		``,
		`{"id":"e-2","text":"hola, no llegó mi pedido","channel":"slack"}`,
		`not json`,
		`{"id":"e-3","text":"x","customer":{"email":"a@b.c"}}`,
		`{"id":"","text":"x"}`,
		`{"external_id":"w-2","text":"no customer"}`,
		`{"id":"e-4","text":"x","expect":"refund"}`,
		`{"id":"e-5","text":"caf` + "\xe9" + `"}`,
		`{"id":"e-6","text":"fine"}`,
	}, "\r\n") + "\r\n"
	tickets, intake := store(t)
	var progress []Progress
	sum, err := Import(context.Background(), strings.NewReader(file), FormatJSONL, intake, func(p Progress) { progress = append(progress, p) })
	if err != nil {
		t.Fatal(err)
	}
	if sum.Imported != 4 || sum.Duplicates != 0 {
		t.Errorf("summary %+v, want 4 imported", sum)
	}
	if got, want := rejectedLines(sum), []int{5, 6, 7, 8, 9, 10}; !slices.Equal(got, want) {
		t.Errorf("rejected lines %v, want %v: %+v", got, want, sum.Rejected)
	}
	for i, want := range []string{"invalid_json", "unknown_field customer", "missing_field id", "missing_field customer",
		"invalid_field expect", "invalid_utf8"} {
		if i < len(sum.Rejected) && !strings.Contains(sum.Rejected[i].Reason, want) {
			t.Errorf("line %d reason %q, want it to mention %q", sum.Rejected[i].Line, sum.Rejected[i].Reason, want)
		}
	}
	all := tickets.All()
	var ids []string
	for _, tk := range all {
		ids = append(ids, tk.ExternalID)
		if tk.Source != triage.SourceImport {
			t.Errorf("ticket %s source %s", tk.ExternalID, tk.Source)
		}
	}
	if !slices.Equal(ids, []string{"bitext-0", "w-1", "e-2", "e-6"}) {
		t.Errorf("imported %v", ids)
	}
	if w := all[1]; w.Channel != "review" || w.OrderRef != "1001" || w.Classification.Amount != (triage.Money{Minor: 4000, Currency: "EUR"}) ||
		!w.ReceivedAt.Equal(time.Date(2024, 11, 2, 10, 0, 0, 0, time.UTC)) || w.Body != "Broken on arrival" {
		t.Errorf("webhook-format line stored as %+v", w)
	}
	if e := all[2]; e.Channel != "slack" || e.Body != "hola, no llegó mi pedido" {
		t.Errorf("evaluation line stored as %+v", e)
	}
	if len(progress) != 10 || progress[len(progress)-1] != (Progress{Line: 11, Imported: 4, Rejected: 6}) {
		t.Errorf("progress %+v", progress)
	}

	again, err := Import(context.Background(), strings.NewReader(file), FormatJSONL, intake, nil)
	if err != nil {
		t.Fatal(err)
	}
	if again.Imported != 0 || again.Duplicates != 4 || len(again.Rejected) != 6 {
		t.Errorf("second import %+v, want 4 duplicates and nothing new", again)
	}
	if n := len(tickets.All()); n != 4 {
		t.Errorf("%d tickets after importing twice, want 4", n)
	}
}

func TestImportHugeLine(t *testing.T) {
	line := func(id string, textLen int) string {
		head := `{"id":"` + id + `","text":"`
		return head + strings.Repeat("y", textLen-len(head)-2) + `"}`
	}
	tests := []struct {
		name     string
		file     string
		imported int
		rejected []int
	}{
		{"line of exactly the limit", line("a", MaxImportLine) + "\n" + line("b", 40) + "\n", 2, nil},
		{"line of exactly the limit, CRLF", line("a", MaxImportLine) + "\r\n" + line("b", 40), 2, nil},
		{"one byte over", line("a", 40) + "\n" + line("b", MaxImportLine+1) + "\n" + line("c", 40) + "\n", 2, []int{2}},
		{"megabytes over, last line", line("a", 40) + "\n" + line("b", 3*MaxImportLine), 1, []int{2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, intake := store(t)
			sum, err := Import(context.Background(), strings.NewReader(tt.file), FormatJSONL, intake, nil)
			if err != nil {
				t.Fatal(err)
			}
			if sum.Imported != tt.imported || !slices.Equal(rejectedLines(sum), tt.rejected) {
				t.Errorf("summary %d imported, rejected %+v; want %d, lines %v", sum.Imported, sum.Rejected, tt.imported, tt.rejected)
			}
		})
	}
}

func TestImportCSV(t *testing.T) {
	file := "\ufeffExternal_ID,text,customer_email,amount,currency,order_ref,received_at,channel,subject,customer_handle,customer_name\r\n" +
		"c-1,\"Parcel late,\r\nsecond line with \"\"quotes\"\"\",ann@example.com,19.99,usd,1001,2024-10-01T08:00:00Z,email,Where is it,,Ann\r\n" +
		"c-2,no customer here,,,,,,,,,\r\n" +
		"\r\n" +
		"c-3,bad amount,,twelve,,,,,,,\r\n" +
		"c-4,too,few\r\n" +
		"c-5,bad email,not-an-email,,,,,,,,\r\n" +
		",no id,,,,,,,,,\r\n" +
		"c-6,bad time,,,,,yesterday,,,,\r\n" +
		"c-7,bad channel,,,,,,fax,,,\r\n" +
		"c-8,\"" + strings.Repeat("z", MaxImportLine) + "\n\",,,,,,,,,\n" +
		"c-9,bad currency,,1,EURO,,,,,,\n" +
		"c-10,handle only,,,,,,,,@bob,\n" +
		"c-11,\"unterminated\n"
	tickets, intake := store(t)
	sum, err := Import(context.Background(), strings.NewReader(file), FormatCSV, intake, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Imported != 3 {
		t.Errorf("imported %d, want 3", sum.Imported)
	}
	wantRejected := []struct {
		line   int
		reason string
	}{{6, "invalid_field amount"}, {7, "3 fields"}, {8, "invalid_field customer_email"}, {9, "missing_field external_id"},
		{10, "invalid_field received_at"}, {11, "invalid_field channel"}, {12, "longer than"}, {14, "invalid_field currency"},
		{16, "invalid CSV"}}
	if len(sum.Rejected) != len(wantRejected) {
		t.Fatalf("rejected %+v, want lines %+v", sum.Rejected, wantRejected)
	}
	for i, w := range wantRejected {
		if r := sum.Rejected[i]; r.Line != w.line || !strings.Contains(r.Reason, w.reason) {
			t.Errorf("rejection %d = %+v, want line %d mentioning %q", i, r, w.line, w.reason)
		}
	}
	all := tickets.All()
	if len(all) != 3 {
		t.Fatalf("%d tickets", len(all))
	}
	c1 := all[0]
	if c1.ExternalID != "c-1" || c1.Body != "Parcel late,\nsecond line with \"quotes\"" || c1.Subject != "Where is it" ||
		c1.Channel != "email" || c1.OrderRef != "1001" || c1.Classification.Amount != (triage.Money{Minor: 1999, Currency: "USD"}) ||
		!c1.ReceivedAt.Equal(time.Date(2024, 10, 1, 8, 0, 0, 0, time.UTC)) {
		t.Errorf("c-1 stored as %+v", c1)
	}
	if all[1].ExternalID != "c-2" || all[2].ExternalID != "c-10" {
		t.Errorf("imported %s, %s", all[1].ExternalID, all[2].ExternalID)
	}
	cs := tickets.Customers()
	if !slices.ContainsFunc(cs, func(c triage.Customer) bool { return c.Email == "ann@example.com" && c.Name == "Ann" }) ||
		!slices.ContainsFunc(cs, func(c triage.Customer) bool { return c.Handle == "@bob" }) {
		t.Errorf("customers %+v", cs)
	}

	again, err := Import(context.Background(), strings.NewReader(file), FormatCSV, intake, nil)
	if err != nil {
		t.Fatal(err)
	}
	if again.Imported != 0 || again.Duplicates != 3 {
		t.Errorf("second import %+v, want 3 duplicates", again)
	}
}

func TestImportCSVHeader(t *testing.T) {
	tests := []struct {
		name, file string
		want       []string // in the error
	}{
		{"unknown columns", "external_id,text,phone,Priority\n", []string{`"phone"`, `"Priority"`, "unknown"}},
		{"missing text", "external_id,subject\nx,y\n", []string{"missing required columns text"}},
		{"missing both", "subject\n", []string{"external_id, text"}},
		{"repeated", "external_id,text,text\n", []string{"repeated columns text"}},
		{"empty file", "", []string{"no header"}},
		{"blank lines only", "\r\n\n", []string{"no header"}},
		{"broken header", "external_id,\"text\n", []string{"header"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, intake := store(t)
			_, err := Import(context.Background(), strings.NewReader(tt.file), FormatCSV, intake, nil)
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v, want ErrFormat", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestImportStops(t *testing.T) {
	file := `{"id":"1","text":"a"}` + "\n" + `{"id":"2","text":"b"}` + "\n" + `{"id":"3","text":"c"}` + "\n"
	t.Run("store failure", func(t *testing.T) {
		calls := 0
		intake := func(_ context.Context, in triage.Inbound) (triage.Ticket, error) {
			calls++
			if in.ExternalID == "2" {
				return triage.Ticket{}, errors.New("store closed")
			}
			return triage.Ticket{ID: "T" + in.ExternalID}, nil
		}
		sum, err := Import(context.Background(), strings.NewReader(file), FormatJSONL, intake, nil)
		if err == nil || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), "store closed") {
			t.Errorf("error %v, want line 2's store failure", err)
		}
		if sum.Imported != 1 || calls != 2 {
			t.Errorf("summary %+v after %d calls", sum, calls)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		_, intake := store(t)
		sum, err := Import(ctx, strings.NewReader(file), FormatJSONL, func(ctx context.Context, in triage.Inbound) (triage.Ticket, error) {
			defer cancel()
			return intake(ctx, in)
		}, nil)
		if !errors.Is(err, context.Canceled) || sum.Imported != 1 {
			t.Errorf("summary %+v, error %v; want one import then context.Canceled", sum, err)
		}
	})
	t.Run("unknown format", func(t *testing.T) {
		_, intake := store(t)
		if _, err := Import(context.Background(), strings.NewReader(file), "xml", intake, nil); !errors.Is(err, ErrFormat) {
			t.Errorf("error %v, want ErrFormat", err)
		}
	})
	t.Run("read error", func(t *testing.T) {
		_, intake := store(t)
		r := io.MultiReader(strings.NewReader(file), errReader{})
		sum, err := Import(context.Background(), r, FormatJSONL, intake, nil)
		if err == nil || sum.Imported != 3 {
			t.Errorf("summary %+v, error %v; want 3 imports then the read error", sum, err)
		}
	})
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestImportRejectionsBounded(t *testing.T) {
	var b bytes.Buffer
	for range maxRejections + 5 {
		b.WriteString("{\n")
	}
	_, intake := store(t)
	sum, err := Import(context.Background(), &b, FormatJSONL, intake, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Rejected) != maxRejections || sum.MoreRejected != 5 || sum.Rejected[maxRejections-1].Line != maxRejections {
		t.Errorf("%d rejections kept, %d more; last kept line %d", len(sum.Rejected), sum.MoreRejected, sum.Rejected[len(sum.Rejected)-1].Line)
	}
}

// FuzzImportLine feeds one arbitrary line to both formats: never a panic, a
// line is counted once, and whatever is imported carries a clean external
// ID and a body in valid UTF-8.
func FuzzImportLine(f *testing.F) {
	for _, s := range []string{`{"id":"a","text":"b"}`, `{"external_id":"x","customer":{"email":"a@b"},"text":"t"}`,
		`c-1,"multi` + "\n" + `line",a@b.c,1.5,USD`, `"`, `,,,,`, "\xff\xfe", `{"id":"a","text":"b","expect":{}}` + "\r"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		for _, format := range []string{FormatJSONL, FormatCSV} {
			file := line
			if format == FormatCSV {
				file = append([]byte("external_id,text,customer_email,amount,currency\n"), line...)
			}
			var got []triage.Inbound
			intake := func(_ context.Context, in triage.Inbound) (triage.Ticket, error) {
				got = append(got, in)
				return triage.Ticket{ID: fmt.Sprint("T", len(got))}, nil
			}
			sum, err := Import(context.Background(), bytes.NewReader(file), format, intake, nil)
			if err != nil {
				t.Fatalf("%s: %v", format, err)
			}
			lines := bytes.Count(line, []byte("\n")) + 1
			if n := sum.Imported + len(sum.Rejected); n > lines || sum.Imported != len(got) {
				t.Fatalf("%s: %d imported, %d rejected from %d lines", format, sum.Imported, len(sum.Rejected), lines)
			}
			for _, in := range got {
				if in.Source != triage.SourceImport || in.ExternalID == "" || in.Body == "" ||
					strings.ContainsFunc(in.ExternalID, unicode.IsControl) || !utf8.ValidString(in.Body) || !utf8.ValidString(in.Customer.Email) {
					t.Fatalf("%s: imported %+v", format, in)
				}
			}
		}
	})
}

// TestImportCountsLifetimeSpend: imported history's order amounts add up
// to the customer's lifetime spend, each order once, and importing the
// file again adds nothing.
func TestImportCountsLifetimeSpend(t *testing.T) {
	tests := []struct {
		name   string
		format string
		file   string
	}{
		{"CSV", FormatCSV, "external_id,text,customer_email,order_ref,amount,currency\n" +
			"h-1,late,ann@example.com,1001,2000,USD\n" +
			"h-2,still late,ann@example.com,1001,2000,USD\n" +
			"h-3,broken,ann@example.com,1002,3100.50,USD\n"},
		{"JSONL", FormatJSONL, `{"external_id":"h-1","customer":{"email":"ann@example.com"},"text":"late","order":{"ref":"1001","amount":2000,"currency":"USD"}}
{"external_id":"h-2","customer":{"email":"ann@example.com"},"text":"still late","order":{"ref":"1001","amount":2000,"currency":"USD"}}
{"external_id":"h-3","customer":{"email":"ann@example.com"},"text":"broken","order":{"ref":"1002","amount":3100.5,"currency":"USD"}}
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tickets, intake := store(t)
			for range 2 {
				if _, err := Import(context.Background(), strings.NewReader(tt.file), tt.format, intake, nil); err != nil {
					t.Fatal(err)
				}
			}
			cs := tickets.Customers()
			if want := (triage.Money{Minor: 510050, Currency: "USD"}); len(cs) != 1 || cs[0].Lifetime != want {
				t.Errorf("customers %+v, want one with lifetime spend %v", cs, want)
			}
		})
	}
}
