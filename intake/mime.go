package intake

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"io"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/charset"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"github.com/casebot/casebot/triage"
)

// DefaultMaxEmailSize is the largest email ParseEmail reads, in bytes of the
// raw message.
const DefaultMaxEmailSize = 10 << 20

// Limits on what an email contributes to a ticket.
const (
	// maxBodyText bounds the decoded text kept from the body parts; a
	// longer text is cut and marked, the rest stays in the mailbox.
	maxBodyText = 1 << 20
	// maxThreadIDs bounds the Message-IDs looked up for threading; the
	// nearest ancestors come first, so a long References chain loses only
	// the oldest.
	maxThreadIDs = 50
	// maxMessageID is the longest Message-ID kept (RFC 5322 line length).
	maxMessageID = 998
)

// ErrEmailTooLarge is returned by ParseEmail for a message over its size
// limit.
var ErrEmailTooLarge = errors.New("email larger than the size limit")

// ErrMalformedEmail is returned when a message's header cannot be read.
var ErrMalformedEmail = errors.New("malformed email")

func init() {
	// Mail labelled ISO-8859-1 is in practice Windows-1252 (curly quotes,
	// the euro sign in 0x80–0x9F), as WHATWG decodes it; every other
	// charset is go-message's. go-message reads this hook for body parts
	// and RFC 2047 header words alike.
	message.CharsetReader = func(label string, r io.Reader) (io.Reader, error) {
		switch strings.ToLower(strings.TrimSpace(label)) {
		case "iso-8859-1", "iso8859-1", "iso_8859-1", "latin1", "l1", "cp819", "ibm819":
			label = "windows-1252"
		}
		return charset.Reader(label, r)
	}
}

// Email is one parsed message: who wrote it, how it threads, and the
// customer's own text. Every field is cleaned of control characters and
// invalid UTF-8; all of it is still untrusted customer data.
type Email struct {
	// FromName is the sender's display name; From the lower-cased address.
	FromName string
	From     string
	// Subject is RFC 2047 decoded.
	Subject string
	// MessageID, InReplyTo and References hold message identifiers without
	// angle brackets; MessageID is empty when the header is missing or
	// unusable.
	MessageID  string
	InReplyTo  []string
	References []string
	// Date is the Date header, zero when missing or unreadable.
	Date time.Time
	// Body is the customer's text: the text/plain part, or the text/html
	// part converted to text, with quoted history stripped.
	Body string
	// Attachments are the file names of the other parts; their content is
	// never read.
	Attachments []string
	// Automatic is set for out-of-office and other auto-replies and for
	// delivery reports (bounces): no person wrote them, and an auto-reply
	// to casebot's answer must not reopen a ticket. Other machine mail
	// (contact forms, notifications, newsletters) is not marked: it may
	// carry a customer's message.
	Automatic bool
}

// ParseEmail reads one RFC 5322 message of at most DefaultMaxEmailSize
// bytes. A body that is partly malformed yields what could be read; only an
// unreadable header (ErrMalformedEmail) or a message over the limit
// (ErrEmailTooLarge) fail.
func ParseEmail(r io.Reader) (Email, error) { return ParseEmailLimit(r, DefaultMaxEmailSize) }

// ParseEmailLimit is ParseEmail with a size limit of max bytes. Attachments
// are skipped as they stream past, so memory stays bounded by the text parts
// whatever the message holds.
func ParseEmailLimit(r io.Reader, max int64) (Email, error) {
	lr := &sizeLimit{r: r, n: max}
	e, err := parseEmail(bufio.NewReader(lr))
	if lr.over {
		return Email{}, fmt.Errorf("%w of %d bytes", ErrEmailTooLarge, max)
	}
	return e, err
}

// sizeLimit fails reads past n bytes with ErrEmailTooLarge.
type sizeLimit struct {
	r    io.Reader
	n    int64
	over bool
}

