package intake

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/casebot/casebot/triage"
)

func TestParseEmailFiles(t *testing.T) {
	tests := []struct {
		file  string
		limit int64 // 0: DefaultMaxEmailSize
		want  Email
		err   error
	}{
		{file: "email_plain.eml", want: Email{
			FromName: "Maria Lopez", From: "maria.lopez@example.com",
			Subject: "Where is my order? — #4501", MessageID: "CAF=plain-4501@mail.example.com",
			Date: date("Mon, 03 Mar 2025 09:15:00 +0100"),
			Body: "Hello,\n\nmy order #4501 was due on Friday and the tracking page still says “label created”. " +
				"Can you check where it is?\n\nThanks,\nMaría",
		}},
		{file: "email_html_only.eml", want: Email{
			FromName: "Tom Baker", From: "tom@example.org", Subject: "Cracked jar",
			MessageID: "html-only-7788@example.org", Date: date("Tue, 04 Mar 2025 10:00:00 +0000"),
			Body: "Hi team,\n\nThe blender I bought (order #7788) arrived with a cracked jar.\n" +
				"I’d like a replacement & a refund of the shipping €4.99.\n\n- Model: BX-200\n- Colour: red\n" +
				"Order #7788\nRegards,\nTom <not a tag>",
		}},
		{file: "email_alternative.eml", want: Email{
			FromName: "Ana", From: "ana@example.net", Subject: "Billing question", MessageID: "alt-1@example.net",
			Date: date("Wed, 05 Mar 2025 08:30:00 -0500"),
			Body: "I was charged twice for invoice 991.\nPlease refund one of the charges.",
		}},
		{file: "email_latin1.eml", want: Email{
			FromName: "Renée Dupré", From: "renee@example.fr", Subject: "Colis abîmé", MessageID: "latin1-1@example.fr",
			Date: date("Thu, 06 Mar 2025 14:00:00 +0100"),
			// 0x92 and 0x80 are Windows-1252's apostrophe and euro sign.
			Body: "Bonjour,\n\nJ’ai reçu un colis abîmé, coût 45 €.\nMerci d’avance.\n\nRenée",
		}},
		{file: "email_quoted_en.eml", want: Email{
			FromName: "Maria Lopez", From: "maria.lopez@example.com", Subject: "Re: Where is my order? — #4501",
			MessageID: "CAF=reply-1@mail.example.com", InReplyTo: []string{"casebot.abc@shop.example"},
			References: []string{"CAF=plain-4501@mail.example.com", "casebot.abc@shop.example"},
			Date:       date("Tue, 04 Mar 2025 11:00:00 +0100"),
			Body:       "Still nothing has arrived. Please send a replacement.",
		}},
		{file: "email_quoted_es.eml", want: Email{
			FromName: "Carlos", From: "carlos@example.es", Subject: "Re: Pedido 3321", MessageID: "es-reply@example.es",
			InReplyTo: []string{"es-first@example.es"}, References: []string{"es-first@example.es"},
			Date: date("Tue, 04 Mar 2025 12:00:00 +0100"),
			Body: "Hola, el paquete llegó vacío. ¿Qué hago?",
		}},
		{file: "email_quoted_fr.eml", want: Email{
			FromName: "Renée", From: "renee@example.fr", Subject: "Re: Commande 5512", MessageID: "fr-reply@example.fr",
			InReplyTo: []string{"fr-first@example.fr"}, Date: date("Tue, 04 Mar 2025 12:00:00 +0100"),
			Body: "La taille ne convient pas, je voudrais un échange.",
		}},
		{file: "email_quoted_de.eml", want: Email{
			FromName: "Jonas", From: "jonas@example.de", Subject: "AW: Bestellung 8812", MessageID: "de-reply@example.de",
			InReplyTo: []string{"de-first@example.de"}, Date: date("Tue, 04 Mar 2025 12:00:00 +0100"),
			Body: "Die Rechnung ist falsch, bitte korrigieren.",
		}},
		{file: "email_outlook.eml", want: Email{
			FromName: "Pat Kim", From: "pat@example.com", Subject: "RE: Return label", MessageID: "outlook-1@example.com",
			Date: date("Tue, 04 Mar 2025 12:00:00 -0800"),
			Body: "The return label you sent does not scan at the post office.\n\nPat",
		}},
		{file: "email_attachments.eml", want: Email{
			FromName: "Lee", From: "lee@example.com", Subject: "Damaged item photos", MessageID: "att-1@example.com",
			Date: date("Fri, 07 Mar 2025 09:00:00 +0000"),
			Body: "Photos of the damage and my receipt are attached.",
			// RFC 2231 and RFC 2047 file names decoded; a text part with a
			// file name is an attachment, not body text.
			Attachments: []string{"receipt.pdf", "café box.png", "übersicht.jpg", "notes.txt", "(unnamed application/octet-stream)"},
		}},
		{file: "email_no_message_id.eml", want: Email{
			From: "anon@example.com", Subject: "No id here", Date: date("Sat, 08 Mar 2025 09:00:00 +0000"),
			Body: "Where is my refund?",
		}},
		{file: "email_invalid_utf8.eml", want: Email{
			// Latin-1 bytes in headers and a part labelled UTF-8 are read as
			// Windows-1252; a part that is mostly UTF-8 keeps it and gets
			// U+FFFD for the stray byte.
			FromName: "Zoë", From: "zoe@example.com", Subject: "Café order", MessageID: "bad-utf8@example.com",
			Date: date("Sat, 08 Mar 2025 10:00:00 +0000"),
			Body: "The café grinder arrived broken.\n\nMixed: naïve \uFFFD text.",
		}},
		{file: "email_auto_reply.eml", want: Email{
			FromName: "Maria Lopez", From: "maria.lopez@example.com", Subject: "Automatic reply: Re: Where is my order?",
			MessageID: "ooo-1@mail.example.com", InReplyTo: []string{"casebot.abc@shop.example"},
			References: []string{"CAF=plain-4501@mail.example.com", "casebot.abc@shop.example"},
			Date:       date("Tue, 04 Mar 2025 12:00:00 +0100"),
			Body:       "I am out of the office until Monday.", Automatic: true,
		}},
		{file: "email_oversized.eml", limit: 4096, err: ErrEmailTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			limit := tt.limit
			if limit == 0 {
				limit = DefaultMaxEmailSize
			}
			got, err := ParseEmailLimit(f, limit)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if tt.err != nil {
				return
			}
			checkEmail(t, got, tt.want)
		})
	}
}

