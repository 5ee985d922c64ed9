package intake

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/casebot/casebot/triage"
)

// Import formats.
const (
	FormatJSONL = "jsonl"
	FormatCSV   = "csv"
)

// MaxImportLine is the longest JSONL line or CSV record Import reads, in
// bytes; a longer one is rejected without being held in memory.
const MaxImportLine = 1 << 20

// maxRejections bounds Summary.Rejected so a file of garbage cannot exhaust
// memory; the rest are only counted.
const maxRejections = 1000

// CSVColumns are the columns Import knows, in the documented order. The
// header row may list them in any order; external_id and text are
// required, the others may be left out.
var CSVColumns = []string{"external_id", "channel", "customer_email", "customer_handle", "customer_name",
	"subject", "text", "order_ref", "amount", "currency", "received_at"}

var requiredCSVColumns = []string{"external_id", "text"}

// evalKeys are the members of an evaluation-format line (SPEC section 9).
var evalKeys = []string{"id", "channel", "text", "expect"}

// ErrFormat is returned for an unknown format name or an unusable CSV
// header.
var ErrFormat = errors.New("import format")

// Progress reports how far an import has got, after every line.
type Progress struct {
	// Line is the last line read (1-based; a CSV record counts its first
	// line).
	Line                           int
	Imported, Duplicates, Rejected int
}

// Rejection is one line that was not imported, and why.
type Rejection struct {
	Line   int
	Reason string
}

// Summary is the outcome of an import.
type Summary struct {
	Imported   int
	Duplicates int
	// Rejected lists the first 1000 rejected lines in file order;
	// MoreRejected counts any beyond them.
	Rejected     []Rejection
	MoreRejected int
}

// Import reads tickets from r, one per JSONL line or CSV record, and passes
// each to intake as a triage.SourceImport message; pass Triager.Intake to
// store only, or Triager.Process to classify as well. It streams: no more
// than one line is held at a time.
//
// JSONL lines are WebhookTicket objects or evaluation-format lines
// ({"id", "channel", "text", "expect"}), whose id becomes the external ID,
// so importing the same file twice adds nothing. CSV needs a header row
// naming CSVColumns. Blank lines, a UTF-8 byte order mark and CRLF line ends
// are accepted.
//
// A line that is not a valid ticket is rejected with its line number and
// the import goes on. An error from intake other than triage.ErrDuplicate
// stops the import, since every later line would fail alike; the summary
// says how far it got, and running the import again is safe. progress, when
// not nil, is called after every line.
func Import(ctx context.Context, r io.Reader, format string,
	intake func(ctx context.Context, in triage.Inbound) (triage.Ticket, error), progress func(Progress)) (Summary, error) {
	im := &importer{intake: intake, progress: progress}
	br := bufio.NewReaderSize(r, 64<<10)
	var err error
	switch format {
	case FormatJSONL:
		err = im.jsonl(ctx, br)
	case FormatCSV:
		err = im.csv(ctx, br)
	default:
		err = fmt.Errorf("%w %q: want %s or %s", ErrFormat, format, FormatJSONL, FormatCSV)
	}
	return im.sum, err
}

type importer struct {
	intake   func(ctx context.Context, in triage.Inbound) (triage.Ticket, error)
	progress func(Progress)
	sum      Summary
	rejected int
}

// add imports one parsed line: in when err is nil, else a rejection.
func (im *importer) add(ctx context.Context, lineNo int, in triage.Inbound, err error) error {
	if err == nil {
		_, ierr := im.intake(ctx, in)
		switch {
		case ierr == nil:
			im.sum.Imported++
		case errors.Is(ierr, triage.ErrDuplicate):
			im.sum.Duplicates++
		default:
			return fmt.Errorf("line %d: %w", lineNo, ierr)
		}
	} else {
		im.rejected++
		if len(im.sum.Rejected) < maxRejections {
			im.sum.Rejected = append(im.sum.Rejected, Rejection{Line: lineNo, Reason: err.Error()})
		} else {
			im.sum.MoreRejected++
		}
	}
	if im.progress != nil {
		im.progress(Progress{Line: lineNo, Imported: im.sum.Imported, Duplicates: im.sum.Duplicates, Rejected: im.rejected})
	}
	return nil
}

func (im *importer) jsonl(ctx context.Context, br *bufio.Reader) error {
	var buf []byte
	for lineNo := 1; ; lineNo++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("import stopped at line %d: %w", lineNo, err)
		}
		line, tooLong, err := readLine(br, buf[:0], MaxImportLine, nil)
		buf = line
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read line %d: %w", lineNo, err)
		}
		if lineNo == 1 {
			line = bytes.TrimPrefix(line, bom)
		}
		if tooLong {
			if err := im.add(ctx, lineNo, triage.Inbound{}, fmt.Errorf("line is longer than %d bytes", MaxImportLine)); err != nil {
				return err
			}
			continue
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		in, perr := parseJSONLine(line)
		if err := im.add(ctx, lineNo, in, perr); err != nil {
			return err
		}
	}
}