func (l *sizeLimit) Read(p []byte) (int, error) {
	if l.n < 0 {
		l.over = true
		return 0, ErrEmailTooLarge
	}
	// One byte more than allowed tells "exactly at the limit" from "over".
	if int64(len(p)) > l.n+1 {
		p = p[:l.n+1]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	if l.n < 0 {
		l.over = true
		return n, ErrEmailTooLarge
	}
	return n, err
}

func parseEmail(br *bufio.Reader) (Email, error) {
	var e Email
	th, err := textproto.ReadHeader(br)
	if err != nil && !errors.Is(err, io.EOF) {
		// io.EOF is a message that is all header; anything else is not
		// mail.
		return e, fmt.Errorf("%w: %w", ErrMalformedEmail, err)
	}
	if th.Len() == 0 {
		return e, fmt.Errorf("%w: no header fields", ErrMalformedEmail)
	}
	h := mail.Header{Header: message.Header{Header: th}}
	e.FromName, e.From = parseFrom(h)
	subject, _ := h.Subject() // on error the raw value, repaired below
	e.Subject = clip(oneLine(subject), maxShort)
	if ids := msgIDs(h.Get("Message-Id")); len(ids) > 0 {
		e.MessageID = ids[0]
	}
	e.InReplyTo = msgIDs(h.Get("In-Reply-To"))
	e.References = msgIDs(h.Get("References"))
	if d, err := h.Date(); err == nil {
		e.Date = d
	}
	e.Automatic = automatic(h)

	// An unknown charset or transfer encoding still yields a readable
	// entity; the bytes are repaired as text further on.
	ent, _ := message.New(h.Header, br)
	var plain, htmlText []string
	budget := maxBodyText
	_ = ent.Walk(func(_ []int, part *message.Entity, _ error) error {
		mt, disp, filename := partInfo(part.Header)
		switch {
		case strings.HasPrefix(mt, "multipart/"):
			return nil
		case disp != "attachment" && filename == "" && (mt == "text/plain" || mt == "text/html"):
			text, rest := readText(part.Body, budget)
			budget = rest
			if mt == "text/plain" {
				plain = append(plain, text)
			} else {
				htmlText = append(htmlText, text)
			}
		default:
			e.Attachments = append(e.Attachments, attachmentName(filename, mt))
		}
		return nil
	})
	// A malformed part ends the walk: what was read is kept, and the rest
	// of the message is left in the mailbox for a person to read.
	var body string
	switch {
	case len(plain) > 0:
		body = strings.Join(plain, "\n\n")
	case len(htmlText) > 0:
		body = HTMLToText(strings.Join(htmlText, "\n"))
	}
	e.Body = StripQuoted(cleanText(body))
	if budget <= 0 {
		e.Body += "\n[…]"
	}
	return e, nil
}

// partInfo returns a part's media type, its disposition and its file name,
// tolerating malformed header values.
func partInfo(h message.Header) (mt, disp, filename string) {
	mt, params, err := h.ContentType()
	if err != nil {
		mt, _, _ = strings.Cut(mt, ";")
	}
	mt = strings.ToLower(strings.TrimSpace(mt))
	disp, dparams, err := h.ContentDisposition()
	if err != nil {
		disp, _, _ = strings.Cut(h.Get("Content-Disposition"), ";")
	}
	disp = strings.ToLower(strings.TrimSpace(disp))
	filename = dparams["filename"]
	if filename == "" {
		filename = params["name"]
	}
	return mt, disp, clip(oneLine(filename), 255)
}

// attachmentName names an attachment by its file name, or by its media type
// when it has none.
func attachmentName(filename, mt string) string {
	if filename != "" {
		return filename
	}
	if mt == "" {
		mt = "application/octet-stream"
	}
	return "(unnamed " + clip(oneLine(mt), 100) + ")"
}

// readText reads a text part, at most budget bytes, and returns it as valid
// UTF-8 with the budget left.
func readText(r io.Reader, budget int) (string, int) {
	if budget <= 0 {
		return "", 0
	}
	b, _ := io.ReadAll(io.LimitReader(r, int64(budget)+1))
	if len(b) > budget {
		b = b[:budget]
		return repairUTF8(b), 0
	}
	return repairUTF8(b), budget - len(b)
}

// repairUTF8 makes b valid UTF-8. Text with no valid multi-byte sequence at
// all is 8-bit text mislabelled (or unlabelled) as UTF-8 and is read as
// Windows-1252, the usual culprit; otherwise the stray bytes become U+FFFD.
func repairUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	multibyte := false
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r != utf8.RuneError && size > 1 {
			multibyte = true
			break
		}
		i += size
	}
	if !multibyte {
		if r, err := charset.Reader("windows-1252", bytes.NewReader(b)); err == nil {
			if out, err := io.ReadAll(r); err == nil {
				return string(out)
			}
		}
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// oneLine repairs a header value and folds every run of white space and
// control characters, CR and LF included, into one space: a decoded
// encoded-word can hold line breaks, which must never reach a header
// casebot writes or a one-line field on a card.
func oneLine(s string) string {
	s = repairUTF8([]byte(s))
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r) || r == '\uFEFF'
	}), " ")
}