func date(s string) time.Time {
	d, err := time.Parse(time.RFC1123Z, s)
	if err != nil {
		panic(err)
	}
	return d
}

func checkEmail(t *testing.T, got, want Email) {
	t.Helper()
	if !got.Date.Equal(want.Date) {
		t.Errorf("Date = %v, want %v", got.Date, want.Date)
	}
	got.Date, want.Date = time.Time{}, time.Time{}
	if got.Body != want.Body {
		t.Errorf("Body =\n%q\nwant\n%q", got.Body, want.Body)
	}
	got.Body, want.Body = "", ""
	if !equalEmail(got, want) {
		t.Errorf("got  %#v\nwant %#v", got, want)
	}
}

func equalEmail(a, b Email) bool {
	return a.FromName == b.FromName && a.From == b.From && a.Subject == b.Subject && a.MessageID == b.MessageID &&
		slices.Equal(a.InReplyTo, b.InReplyTo) && slices.Equal(a.References, b.References) &&
		a.Date.Equal(b.Date) && a.Body == b.Body && slices.Equal(a.Attachments, b.Attachments) && a.Automatic == b.Automatic
}

// endless is a message whose attachment never ends; it counts what was
// read from it.
type endless struct {
	head []byte
	read int64
}

func (r *endless) Read(p []byte) (int, error) {
	n := copy(p, r.head)
	r.head = r.head[n:]
	for i := n; i < len(p); i++ {
		p[i] = 'A'
	}
	r.read += int64(len(p))
	return len(p), nil
}