// parseJSONLine reads one JSONL line of either format.
func parseJSONLine(data []byte) (triage.Inbound, error) {
	l, err := decodeTicket(data, true)
	if err != nil {
		return triage.Inbound{}, err
	}
	opts := inboundOptions{source: triage.SourceImport, channels: importChannels, requireCustomer: true}
	eval := slices.Contains(l.keys, "id") || slices.Contains(l.keys, "expect")
	if !eval {
		return l.inbound(opts)
	}
	for _, k := range l.keys {
		if !slices.Contains(evalKeys, k) {
			return triage.Inbound{}, &FieldError{Code: CodeUnknownField, Field: k,
				Detail: "is not a field of the evaluation format (id, channel, text, expect)"}
		}
	}
	l.ExternalID = l.ID
	opts.requireCustomer = false
	in, err := l.inbound(opts)
	if fe, ok := errors.AsType[*FieldError](err); ok && fe.Field == "external_id" {
		fe.Field = "id"
	}
	return in, err
}

var bom = []byte("\ufeff")

// readLine reads one line, appended to buf, without its line end ("\n" or
// "\r\n"). A line longer than max is consumed to its end but not kept:
// tooLong is set and line is buf as it was. quotes, when not nil, counts the
// double quotes of the whole line, kept or not. err is io.EOF only when
// nothing was left to read.
func readLine(br *bufio.Reader, buf []byte, max int, quotes *int) (line []byte, tooLong bool, err error) {
	base, read := len(buf), false
	for {
		frag, err := br.ReadSlice('\n')
		read = read || len(frag) > 0
		if quotes != nil {
			*quotes += bytes.Count(frag, []byte{'"'})
		}
		if !tooLong {
			buf = append(buf, frag...)
			if len(buf)-base > max+2 { // room for "\r\n"
				tooLong, buf = true, buf[:base]
			}
		}
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF && read:
		case err != nil:
			return buf[:base], tooLong, err
		}
		if !tooLong {
			buf = bytes.TrimSuffix(buf, []byte("\n"))
			buf = bytes.TrimSuffix(buf, []byte("\r"))
			if len(buf)-base > max {
				tooLong, buf = true, buf[:base]
			}
		}
		return buf, tooLong, nil
	}
}

func (im *importer) csv(ctx context.Context, br *bufio.Reader) error {
	sc := &csvScanner{br: br}
	var cols []string
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("import stopped at line %d: %w", sc.line+1, err)
		}
		rec, start, tooLong, err := sc.next(MaxImportLine)
		if err == io.EOF {
			if cols == nil {
				return fmt.Errorf("%w: the CSV file has no header row", ErrFormat)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("read line %d: %w", sc.line+1, err)
		}
		if cols == nil {
			if start == 1 {
				rec = bytes.TrimPrefix(rec, bom)
			}
			if len(bytes.TrimSpace(rec)) == 0 {
				continue
			}
			if tooLong {
				return fmt.Errorf("%w: the CSV header on line %d is longer than %d bytes", ErrFormat, start, MaxImportLine)
			}
			if cols, err = csvHeader(rec, start); err != nil {
				return err
			}
			continue
		}
		if tooLong {
			if err := im.add(ctx, start, triage.Inbound{}, fmt.Errorf("record is longer than %d bytes", MaxImportLine)); err != nil {
				return err
			}
			continue
		}
		if len(bytes.TrimSpace(rec)) == 0 {
			continue
		}
		in, perr := parseCSVRecord(rec, cols)
		if err := im.add(ctx, start, in, perr); err != nil {
			return err
		}
	}
}

// csvHeader reads the header row: known, distinct columns including the
// required ones.
func csvHeader(rec []byte, lineNo int) ([]string, error) {
	fields, err := splitCSV(rec)
	if err != nil {
		return nil, fmt.Errorf("%w: CSV header on line %d: %w", ErrFormat, lineNo, err)
	}
	var unknown, dup []string
	cols := make([]string, len(fields))
	for i, f := range fields {
		c := strings.ToLower(strings.TrimSpace(f))
		switch {
		case !slices.Contains(CSVColumns, c):
			unknown = append(unknown, strconv.Quote(f))
		case slices.Contains(cols[:i], c):
			dup = append(dup, c)
		}
		cols[i] = c
	}
	var missing []string
	for _, c := range requiredCSVColumns {
		if !slices.Contains(cols, c) {
			missing = append(missing, c)
		}
	}
	var problems []string
	if len(unknown) > 0 {
		problems = append(problems, "unknown columns "+strings.Join(unknown, ", ")+" (known: "+strings.Join(CSVColumns, ", ")+")")
	}
	if len(dup) > 0 {
		problems = append(problems, "repeated columns "+strings.Join(dup, ", "))
	}
	if len(missing) > 0 {
		problems = append(problems, "missing required columns "+strings.Join(missing, ", "))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: CSV header on line %d: %s", ErrFormat, lineNo, strings.Join(problems, "; "))
	}
	return cols, nil
}