// parseFrom returns the display name and lower-cased address of the first
// From mailbox, falling back to a lenient reading of a malformed header.
func parseFrom(h mail.Header) (name, addr string) {
	if list, err := h.AddressList("From"); err == nil && len(list) > 0 {
		name, addr = list[0].Name, list[0].Address
	} else {
		raw, _ := h.Text("From")
		name, addr = lenientAddress(raw)
	}
	addr = strings.ToLower(oneLine(addr))
	if !plausibleEmail(addr) || len(addr) > maxShort {
		addr = ""
	}
	return clip(strings.Trim(oneLine(name), `"' `), maxShort), addr
}

// lenientAddress finds "Name <addr>" or a bare addr in a header value that
// the RFC 5322 parser refused.
func lenientAddress(s string) (name, addr string) {
	if i := strings.LastIndexByte(s, '<'); i >= 0 {
		if j := strings.IndexByte(s[i:], '>'); j > 0 {
			return strings.TrimSpace(s[:i]), strings.TrimSpace(s[i+1 : i+j])
		}
	}
	for _, f := range strings.Fields(s) {
		if strings.Contains(f, "@") {
			return "", strings.Trim(f, "<>,;\"'()")
		}
	}
	return "", ""
}

// msgIDs reads a list of message identifiers leniently: every <…> token, or
// when there are none (a common mistake), every bare token with an @. IDs
// with white space or control characters are dropped.
func msgIDs(s string) []string {
	var ids []string
	add := func(id string) {
		id = strings.TrimSpace(id)
		if validMsgID(id) && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	rest := s
	for {
		i := strings.IndexByte(rest, '<')
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i:], '>')
		if j < 0 {
			break
		}
		add(rest[i+1 : i+j])
		rest = rest[i+j+1:]
	}
	if len(ids) == 0 && !strings.Contains(s, "<") {
		for _, f := range strings.Fields(s) {
			if strings.Contains(f, "@") {
				add(f)
			}
		}
	}
	return ids
}

// validMsgID accepts a message identifier without its angle brackets:
// non-empty, not overlong, valid UTF-8, with no white space, control
// character or bracket that could end it or the header line it is on.
func validMsgID(id string) bool {
	return id != "" && len(id) <= maxMessageID && utf8.ValidString(id) &&
		!strings.ContainsFunc(id, func(r rune) bool {
			return unicode.IsSpace(r) || unicode.IsControl(r) || r == '<' || r == '>'
		})
}

// automatic reports whether the message is an auto-reply (RFC 3834
// Auto-Submitted: auto-replied, the common vacation-responder headers) or a
// delivery or disposition report (RFC 6522 multipart/report).
func automatic(h mail.Header) bool {
	if strings.EqualFold(strings.TrimSpace(h.Get("Auto-Submitted")), "auto-replied") {
		return true
	}
	if h.Has("X-Autoreply") || h.Has("X-Autorespond") ||
		strings.EqualFold(strings.TrimSpace(h.Get("Precedence")), "auto_reply") {
		return true
	}
	mt, _, _ := h.ContentType()
	return strings.EqualFold(mt, "multipart/report")
}

// ThreadIDs lists the Message-IDs this email answers, nearest first:
// In-Reply-To, then References from the newest back, without repeats.
func (e Email) ThreadIDs() []string {
	var ids []string
	add := func(id string) {
		if id != e.MessageID && !slices.Contains(ids, id) && len(ids) < maxThreadIDs {
			ids = append(ids, id)
		}
	}
	for _, id := range e.InReplyTo {
		add(id)
	}
	for _, id := range slices.Backward(e.References) {
		add(id)
	}
	return ids
}