func TestParseEmailStopsAtTheDefaultLimit(t *testing.T) {
	r := &endless{head: []byte("From: a@example.com\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Type: application/zip\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n")}
	_, err := ParseEmail(r)
	if !errors.Is(err, ErrEmailTooLarge) {
		t.Fatalf("err = %v, want ErrEmailTooLarge", err)
	}
	// Reading stops right after the limit (plus one buffer), not at the end
	// of a stream that has none.
	if r.read > DefaultMaxEmailSize+64<<10 {
		t.Errorf("read %d bytes for a limit of %d", r.read, DefaultMaxEmailSize)
	}
}

func TestParseEmailAtTheLimit(t *testing.T) {
	msg := []byte("From: a@example.com\r\nSubject: x\r\n\r\nbody text\r\n")
	for _, tt := range []struct {
		limit   int64
		tooLong bool
	}{
		{int64(len(msg)), false},
		{int64(len(msg)) - 1, true},
	} {
		_, err := ParseEmailLimit(bytes.NewReader(msg), tt.limit)
		if got := errors.Is(err, ErrEmailTooLarge); got != tt.tooLong {
			t.Errorf("limit %d for %d bytes: err = %v", tt.limit, len(msg), err)
		}
	}
}

func TestParseEmailMalformed(t *testing.T) {
	tests := []struct {
		name string
		in   string
		err  error
		want Email
	}{
		{name: "header line without colon", in: "From a@example.com\r\n\r\nhi", err: ErrMalformedEmail},
		{name: "empty", in: "", err: ErrMalformedEmail},
		{name: "no header fields", in: "\r\nbody only", err: ErrMalformedEmail},
		{name: "header only, no blank line", in: "From: <a@example.com>\r\nSubject: only a header",
			want: Email{From: "a@example.com", Subject: "only a header"}},
		{name: "unparseable From falls back", in: "From: Bob Smith <BOB@Example.com\r\n\r\nhi",
			want: Email{From: "bob@example.com", Body: "hi"}},
		{name: "bare address From", in: "From: \"broken <bob@example.com>\r\n\r\nhi",
			want: Email{From: "bob@example.com", FromName: "broken", Body: "hi"}},
		{name: "no From", in: "Subject: hi\r\n\r\nhello", want: Email{Subject: "hi", Body: "hello"}},
		{name: "ids without brackets", in: "From: a@example.com\r\nMessage-ID: x1@example.com\r\n" +
			"In-Reply-To: y1@example.com\r\nReferences: <z1@example.com> <bad id> <y1@example.com>\r\n\r\nhi",
			want: Email{From: "a@example.com", MessageID: "x1@example.com", InReplyTo: []string{"y1@example.com"},
				References: []string{"z1@example.com", "y1@example.com"}, Body: "hi"}},
		{name: "encoded subject with line break", in: "From: a@example.com\r\nSubject: =?utf-8?q?a=0D=0ABcc:_x@evil.example?=\r\n\r\nhi",
			want: Email{From: "a@example.com", Subject: "a Bcc: x@evil.example", Body: "hi"}},
		{name: "unknown charset is repaired", in: "From: a@example.com\r\nContent-Type: text/plain; charset=x-unknown\r\n\r\ncaf\xe9",
			want: Email{From: "a@example.com", Body: "café"}},
		{name: "unterminated multipart keeps what was read", in: "From: a@example.com\r\nContent-Type: multipart/mixed; boundary=q\r\n\r\n" +
			"--q\r\nContent-Type: text/plain\r\n\r\nfirst part\r\n--q\r\nContent-Type: text/plain\r\n\r\nsecond",
			want: Email{From: "a@example.com", Body: "first part\n\nsecond"}},
		{name: "all quote is kept", in: "From: a@example.com\r\n\r\n> only a quote\r\n> nothing else",
			want: Email{From: "a@example.com", Body: "> only a quote\n> nothing else"}},
		{name: "bounce", in: "From: MAILER-DAEMON@example.com\r\nContent-Type: multipart/report; boundary=r\r\n\r\n--r\r\n\r\nfailed\r\n--r--",
			want: Email{From: "mailer-daemon@example.com", Body: "failed", Automatic: true}},
		{name: "vacation responder", in: "From: a@example.com\r\nX-Autoreply: yes\r\n\r\naway", want: Email{From: "a@example.com", Body: "away", Automatic: true}},
		// Machine mail that may carry a customer's words is a ticket.
		{name: "bulk", in: "From: news@example.com\r\nPrecedence: bulk\r\n\r\nsale", want: Email{From: "news@example.com", Body: "sale"}},
		{name: "contact form", in: "From: form@example.com\r\nAuto-Submitted: auto-generated\r\n\r\nmy order", want: Email{From: "form@example.com", Body: "my order"}},
		{name: "human says no", in: "From: a@example.com\r\nAuto-Submitted: no\r\n\r\nhi", want: Email{From: "a@example.com", Body: "hi"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseEmail(strings.NewReader(tt.in))
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if tt.err == nil {
				checkEmail(t, got, tt.want)
			}
		})
	}
}

