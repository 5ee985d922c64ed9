package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/casebot/casebot/store"
	"github.com/casebot/casebot/triage"
)

// Limits of the /metrics exposition.
const (
	// serviceMetricsTTL is how long the SPEC section 7 figures are reused
	// between scrapes: they read a week of the metrics index, and a scrape
	// every few seconds need not pay for that each time.
	serviceMetricsTTL = time.Minute
	// serviceMetricsWindow is the window of the SPEC section 7 gauges.
	serviceMetricsWindow = "7d"
	// outboxDepthCap bounds how many posts of one channel a scrape counts:
	// a backlog deeper than this is reported as this, so a Slack outage
	// cannot make scrapes slow.
	outboxDepthCap = 10000
	// outboxChannelCap bounds the channel label's values; channels come
	// from the routes and the outbound sources, so this is a safety net.
	outboxChannelCap = 100
	// scrapeTimeout bounds the store reads of one scrape.
	scrapeTimeout = 10 * time.Second
)

// triageBuckets span a keyword triage (milliseconds) to a model that is
// slow or timing out (minutes).
var triageBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}

// promMetrics is a System's Prometheus registry and the instruments it
// updates. Each System has its own registry, not the global default one, so
// tests and the demo can build several Systems in one process.
type promMetrics struct {
	reg      *prometheus.Registry
	received *prometheus.CounterVec
	triage   prometheus.Histogram
	failures *prometheus.CounterVec
}

// newPromMetrics registers casebot's metrics for s. The collectors that read
// s.DB and s.Posts do so at scrape time, so s may finish opening later.
func newPromMetrics(s *System) *promMetrics {
	m := &promMetrics{
		reg: prometheus.NewRegistry(),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "casebot_tickets_received_total",
			Help: "Tickets stored, by source (a repeat delivery of a stored message is not counted).",
		}, []string{"source"}),
		triage: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "casebot_triage_seconds",
			Help:    "Time from a ticket's received-at to its classification being stored.",
			Buckets: triageBuckets,
		}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "casebot_model_failures_total",
			Help: "Tickets classified by the built-in rules because the model failed, by kind of failure.",
		}, []string{"kind"}),
	}
	for _, src := range []triage.Source{triage.SourceSlack, triage.SourceEmail, triage.SourceWebhook,
		triage.SourceManual, triage.SourceImport} {
		m.received.WithLabelValues(string(src))
	}
	m.reg.MustRegister(m.received, m.triage, m.failures,
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "casebot_slack_ratelimited_total",
			Help: "HTTP 429 answers from Slack to the poster.",
		}, func() float64 { return float64(s.Posts.Stats().RateLimited) }),
		&outboxCollector{db: func() *store.DB { return s.DB }, log: s.Logger},
		newServiceCollector(s),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// handler serves the registry in the Prometheus text format (or whatever
// the scraper negotiates). A collector that fails leaves its metrics out
// rather than failing the whole scrape.
func (m *promMetrics) handler(log *slog.Logger) http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      slogPromLogger{log},
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      m.reg,
	})
}

// countingTickets counts the tickets each source stores; every source
// stores through the Triager's store, so this sees them all.
type countingTickets struct {
	triage.Tickets
	received *prometheus.CounterVec
}

// countCreates wraps a store so that its new tickets are counted.
func (m *promMetrics) countCreates(t triage.Tickets) triage.Tickets {
	return countingTickets{Tickets: t, received: m.received}
}

// Create stores t and counts it when it is new.
func (c countingTickets) Create(ctx context.Context, t *triage.Ticket, customer triage.Customer) (triage.Ticket, error) {
	stored, err := c.Tickets.Create(ctx, t, customer)
	if err == nil {
		c.received.WithLabelValues(string(stored.Source)).Inc()
	}
	return stored, err
}

// observeClassified chains onto tr.Classified (set by the Pipeline): the
// triage latency and any model failure are recorded, then the previous
// hook runs.
func (m *promMetrics) observeClassified(tr *triage.Triager, clock triage.Clock) {
	next := tr.Classified
	tr.Classified = func(t triage.Ticket) {
		m.triage.Observe(max(0, clock.Now().Sub(t.ReceivedAt).Seconds()))
		if kind, ok := modelFailure(t); ok {
			m.failures.WithLabelValues(kind).Inc()
		}
		if next != nil {
			next(t)
		}
	}
}

// modelFailurePrefix starts a RulesReason when a model was asked and failed
// (triage.Triager.classify); "no model configured" is not a failure.
const modelFailurePrefix = "model failed: "

// modelFailure returns the kind of model failure behind a rules-only
// classification, as a label value: "timeout", "invalid_answer", ….
func modelFailure(t triage.Ticket) (string, bool) {
	if t.ClassifiedBy != "rules" {
		return "", false
	}
	kind, ok := strings.CutPrefix(t.RulesReason, modelFailurePrefix)
	if !ok {
		return "", false
	}
	kind, _, _ = strings.Cut(kind, ";")
	kind = strings.ReplaceAll(strings.TrimSpace(kind), " ", "_")
	if kind == "" {
		kind = "unknown"
	}
	return kind, true
}

// outboxCollector reports the posts waiting in the outbox, per channel.
type outboxCollector struct {
	db  func() *store.DB
	log *slog.Logger
}

var outboxDepthDesc = prometheus.NewDesc("casebot_outbox_depth",
	fmt.Sprintf("Posts waiting in the outbox, by channel (counted up to %d).", outboxDepthCap),
	[]string{"channel"}, nil)

