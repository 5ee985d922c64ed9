package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"math/big"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/http/httptest"
	netmail "net/mail"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/casebot/casebot/intake"
)

// demoMail is one message the demo's mail server accepted.
type demoMail struct {
	To   []string
	Body string
}

// demoMailServer is the customers' side of email in the demo: a real SMTP
// server (go-smtp) on loopback, over implicit TLS with a certificate made
// for this run, that keeps every message casebot's Mailer delivers.
type demoMailServer struct {
	srv    *smtp.Server
	ln     net.Listener
	client *tls.Config

	mu   sync.Mutex
	msgs []demoMail
}

// startDemoMail listens on 127.0.0.1 and serves until close.
func startDemoMail() (*demoMailServer, error) {
	server, client, err := demoTLS()
	if err != nil {
		return nil, err
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", server)
	if err != nil {
		return nil, fmt.Errorf("demo mail server: %w", err)
	}
	m := &demoMailServer{ln: ln, client: client}
	m.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &demoMailSession{srv: m}, nil
	}))
	m.srv.Domain = "mail.demo.example"
	go m.srv.Serve(ln)
	return m, nil
}

// Addr is the server's host:port.
func (m *demoMailServer) Addr() string { return m.ln.Addr().String() }

func (m *demoMailServer) close() { m.srv.Close() }

// messages returns what was delivered so far.
func (m *demoMailServer) messages() []demoMail {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.msgs)
}

// demoMailSession takes one SMTP transaction; its body is decoded from
// quoted-printable, as a mail client shows it.
type demoMailSession struct {
	srv *demoMailServer
	to  []string
}

func (s *demoMailSession) Mail(string, *smtp.MailOptions) error { return nil }

func (s *demoMailSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *demoMailSession) Data(r io.Reader) error {
	msg, err := netmail.ReadMessage(r)
	if err != nil {
		return fmt.Errorf("demo mail: %w", err)
	}
	r = msg.Body
	if strings.EqualFold(msg.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		r = quotedprintable.NewReader(r)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("demo mail: %w", err)
	}
	s.srv.mu.Lock()
	body := strings.ReplaceAll(string(b), "\r\n", "\n")
	s.srv.msgs = append(s.srv.msgs, demoMail{To: slices.Clone(s.to), Body: body})
	s.srv.mu.Unlock()
	return nil
}

func (s *demoMailSession) Reset()        { s.to = nil }
func (s *demoMailSession) Logout() error { return nil }

// demoTLS makes a self-signed certificate for 127.0.0.1 and a client
// configuration that trusts only it.
func demoTLS() (server, client *tls.Config, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("demo certificate: %w", err)
	}
	// The certificate is checked against the wall clock by crypto/tls,
	// not the demo's simulated one.
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "casebot demo"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("demo certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("demo certificate: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
		&tls.Config{RootCAs: pool}, nil
}

// demoWebhookReply is one signed reply the demo's reply_url receiver took.
type demoWebhookReply struct {
	// Path is the reply_url path it was POSTed to: one per ticket.
	Path  string
	Reply intake.OutboundReply
}

// demoReplyServer is the chat widget and social inbox of the demo: the
// reply_url of their tickets, on loopback. It keeps every reply whose
// signature verifies and refuses the others, as a receiver should.
type demoReplyServer struct {
	srv    *httptest.Server
	secret []byte

	mu      sync.Mutex
	replies []demoWebhookReply
}

// demoReplyHost is the only host the demo's reply_url receiver listens on
// and its tickets' reply_url names: the host a reply_url allow-list in the
// demo's config has to admit, as casebot refuses internal targets not
// listed.
const demoReplyHost = "127.0.0.1"

func startDemoReplies(secret []byte) (*demoReplyServer, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(demoReplyHost, "0"))
	if err != nil {
		return nil, fmt.Errorf("demo reply_url receiver: %w", err)
	}
	r := &demoReplyServer{secret: secret}
	r.srv = &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(r.serve)}}
	r.srv.Start()
	return r, nil
}

// URL is the reply_url of the ticket with external ID ext.
func (r *demoReplyServer) URL(ext string) string {
	return r.srv.URL + "/replies/" + url.PathEscape(ext)
}