func TestStripQuoted(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"gmail en one line", "Yes please.\n\nOn Mon, Mar 3, 2025 at 9:00 AM Shop <s@x.example> wrote:\n> old", "Yes please."},
		{"gmail en wrapped", "Yes.\nOn Mon, Mar 3, 2025 at 9:00 AM Shop Support\n<support@shop.example> wrote:\n> old", "Yes."},
		{"apple en", "Fine.\n\nOn 3 Mar 2025, at 09:00, Shop <s@x.example> wrote:\n\n> old", "Fine."},
		{"es", "Gracias.\nEl lun, 3 mar 2025 a las 9:00, Tienda (<s@x.example>) escribió:\n> viejo", "Gracias."},
		{"fr nbsp", "Merci.\nLe lun. 3 mars 2025 à 09:00, Boutique <s@x.example> a écrit\u00a0:\n> ancien", "Merci."},
		{"fr plain space", "Merci.\nLe 03/03/2025 à 09:00, Boutique a écrit :\n> ancien", "Merci."},
		{"de", "Danke.\nAm 03.03.2025 um 09:00 schrieb Shop <s@x.example>:\n> alt", "Danke."},
		{"original message", "Thanks.\n-----Original Message-----\nFrom: x\nold", "Thanks."},
		{"original message es", "Gracias.\n-----Mensaje original-----\nDe: x\nviejo", "Gracias."},
		{"original nachricht de", "Danke.\n-------- Original-Nachricht --------\nalt", "Danke."},
		{"outlook en", "New text.\n\n________________________________\nFrom: Shop <s@x.example>\nSent: Monday, March 3, 2025 9:00 AM\nTo: me\nSubject: x\n\nold", "New text."},
		{"outlook bold", "New text.\n*From:* Shop\n*Sent:* Monday\nold", "New text."},
		{"outlook es", "Texto.\nDe: Tienda <s@x.example>\nEnviado el: lunes, 3 de marzo de 2025 9:00\nPara: yo\nviejo", "Texto."},
		{"outlook fr", "Texte.\nDe : Boutique\nEnvoyé : lundi 3 mars 2025 09:00\nancien", "Texte."},
		{"outlook de", "Text.\nVon: Shop\nGesendet: Montag, 3. März 2025 09:00\nalt", "Text."},
		{"inline answers keep the customer's lines", "> Which order?\n#4501\n> Which colour?\nred", "#4501\nred"},
		{"indented quote", "mine\n  > theirs", "mine"},
		{"on without a date is the customer's text", "On Monday I wrote:\nthe box was empty", "On Monday I wrote:\nthe box was empty"},
		{"from line without sent is the customer's text", "From: my old address\nI moved house", "From: my old address\nI moved house"},
		{"german sentence without a date", "Am Montag schrieb ich Ihnen:\nnichts kam an", "Am Montag schrieb ich Ihnen:\nnichts kam an"},
		{"only a quote is kept whole", "On Mon, 3 Mar 2025 at 9:00 X wrote:\n> all of it", "On Mon, 3 Mar 2025 at 9:00 X wrote:\n> all of it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := StripQuoted(tt.in); got != tt.want {
				t.Errorf("StripQuoted(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestHTMLToText(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"entities", "<p>Fish &amp; chips &lt;3 &eacute;t&eacute; &#8364;5 &#x1F600;</p>", "Fish & chips <3 été €5 😀"},
		{"line breaks", "one<br>two<br/><br />four", "one\ntwo\n\nfour"},
		{"paragraphs and divs", "<div><p>a</p><p>b</p></div><div>c</div>", "a\n\nb\n\nc"},
		{"white space collapses", "<p>  lots   of\n\n  space </p>", "lots of space"},
		{"pre keeps it", "<pre>a  b\n  c</pre>", "a  b\n  c"},
		{"script style and comments dropped", "<style>x{}</style><script>if(a<b)alert(1)</script><!-- <p>no</p> -->yes", "yes"},
		{"script end tag needs a boundary", "<script>var s='</scripty>';</script>ok", "ok"},
		{"quoted attribute with >", `<a href="x" title="a > b">link</a> text`, "link text"},
		{"lists", "<ul><li>one</li><li>two</li></ul>after", "- one\n- two\nafter"},
		{"table cells", "<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>", "a b\nc"},
		{"blockquote becomes a quote", "mine<blockquote>theirs<br>more</blockquote>", "mine\n\n> theirs\n> more"},
		{"stray <", "a < b and 1<2", "a < b and 1<2"},
		{"unclosed tag", "text <b", "text"},
		{"inline tags join words", "Hel<b>lo</b> wor<i>ld</i>", "Hello world"},
		{"nbsp", "a&nbsp;&nbsp;b", "a b"},
		{"uppercase tags", "<P>A<BR>B</P>", "A\nB"},
		{"doctype and head", "<!DOCTYPE html><html><head><meta charset=utf-8><title>T</title></head><body>x</body></html>", "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := HTMLToText(tt.in); got != tt.want {
				t.Errorf("HTMLToText(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestEmailInbound(t *testing.T) {
	now := date("Tue, 04 Mar 2025 12:00:00 +0000")
	e := Email{FromName: "Maria", From: "maria@example.com", Subject: "Order", MessageID: "m1@example.com",
		Date: date("Tue, 04 Mar 2025 11:00:00 +0000"), Body: "Where is it?", Attachments: []string{"a.png"}}
	in := e.Inbound(now)
	want := triage.Inbound{Source: triage.SourceEmail, Channel: "email", ExternalID: "m1@example.com",
		Customer: triage.Customer{Email: "maria@example.com", Name: "Maria"}, Subject: "Order", Body: "Where is it?",
		Attachments: []string{"a.png"}, ReplyTo: "m1@example.com", ReceivedAt: now, SenderAt: e.Date}
	if in.Source != want.Source || in.Channel != want.Channel || in.ExternalID != want.ExternalID ||
		in.Customer.Email != want.Customer.Email || in.Customer.Name != want.Customer.Name || in.Subject != want.Subject ||
		in.Body != want.Body || !slices.Equal(in.Attachments, want.Attachments) || in.ReplyTo != want.ReplyTo ||
		!in.ReceivedAt.Equal(want.ReceivedAt) || !in.SenderAt.Equal(want.SenderAt) {
		t.Errorf("Inbound = %+v\nwant %+v", in, want)
	}

	recent := e
	recent.Date = now.Add(-triage.MaxSenderSkew)
	if got := recent.Inbound(now); !got.ReceivedAt.Equal(recent.Date) {
		t.Errorf("a Date within the skew gives ReceivedAt %v, want the Date %v", got.ReceivedAt, recent.Date)
	}

	future := e
	future.Date = now.Add(time.Hour)
	if got := future.Inbound(now).ReceivedAt; !got.Equal(now) {
		t.Errorf("a future Date gives ReceivedAt %v, want now %v", got, now)
	}
	undated := e
	undated.Date = time.Time{}
	if got := undated.Inbound(now).ReceivedAt; !got.Equal(now) {
		t.Errorf("no Date gives ReceivedAt %v, want now", got)
	}
}

func TestExternalIDWithoutMessageID(t *testing.T) {
	e := Email{From: "a@example.com", Subject: "s", Date: date("Sat, 08 Mar 2025 09:00:00 +0000"), Body: "b"}
	id := e.ExternalID()
	if !strings.HasPrefix(id, "sha256:") || len(id) != len("sha256:")+32 {
		t.Fatalf("ExternalID = %q", id)
	}
	if again := e.ExternalID(); again != id {
		t.Errorf("ExternalID not stable: %q then %q", id, again)
	}
	for name, other := range map[string]Email{
		"from":    {From: "b@example.com", Subject: e.Subject, Date: e.Date, Body: e.Body},
		"subject": {From: e.From, Subject: "t", Date: e.Date, Body: e.Body},
		"date":    {From: e.From, Subject: e.Subject, Date: e.Date.Add(time.Second), Body: e.Body},
		"body":    {From: e.From, Subject: e.Subject, Date: e.Date, Body: "c"},
	} {
		if other.ExternalID() == id {
			t.Errorf("a different %s gives the same ExternalID", name)
		}
	}
	// Fields are separated, so moving text from one to the next differs.
	shifted := Email{From: e.From, Subject: "sb", Date: e.Date, Body: ""}
	if shifted.ExternalID() == (Email{From: e.From, Subject: "s", Date: e.Date, Body: "b"}).ExternalID() {
		t.Error("ExternalID does not separate its fields")
	}
}

func TestThreadIDs(t *testing.T) {
	e := Email{MessageID: "self", InReplyTo: []string{"c"}, References: []string{"a", "b", "c", "self"}}
	if got, want := e.ThreadIDs(), []string{"c", "b", "a"}; !slices.Equal(got, want) {
		t.Errorf("ThreadIDs = %v, want %v", got, want)
	}
	long := Email{}
	for i := range 200 {
		long.References = append(long.References, strings.Repeat("x", i+1))
	}
	if got := long.ThreadIDs(); len(got) != maxThreadIDs || got[0] != long.References[199] {
		t.Errorf("ThreadIDs of 200 references: %d ids starting %q", len(got), got[0])
	}
}

func FuzzParseEmail(f *testing.F) {
	files, err := filepath.Glob("testdata/email_*.eml")
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("Content-Type: text/html\r\n\r\n<blockquote><pre><script>"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := ParseEmailLimit(bytes.NewReader(data), 1<<16)
		if err != nil {
			if !errors.Is(err, ErrMalformedEmail) && !errors.Is(err, ErrEmailTooLarge) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		for name, s := range map[string]string{"FromName": e.FromName, "From": e.From, "Subject": e.Subject,
			"MessageID": e.MessageID, "Body": e.Body} {
			if !utf8.ValidString(s) {
				t.Errorf("%s is not valid UTF-8: %q", name, s)
			}
		}
		for _, s := range append([]string{e.FromName, e.From, e.Subject, e.MessageID}, e.Attachments...) {
			if strings.ContainsAny(s, "\r\n") {
				t.Errorf("header value with a line break: %q", s)
			}
		}
		in := e.Inbound(time.Unix(1e9, 0))
		if in.ExternalID == "" {
			t.Error("empty ExternalID")
		}
		if h := HTMLToText(e.Body); !utf8.ValidString(h) {
			t.Errorf("HTMLToText gives invalid UTF-8: %q", h)
		}
	})
}