// Describe implements prometheus.Collector.
func (c *outboxCollector) Describe(ch chan<- *prometheus.Desc) { ch <- outboxDepthDesc }

// Collect implements prometheus.Collector. Channels without pending posts
// are left out: they have no depth to report.
func (c *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	db := c.db()
	channels, err := db.Channels(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(outboxDepthDesc, err)
		return
	}
	if len(channels) > outboxChannelCap {
		c.log.Warn("outbox depth: too many channels, reporting the first ones", "channels", len(channels), "reported", outboxChannelCap)
		channels = channels[:outboxChannelCap]
	}
	for _, name := range channels {
		posts, err := db.Pending(ctx, name, outboxDepthCap)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(outboxDepthDesc, err)
			return
		}
		ch <- prometheus.MustNewConstMetric(outboxDepthDesc, prometheus.GaugeValue, float64(len(posts)), name)
	}
}

// serviceCollector exports the metrics of SPEC section 7 over the last
// week, computed from the store's metrics index at most once a minute. A
// figure with no data (null in `casebot report --json`) is left out.
type serviceCollector struct {
	s     *System
	descs map[string]*prometheus.Desc

	mu      sync.Mutex
	at      time.Time
	metrics triage.Metrics
}

// serviceMetricNames are the gauges, in the order of SPEC section 7.
var serviceMetricNames = []struct{ name, help string }{
	{"casebot_tickets_received", "Tickets received in the window."},
	{"casebot_first_response_p50_seconds", "Median time from received to the first customer-visible reply."},
	{"casebot_first_response_p90_seconds", "90th percentile time from received to the first customer-visible reply."},
	{"casebot_resolution_p50_seconds", "Median time from received to resolved."},
	{"casebot_resolution_p90_seconds", "90th percentile time from received to resolved."},
	{"casebot_escalation_rate", "Escalated tickets / tickets received."},
	{"casebot_ai_draft_acceptance_rate", "Drafts sent with a revision under 20% / drafts sent."},
	{"casebot_human_override_rate", "Tickets with a classification field changed by a person / tickets reviewed."},
	{"casebot_repeat_complaint_rate", "Customers with 2+ tickets of one type within 30 days / customers with tickets."},
	{"casebot_recovery_csat_mean", "Mean follow-up rating (1-5)."},
	{"casebot_recovery_csat_satisfied_share", "Share of follow-up ratings of 4 or 5."},
	{"casebot_recovery_csat_response_rate", "Follow-ups answered / follow-ups sent."},
	{"casebot_root_cause_coverage", "Resolved tickets with a root cause logged / resolved tickets."},
}

func newServiceCollector(s *System) *serviceCollector {
	c := &serviceCollector{s: s, descs: map[string]*prometheus.Desc{}}
	for _, n := range serviceMetricNames {
		c.descs[n.name] = prometheus.NewDesc(n.name, n.help+" Over the tickets received in the window.",
			nil, prometheus.Labels{"window": serviceMetricsWindow})
	}
	return c
}

// Describe implements prometheus.Collector.
func (c *serviceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, n := range serviceMetricNames {
		ch <- c.descs[n.name]
	}
}

// Collect implements prometheus.Collector.
func (c *serviceCollector) Collect(ch chan<- prometheus.Metric) {
	m, err := c.current()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.descs[serviceMetricNames[0].name], err)
		return
	}
	received := float64(m.Received)
	values := map[string]*float64{
		"casebot_tickets_received":              &received,
		"casebot_first_response_p50_seconds":    m.FirstResponseTime.P50,
		"casebot_first_response_p90_seconds":    m.FirstResponseTime.P90,
		"casebot_resolution_p50_seconds":        m.ResolutionTime.P50,
		"casebot_resolution_p90_seconds":        m.ResolutionTime.P90,
		"casebot_escalation_rate":               m.EscalationRate,
		"casebot_ai_draft_acceptance_rate":      m.DraftAcceptance,
		"casebot_human_override_rate":           m.HumanOverrideRate,
		"casebot_repeat_complaint_rate":         m.RepeatComplaint,
		"casebot_recovery_csat_mean":            m.RecoveryCSAT.Mean,
		"casebot_recovery_csat_satisfied_share": m.RecoveryCSAT.SatisfiedShare,
		"casebot_recovery_csat_response_rate":   m.RecoveryCSAT.ResponseRate,
		"casebot_root_cause_coverage":           m.RootCauseCoverage,
	}
	for _, n := range serviceMetricNames {
		if v := values[n.name]; v != nil {
			ch <- prometheus.MustNewConstMetric(c.descs[n.name], prometheus.GaugeValue, *v)
		}
	}
}

// current returns the cached figures, recomputing them when older than
// serviceMetricsTTL. Scrapes that arrive together wait for one
// computation.
func (c *serviceCollector) current() (triage.Metrics, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && time.Since(c.at) < serviceMetricsTTL {
		return c.metrics, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	m, err := computeMetrics(ctx, c.s.DB, serviceMetricsWindow, c.s.Clock.Now())
	if err != nil {
		return triage.Metrics{}, err
	}
	c.metrics, c.at = m, time.Now()
	return m, nil
}

// slogPromLogger passes promhttp's error messages to slog.
type slogPromLogger struct{ log *slog.Logger }

// Println implements promhttp.Logger.
func (l slogPromLogger) Println(v ...any) {
	l.log.Error("metrics scrape", "detail", strings.TrimSpace(fmt.Sprintln(v...)))
}