// csvFieldNames maps ticket field paths to the CSV columns they come from,
// so a rejection names the column.
var csvFieldNames = map[string]string{
	"customer.email": "customer_email", "customer.handle": "customer_handle", "customer.name": "customer_name",
	"order.ref": "order_ref", "order.amount": "amount", "order.currency": "currency",
}

// parseCSVRecord turns one record into an Inbound. A row needs no customer:
// helpdesk exports often lack one, and such a ticket gets its own.
func parseCSVRecord(rec []byte, cols []string) (triage.Inbound, error) {
	if !utf8.Valid(rec) {
		return triage.Inbound{}, &FieldError{Code: CodeInvalidUTF8, Detail: "the record is not valid UTF-8"}
	}
	fields, err := splitCSV(rec)
	if err != nil {
		return triage.Inbound{}, err
	}
	if len(fields) != len(cols) {
		return triage.Inbound{}, fmt.Errorf("record has %d fields, the header has %d", len(fields), len(cols))
	}
	var t WebhookTicket
	var order WebhookOrder
	for i, c := range cols {
		v := fields[i]
		switch c {
		case "external_id":
			t.ExternalID = v
		case "channel":
			t.Channel = strings.ToLower(strings.TrimSpace(v))
		case "customer_email":
			t.Customer.Email = v
		case "customer_handle":
			t.Customer.Handle = v
		case "customer_name":
			t.Customer.Name = v
		case "subject":
			t.Subject = v
		case "text":
			t.Text = v
		case "order_ref":
			order.Ref = v
		case "amount":
			if v = strings.TrimSpace(v); v != "" {
				if order.Amount, err = strconv.ParseFloat(v, 64); err != nil {
					return triage.Inbound{}, &FieldError{Code: CodeInvalidField, Field: c, Detail: "must be a number such as 12.50"}
				}
			}
		case "currency":
			order.Currency = v
		case "received_at":
			if v = strings.TrimSpace(v); v != "" {
				at, err := time.Parse(time.RFC3339, v)
				if err != nil {
					return triage.Inbound{}, &FieldError{Code: CodeInvalidField, Field: c, Detail: "must be an RFC 3339 time such as 2025-03-03T09:00:00Z"}
				}
				t.ReceivedAt = &at
			}
		}
	}
	if order != (WebhookOrder{}) {
		t.Order = &order
	}
	in, err := t.inbound(inboundOptions{source: triage.SourceImport, channels: importChannels})
	if fe, ok := errors.AsType[*FieldError](err); ok {
		if col, ok := csvFieldNames[fe.Field]; ok {
			fe.Field = col
		}
	}
	return in, err
}

// splitCSV parses one record with encoding/csv, which knows RFC 4180's
// corners (quoted line breaks, doubled quotes).
func splitCSV(rec []byte) ([]string, error) {
	r := csv.NewReader(bytes.NewReader(rec))
	r.FieldsPerRecord = -1
	fields, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("invalid CSV: %w", err)
	}
	if _, err := r.Read(); err != io.EOF {
		return nil, errors.New("invalid CSV: a quote is not closed where the record should end")
	}
	return fields, nil
}

// csvScanner splits a CSV stream into records without parsing them: a line
// break ends a record unless it is inside quotes. That bounds memory per
// record, which encoding/csv alone does not, and lets an overlong record be
// skipped rather than end the import.
type csvScanner struct {
	br   *bufio.Reader
	line int // lines consumed so far
	buf  []byte
}

// next returns the next record without its final line end, and the line it
// starts on. A record longer than max is consumed but not kept (tooLong).
// err is io.EOF only when nothing was left to read.
func (s *csvScanner) next(max int) (rec []byte, start int, tooLong bool, err error) {
	start = s.line + 1
	s.buf = s.buf[:0]
	quotes := 0
	for {
		line, long, err := readLine(s.br, s.buf, max-len(s.buf), &quotes)
		if err == io.EOF {
			if s.line < start {
				return nil, start, false, io.EOF
			}
			// The file ended inside quotes: hand over what there is, for
			// the parser to reject.
			return s.buf, start, tooLong, nil
		}
		if err != nil {
			return nil, start, false, err
		}
		s.line++
		tooLong = tooLong || long
		if tooLong {
			// Keep nothing of an overlong record, but follow its quotes
			// to its end.
			s.buf = s.buf[:0]
		} else {
			s.buf = line
		}
		if quotes%2 == 0 {
			return s.buf, start, tooLong, nil
		}
		if !tooLong {
			s.buf = append(s.buf, '\n')
		}
	}
}