func (r *demoReplyServer) close() { r.srv.Close() }

func (r *demoReplyServer) received() []demoWebhookReply {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.replies)
}

func (r *demoReplyServer) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if req.Method != http.MethodPost || err != nil {
		http.Error(w, "POST a reply", http.StatusMethodNotAllowed)
		return
	}
	ts := req.Header.Get(intake.HeaderTimestamp)
	var unix int64
	if _, err := fmt.Sscan(ts, &unix); err != nil ||
		!hmac.Equal([]byte(req.Header.Get(intake.HeaderSignature)), []byte(intake.Sign(r.secret, unix, body))) {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var reply intake.OutboundReply
	if err := json.Unmarshal(body, &reply); err != nil {
		http.Error(w, "not a reply", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.replies = append(r.replies, demoWebhookReply{Path: req.URL.Path, Reply: reply})
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// ratingLink finds, in a message a customer received, the link that rates
// ticket id with rating, as a person reading the follow-up would.
func ratingLink(text, id string, rating int) (string, bool) {
	for _, f := range strings.Fields(text) {
		if !strings.HasPrefix(f, "http://") && !strings.HasPrefix(f, "https://") {
			continue
		}
		u, err := url.Parse(f)
		if err != nil || !strings.HasSuffix(u.Path, intake.RatingPath) {
			continue
		}
		if q := u.Query(); q.Get("t") == id && q.Get("r") == fmt.Sprint(rating) {
			return f, true
		}
	}
	return "", false
}

// errRatingRefused is a rating link or form that did not answer 2xx.
var errRatingRefused = errors.New("rating not accepted")

var (
	postForm   = regexp.MustCompile(`(?is)<form\b[^>]*\bmethod\s*=\s*["']?post\b[^>]*>(.*?)</form>`)
	formAction = regexp.MustCompile(`(?is)<form\b[^>]*\baction\s*=\s*["']([^"']*)["']`)
	formField  = regexp.MustCompile(`(?is)<(?:input|button)\b[^>]*>`)
	fieldAttr  = regexp.MustCompile(`(?is)\b(name|value)\s*=\s*["']([^"']*)["']`)
)

// clickRating is the customer's browser: it opens the link and, when the
// page is a confirmation form (a GET that only asks), submits it by POST
// with its fields, so the rating is recorded either way a server does it.
func clickRating(ctx context.Context, client *http.Client, link string, rating int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, link, nil)
	if err != nil {
		return fmt.Errorf("rating link: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("open rating link: %w", err)
	}
	page, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("read rating page: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%w: the link answered %d", errRatingRefused, resp.StatusCode)
	}
	form := postForm.FindSubmatch(page)
	if form == nil {
		return nil // the GET recorded the rating
	}
	target, _ := url.Parse(link)
	if m := formAction.FindSubmatch(form[0]); m != nil {
		a, err := url.Parse(html.UnescapeString(string(m[1])))
		if err != nil {
			return fmt.Errorf("rating form action: %w", err)
		}
		target = target.ResolveReference(a)
	}
	fields := url.Values{}
	var choices []string
	for _, tag := range formField.FindAll(form[1], -1) {
		var name, value string
		for _, a := range fieldAttr.FindAllSubmatch(tag, -1) {
			v := html.UnescapeString(string(a[2]))
			if strings.EqualFold(string(a[1]), "name") {
				name = v
			} else {
				value = v
			}
		}
		switch {
		case name == "":
		case bytes.HasPrefix(bytes.ToLower(tag), []byte("<button")):
			// Of several submit buttons the customer presses their rating.
			if value == fmt.Sprint(rating) || len(choices) == 0 {
				choices = []string{name, value}
			}
		default:
			fields.Set(name, value)
		}
	}
	if len(choices) == 2 {
		fields.Set(choices[0], choices[1])
	}
	req, err = http.NewRequestWithContext(ctx, http.MethodPost, target.String(), strings.NewReader(fields.Encode()))
	if err != nil {
		return fmt.Errorf("rating form: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = client.Do(req)
	if err != nil {
		return fmt.Errorf("submit rating form: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%w: the form answered %d", errRatingRefused, resp.StatusCode)
	}
	return nil
}