// ExternalID is the email's Message-ID or, when it has none, a hash of
// sender, date, subject and text: a re-fetch of the same message gives the
// same ID, so it is stored once.
func (e Email) ExternalID() string {
	if e.MessageID != "" {
		return e.MessageID
	}
	sum := sha256.New()
	for _, s := range []string{e.From, e.Date.UTC().Format(time.RFC3339Nano), e.Subject, e.Body} {
		sum.Write([]byte(s))
		sum.Write([]byte{0})
	}
	return "sha256:" + hex.EncodeToString(sum.Sum(nil))[:32]
}

// Inbound normalises e into a triage.Inbound received at now. The Date
// header is the sender's clock: it is kept as SenderAt, and is ReceivedAt
// only within triage.MaxSenderSkew before now.
func (e Email) Inbound(now time.Time) triage.Inbound {
	return triage.Inbound{
		Source:      triage.SourceEmail,
		Channel:     "email",
		ExternalID:  e.ExternalID(),
		Customer:    triage.Customer{Email: e.From, Name: e.FromName},
		Subject:     e.Subject,
		Body:        e.Body,
		Attachments: slices.Clone(e.Attachments),
		ReplyTo:     e.MessageID,
		ReceivedAt:  triage.ReceivedTime(e.Date, now),
		SenderAt:    e.Date,
	}
}

// cleanText normalises line breaks, drops control characters other than
// tab and line feed, trims trailing blanks and keeps at most one empty line
// in a row.
func cleanText(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' {
			return r
		}
		if unicode.IsControl(r) || r == '\uFEFF' {
			return -1
		}
		return r
	}, s)
	lines := strings.Split(s, "\n")
	out := lines[:0]
	blank := 0
	for _, l := range lines {
		l = strings.TrimRightFunc(l, unicode.IsSpace)
		if l == "" {
			blank++
			if blank > 1 {
				continue
			}
		} else {
			blank = 0
		}
		out = append(out, l)
	}
	return strings.TrimSpace(strings.Join(out, "\n"))
}

// StripQuoted removes the quoted history a reply carries below the
// customer's own text: everything from an attribution line ("On … wrote:",
// "El … escribió:", "Le … a écrit :", "Am … schrieb …:"), an "Original
// Message" separator or an Outlook "From: … Sent: …" block on, and every
// line starting with ">". When that would leave nothing, the text is kept
// whole: a message that is all quote is still the customer's message.
func StripQuoted(text string) string {
	lines := strings.Split(text, "\n")
	var out []string
	for i := 0; i < len(lines); i++ {
		if quoteHeader(lines, i) {
			break
		}
		if strings.HasPrefix(strings.TrimLeft(lines[i], " \t"), ">") {
			continue
		}
		out = append(out, lines[i])
	}
	for len(out) > 0 && isRule(out[len(out)-1]) {
		out = out[:len(out)-1]
	}
	kept := cleanText(strings.Join(out, "\n"))
	if kept == "" {
		return text
	}
	return kept
}

// isRule reports whether l is empty or only a separator rule, as mail
// clients put above a quoted block.
func isRule(l string) bool {
	return strings.Trim(l, " \t-_=*") == ""
}

// quoteHeader reports whether lines[i] starts quoted history.
func quoteHeader(lines []string, i int) bool {
	l := normSpace(lines[i])
	if separator(l) {
		return true
	}
	if attribution(lines, i) {
		return true
	}
	return outlookBlock(lines, i)
}

// normSpace trims l and turns no-break spaces (French typography puts one
// before the colon) into plain spaces.
func normSpace(l string) string {
	l = strings.Map(func(r rune) rune {
		if r == '\u00a0' || r == '\u202f' {
			return ' '
		}
		return r
	}, l)
	return strings.TrimSpace(strings.TrimLeft(l, "*"))
}

// separators are the "Original Message" rules of common clients, lower
// case, as they read between the dashes.
var separators = []string{"original message", "mensaje original", "message d'origine",
	"message original", "ursprüngliche nachricht", "original-nachricht"}

func separator(l string) bool {
	if !strings.HasPrefix(l, "--") && !strings.HasPrefix(l, "__") {
		return false
	}
	inner := strings.ToLower(strings.TrimSpace(strings.Trim(l, "-_ ")))
	return slices.Contains(separators, inner)
}

