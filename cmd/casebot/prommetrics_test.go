package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/casebot/casebot/bot/slackfake"
	"github.com/casebot/casebot/intake"
	"github.com/casebot/casebot/triage"
)

const testWebhookSecret = "test-webhook-secret-0123456789abcdef"

// webhookRequest builds a signed POST /v1/tickets for one ticket.
func webhookRequest(url, secret, externalID, email, text string) (*http.Request, error) {
	body, err := json.Marshal(intake.WebhookTicket{ExternalID: externalID, Channel: "chat",
		Customer: intake.WebhookCustomer{Email: email}, Text: text})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequest(http.MethodPost, url+"/v1/tickets", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	ts := time.Now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(intake.HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(intake.HeaderSignature, intake.Sign([]byte(secret), ts, body))
	return req, nil
}

// webhookResponse is the body of a 200 or 202 from the webhook.
type webhookResponse struct {
	TicketID  string `json:"ticket_id"`
	Duplicate bool   `json:"duplicate"`
}

// sendTicket posts one signed ticket and returns the status and ticket ID.
func sendTicket(client *http.Client, url, secret, externalID, email, text string) (int, string, error) {
	req, err := webhookRequest(url, secret, externalID, email, text)
	if err != nil {
		return 0, "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var r webhookResponse
	if resp.StatusCode/100 == 2 {
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			return resp.StatusCode, "", fmt.Errorf("decode response: %w", err)
		}
	}
	return resp.StatusCode, r.TicketID, nil
}

// scrape fetches /metrics and parses it with the Prometheus text parser.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse as the Prometheus text format: %v", err)
	}
	return fams
}

// sample returns the value of the sample of family name whose labels
// include labels, and whether there is one.
func sample(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
	for _, m := range f.GetMetric() {
		match := true
		for k, v := range labels {
			found := false
			for _, lp := range m.GetLabel() {
				found = found || (lp.GetName() == k && lp.GetValue() == v)
			}
			match = match && found
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

// failingModel is a classifier that always times out.
type failingModel struct{}

func (failingModel) Classify(context.Context, triage.ClassifyRequest) (triage.Classification, error) {
	return triage.Classification{}, fmt.Errorf("ollama: %w", context.DeadlineExceeded)
}

// TestMetricsAfterWebhookTicket scrapes /metrics from a System that took
// webhook tickets and classified them (one with a model that timed out),
// with nothing posted yet.
func TestMetricsAfterWebhookTicket(t *testing.T) {
	e := newE2E(t, slackfake.Options{PostRate: -1})
	e.sys.Secrets.WebhookSecret = testWebhookSecret
	srv := httptest.NewServer(e.sys.Handler())
	defer srv.Close()

	var ids []string
	for i, email := range []string{"ann@example.com", "bob@example.com"} {
		code, id, err := sendTicket(srv.Client(), srv.URL, testWebhookSecret, fmt.Sprintf("w-%d", i), email, "Where is my parcel?")
		if err != nil || code != http.StatusAccepted {
			t.Fatalf("ticket %d: %d %v", i, code, err)
		}
		ids = append(ids, id)
	}
	// A retry of the first is the same ticket: not counted again.
	if code, _, err := sendTicket(srv.Client(), srv.URL, testWebhookSecret, "w-0", "ann@example.com", "Where is my parcel?"); err != nil || code != http.StatusOK {
		t.Fatalf("retry: %d %v", code, err)
	}
	// The pipeline is not running: classify here, the second with a model
	// that fails.
	ctx := context.Background()
	if _, err := e.sys.Triager.Classify(ctx, ids[0], triage.Customer{}); err != nil {
		t.Fatal(err)
	}
	e.sys.Triager.Model = failingModel{}
	if _, err := e.sys.Triager.Classify(ctx, ids[1], triage.Customer{}); err != nil {
		t.Fatal(err)
	}

	fams := scrape(t, srv.URL)
	tests := []struct {
		name   string
		labels map[string]string
		want   float64
		absent bool
	}{
		{"casebot_tickets_received_total", map[string]string{"source": "webhook"}, 2, false},
		{"casebot_tickets_received_total", map[string]string{"source": "slack"}, 0, false},
		{"casebot_triage_seconds", nil, 2, false},
		{"casebot_model_failures_total", map[string]string{"kind": "timeout"}, 1, false},
		{"casebot_slack_ratelimited_total", nil, 0, false},
		{"casebot_outbox_depth", map[string]string{"channel": "C0QUEUE"}, 2, false},
		{"casebot_tickets_received", map[string]string{"window": "7d"}, 2, false},
		{"casebot_escalation_rate", map[string]string{"window": "7d"}, 0, false},
		// No reply yet: no first response time, as in report --json.
		{"casebot_first_response_p50_seconds", nil, 0, true},
		{"go_goroutines", nil, 0, false},
	}
	for _, tc := range tests {
		got, ok := sample(fams, tc.name, tc.labels)
		switch {
		case tc.absent && ok:
			t.Errorf("%s%v = %v, want no sample", tc.name, tc.labels, got)
		case tc.absent:
		case !ok:
			t.Errorf("%s%v missing", tc.name, tc.labels)
		case tc.name != "go_goroutines" && got != tc.want:
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	if f := fams["casebot_triage_seconds"]; f.GetType() != dto.MetricType_HISTOGRAM {
		t.Errorf("casebot_triage_seconds is a %v, want a histogram", f.GetType())
	}
}

// TestMetricsRegistryPerSystem: two Systems in one process each have their
// own registry (a shared default registry would panic on the second).
func TestMetricsRegistryPerSystem(t *testing.T) {
	a := newE2E(t, slackfake.Options{PostRate: -1})
	b := newE2E(t, slackfake.Options{PostRate: -1})
	if _, err := a.sys.Triager.Intake(context.Background(), triage.Inbound{Source: triage.SourceManual,
		ExternalID: "m1", Body: "hello"}); err != nil {
		t.Fatal(err)
	}
	for i, e := range []*e2e{a, b} {
		srv := httptest.NewServer(e.sys.Handler())
		got, _ := sample(scrape(t, srv.URL), "casebot_tickets_received_total", map[string]string{"source": "manual"})
		srv.Close()
		if want := float64(1 - i); got != want {
			t.Errorf("system %d counts %v manual tickets, want %v", i, got, want)
		}
	}
}

func TestModelFailureKind(t *testing.T) {
	tests := []struct {
		by, reason string
		want       string
		ok         bool
	}{
		{"model", "", "", false},
		{"rules", "no model configured", "", false},
		{"rules", "model failed: timeout", "timeout", true},
		{"rules", "model failed: invalid answer", "invalid_answer", true},
		{"rules", "model failed: unavailable; keyword classifier failed", "unavailable", true},
		{"rules", "model failed: ", "unknown", true},
	}
	for _, tc := range tests {
		got, ok := modelFailure(triage.Ticket{ClassifiedBy: tc.by, RulesReason: tc.reason})
		if got != tc.want || ok != tc.ok {
			t.Errorf("modelFailure(%q, %q) = %q, %v; want %q, %v", tc.by, tc.reason, got, ok, tc.want, tc.ok)
		}
	}
}