// attributions are the opening word and closing words of "On … wrote:"
// lines in en, es, fr and de. German puts "schrieb" before the name, so its
// line only has to end with a colon.
var attributions = []struct{ start, end, contains string }{
	{"On ", "wrote:", ""},
	{"El ", "escribió:", ""},
	{"Le ", "a écrit :", ""},
	{"Le ", "a écrit:", ""},
	{"Am ", ":", " schrieb"},
}

// attribution reports whether an attribution line starts at lines[i]. Mail
// clients wrap long ones, so up to three lines are read as one.
func attribution(lines []string, i int) bool {
	joined := ""
	for j := i; j < len(lines) && j < i+3; j++ {
		l := normSpace(lines[j])
		if l == "" {
			return false
		}
		if joined != "" {
			joined += " "
		}
		joined += l
		if len(joined) > 400 {
			return false
		}
		for _, a := range attributions {
			// A date or time is always part of it; "On Monday I wrote:"
			// in the customer's own text is not.
			if strings.HasPrefix(joined, a.start) && strings.HasSuffix(joined, a.end) &&
				strings.Contains(joined, a.contains) && strings.ContainsAny(joined, "0123456789") {
				return true
			}
		}
	}
	return false
}

// outlookFrom and outlookDate are the labels of Outlook's reply header in
// en, es, fr and de.
var (
	outlookFrom = []string{"from:", "de:", "de :", "von:"}
	outlookDate = []string{"sent:", "date:", "enviado:", "enviado el:", "fecha:", "envoyé :", "envoyé:",
		"gesendet:", "datum:"}
)

// outlookBlock reports whether lines[i] is the "From:" line of a header
// block with a "Sent:" (or "Date:") line among the next three.
func outlookBlock(lines []string, i int) bool {
	if !hasLabel(lines[i], outlookFrom) {
		return false
	}
	for j := i + 1; j < len(lines) && j <= i+3; j++ {
		if hasLabel(lines[j], outlookDate) {
			return true
		}
	}
	return false
}

func hasLabel(l string, labels []string) bool {
	l = strings.ToLower(normSpace(l))
	return slices.ContainsFunc(labels, func(p string) bool { return strings.HasPrefix(l, p) })
}

// HTMLToText renders an HTML body as plain text: tags dropped, entities
// decoded, block elements and <br> as line breaks, list items as "- ",
// blockquotes as "> " lines (so StripQuoted removes them), script and style
// content skipped, white space collapsed except inside <pre>. It is a
// tokenizer, not a browser: malformed markup degrades to text.
func HTMLToText(s string) string {
	var w textWriter
	for len(s) > 0 {
		i := strings.IndexByte(s, '<')
		if i < 0 {
			w.text(html.UnescapeString(s))
			break
		}
		w.text(html.UnescapeString(s[:i]))
		s = s[i:]
		switch {
		case strings.HasPrefix(s, "<!--"):
			s = skipPast(s[4:], "-->")
		case strings.HasPrefix(s, "<!") || strings.HasPrefix(s, "<?"):
			s = skipPast(s, ">")
		case len(s) > 2 && s[1] == '/' && isASCIILetter(s[2]):
			name, rest := tagName(s[2:])
			w.endTag(name)
			s = skipTag(rest)
		case len(s) > 1 && isASCIILetter(s[1]):
			name, rest := tagName(s[1:])
			s = skipTag(rest)
			if rawText[name] {
				s = skipRawText(s, name)
				continue
			}
			w.startTag(name)
		default:
			// A "<" that opens no tag is text.
			w.text("<")
			s = s[1:]
		}
	}
	return w.String()
}

// rawText elements hold code or metadata, not text.
var rawText = map[string]bool{"script": true, "style": true, "title": true, "template": true, "textarea": true}

// blocks are the elements that start and end on their own line; paragraphs
// get an empty line around them.
var (
	blocks = map[string]bool{"div": true, "section": true, "article": true, "header": true, "footer": true,
		"main": true, "nav": true, "aside": true, "address": true, "center": true, "form": true,
		"fieldset": true, "figure": true, "figcaption": true, "dl": true, "dt": true, "dd": true,
		"table": true, "tr": true, "ul": true, "ol": true, "pre": true, "hr": true, "li": true,
		"blockquote": true, "caption": true, "tbody": true, "thead": true, "tfoot": true}
	paragraphs = map[string]bool{"p": true, "h1": true, "h2": true, "h3": true, "h4": true, "h5": true, "h6": true}
)

func isASCIILetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

// tagName reads a tag name at the start of s, lower-cased.
func tagName(s string) (string, string) {
	i := 0
	for i < len(s) && (isASCIILetter(s[i]) || s[i] >= '0' && s[i] <= '9' || s[i] == '-' || s[i] == ':') {
		i++
	}
	return strings.ToLower(s[:i]), s[i:]
}

// skipTag skips the attributes of a tag up to and including its ">",
// stepping over quoted values, which may contain ">".
func skipTag(s string) string {
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '>':
			return s[i+1:]
		}
	}
	return ""
}

// skipPast returns what follows the first end in s, or nothing.
func skipPast(s, end string) string {
	if i := strings.Index(s, end); i >= 0 {
		return s[i+len(end):]
	}
	return ""
}

// skipRawText skips a raw-text element's content and its end tag.
func skipRawText(s, name string) string {
	lower := strings.ToLower(s)
	for off := 0; ; {
		i := strings.Index(lower[off:], "</"+name)
		if i < 0 {
			return ""
		}
		end := off + i + 2 + len(name)
		if end == len(s) || !isASCIILetter(s[end]) && s[end] != '-' {
			return skipTag(s[end:])
		}
		off = end
	}
}

// textWriter accumulates rendered text with lazily written line breaks, so
// nested blocks never stack up empty lines.
type textWriter struct {
	b     strings.Builder
	quote int // blockquote depth
	pre   int // <pre> depth
	// breaks is the number of line breaks owed before the next text; none
	// are owed before any text, so the output never starts with one.
	breaks int
	space  bool
}

func (w *textWriter) String() string { return cleanText(w.b.String()) }

func (w *textWriter) lineBreak(n int) {
	if w.b.Len() > 0 {
		w.breaks = max(w.breaks, n)
	}
	w.space = false
}

func (w *textWriter) startTag(name string) {
	switch {
	case name == "br":
		w.breaks++
		if w.b.Len() == 0 {
			w.breaks = 0
		}
		w.space = false
	case paragraphs[name]:
		w.lineBreak(2)
	case blocks[name]:
		w.lineBreak(1)
		switch name {
		case "blockquote":
			w.lineBreak(2)
			w.quote++
		case "pre":
			w.pre++
		case "li":
			w.flush()
			w.write("- ")
		case "hr":
			w.flush()
			w.write("---")
			w.lineBreak(1)
		}
	case name == "td" || name == "th":
		w.space = true
	}
}

func (w *textWriter) endTag(name string) {
	switch {
	case paragraphs[name]:
		w.lineBreak(2)
	case blocks[name]:
		switch name {
		case "blockquote":
			w.quote = max(w.quote-1, 0)
			w.lineBreak(2)
			return
		case "pre":
			w.pre = max(w.pre-1, 0)
		}
		w.lineBreak(1)
	}
}

// flush writes the owed line breaks and the quote prefix of a new line.
func (w *textWriter) flush() {
	if w.breaks > 0 {
		w.b.WriteString(strings.Repeat("\n", w.breaks))
		w.breaks = 0
		w.space = false
		w.prefix()
	} else if w.b.Len() == 0 {
		w.prefix()
	}
}

func (w *textWriter) prefix() {
	if w.quote > 0 {
		w.b.WriteString(strings.Repeat("> ", w.quote))
	}
}

func (w *textWriter) write(s string) {
	w.b.WriteString(s)
}

func (w *textWriter) text(s string) {
	if w.pre > 0 {
		for i, line := range strings.Split(s, "\n") {
			if i > 0 {
				w.breaks++
			}
			if line != "" {
				w.flush()
				w.write(line)
			}
		}
		return
	}
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if unicode.IsSpace(r) {
			w.space = true
			continue
		}
		if w.breaks > 0 || w.b.Len() == 0 {
			w.flush()
		} else if w.space {
			w.b.WriteByte(' ')
		}
		w.space = false
		w.b.WriteRune(r)
	}
}
