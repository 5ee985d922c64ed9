package main

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/mail"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	// Embedded zoneinfo: the timezone check and the Monday schedule must not
	// depend on whether the host ships /usr/share/zoneinfo.
	_ "time/tzdata"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

	"github.com/casebot/casebot/intake"
	"github.com/casebot/casebot/triage"
)

// DefaultConfigPath is the file read when --config is not given; when it does
// not exist the built-in defaults apply.
const DefaultConfigPath = "casebot.yml"

// Config is the whole casebot.yml.
type Config struct {
	triage.Config   `yaml:",inline"`
	Ollama          OllamaConfig   `yaml:"ollama"`
	Slack           SlackConfig    `yaml:"slack"`
	HTTP            HTTPConfig     `yaml:"http"`
	Store           StoreConfig    `yaml:"store"`
	FollowUp        FollowUpConfig `yaml:"follow_up"`
	Acknowledgement AckConfig      `yaml:"acknowledgement"`
	Email           EmailConfig    `yaml:"email"`
}

// OllamaConfig tunes the model calls. The server address is not here: it
// comes from OLLAMA_HOST.
type OllamaConfig struct {
	Model string `yaml:"model"`
	// Timeout bounds one classification call; past it the keyword classifier
	// takes over (SPEC 3.4).
	Timeout time.Duration `yaml:"timeout"`
	// DraftTimeout bounds one brief-and-draft call, which writes far more text.
	DraftTimeout time.Duration `yaml:"draft_timeout"`
	// KeepAlive is how long Ollama keeps the model loaded after a call; a
	// negative value keeps it loaded indefinitely.
	KeepAlive time.Duration `yaml:"keep_alive"`
	NumCtx    int           `yaml:"num_ctx"`
	// Parallel sizes the worker pool; match it to OLLAMA_NUM_PARALLEL.
	Parallel int `yaml:"parallel"`
	Retries  int `yaml:"retries"`
}

// SlackConfig names the channels the bot reads from and posts to besides the
// routed ticket channels.
type SlackConfig struct {
	// IntakeChannels are channels whose top-level messages become tickets.
	IntakeChannels []string `yaml:"intake_channels"`
	// OpsChannel receives pattern alerts and the Monday pattern thread.
	OpsChannel string `yaml:"ops_channel"`
	// EscalationChannel is where Escalate mentions the chosen owner.
	EscalationChannel string `yaml:"escalation_channel"`
	// IgnoreBots are bot (B…) or app (A…) IDs whose posts in intake
	// channels are not tickets; every other app's post is one.
	IgnoreBots []string `yaml:"ignore_bots"`
}

// HTTPConfig configures the webhook intake and /metrics listener.
type HTTPConfig struct {
	Addr string `yaml:"addr"`
	// PublicURL is the address customers reach this server at, for the
	// one-click rating links of email and webhook follow-ups; empty sends
	// those follow-ups without links.
	PublicURL string `yaml:"public_url"`
	// ReplyURLAllow lists the internal hosts (names, addresses or CIDR
	// prefixes) a webhook's reply_url may target after all; casebot
	// otherwise refuses loopback, private and link-local addresses so a
	// webhook cannot make it POST into its own network.
	ReplyURLAllow []string `yaml:"reply_url_allow"`
}

// StoreConfig configures the bbolt store.
type StoreConfig struct {
	// RetentionDays deletes tickets older than this; 0 keeps them forever.
	RetentionDays int `yaml:"retention_days"`
}

// FollowUpConfig is the automatic check-in after resolution (SPEC 6).
type FollowUpConfig struct {
	After    time.Duration `yaml:"after"`
	Enabled  bool          `yaml:"enabled"`
	Template string        `yaml:"template"`
}

// AckConfig is the automatic acknowledgement sent when a ticket arrives. Its
// text is written by an operator, never by the model (SPEC 1, invariant 3).
type AckConfig struct {
	Enabled  bool   `yaml:"enabled"`
	Template string `yaml:"template"`
}

// EmailConfig is email intake by IMAP and replies by SMTP (SPEC 2). Each
// half is off until its server is set. The credentials are not here: they
// come from CASEBOT_IMAP_USERNAME, CASEBOT_IMAP_PASSWORD,
// CASEBOT_SMTP_USERNAME and CASEBOT_SMTP_PASSWORD.
type EmailConfig struct {
	// IMAPAddr is the IMAP server, host:port; empty turns email intake off.
	IMAPAddr string `yaml:"imap_addr"`
	// Mailbox is the folder read. It should be casebot's own: a message
	// someone reads there first is marked seen, and casebot skips it.
	Mailbox string `yaml:"mailbox"`
	// SMTPAddr is the submission server, host:port; empty turns email
	// replies off, and approved replies wait in the outbox until it is set.
	SMTPAddr string `yaml:"smtp_addr"`
	// From is the address replies come from, e.g.
	// "Shop Support <support@shop.example>"; required with SMTPAddr.
	From string `yaml:"from"`
	// TLS is EmailTLSImplicit or EmailTLSStartTLS, for both servers. There
	// is no clear-text mode: the password would cross the network.
	TLS string `yaml:"tls"`
	// PollInterval is how often the mailbox is searched; with IMAP IDLE it
	// only bounds the delay of a missed notification.
	PollInterval time.Duration `yaml:"poll_interval"`
}

// The values of EmailConfig.TLS.
const (
	// EmailTLSImplicit speaks TLS from the first byte (IMAPS 993, SMTPS 465).
	EmailTLSImplicit = "implicit"
	// EmailTLSStartTLS upgrades with STARTTLS before logging in (IMAP 143,
	// submission 587).
	EmailTLSStartTLS = "starttls"
)

// DefaultConfig returns the built-in configuration: triage's defaults (the
// demo's channels and owners) plus the adapter settings.
func DefaultConfig() Config {
	t := triage.DefaultConfig()
	// triage hands out its package-level taxonomy slice; copy it so no caller
	// can change the defaults of the next one.
	t.RootCauses = slices.Clone(t.RootCauses)
	return Config{
		Config: t,
		Ollama: OllamaConfig{
			Model:        "qwen2.5:3b-instruct",
			Timeout:      30 * time.Second,
			DraftTimeout: 120 * time.Second,
			KeepAlive:    10 * time.Minute,
			NumCtx:       4096,
			Parallel:     1,
			Retries:      1,
		},
		Slack: SlackConfig{
			IntakeChannels:    []string{"C0INTAKE"},
			OpsChannel:        "C0OPS",
			EscalationChannel: "C0ESCALATE",
		},
		HTTP: HTTPConfig{Addr: ":8080"},
		FollowUp: FollowUpConfig{
			After:   48 * time.Hour,
			Enabled: true,
			Template: "We recently resolved your request. How did we do? " +
				"Please rate your experience from 1 (poor) to 5 (excellent).",
		},
		Acknowledgement: AckConfig{
			Enabled: true,
			Template: "Thanks for getting in touch. We have received your message " +
				"and a member of our team will reply as soon as possible.",
		},
		Email: EmailConfig{Mailbox: "INBOX", TLS: EmailTLSImplicit, PollInterval: 60 * time.Second},
	}
}

// LoadConfig loads the file named by --config. An empty path, or the default
// path when that file does not exist, yields DefaultConfig(); any other
// missing file is an error, since the operator asked for it by name.
func LoadConfig(path string) (Config, error) {
	if path == "" {
		return DefaultConfig(), nil
	}
	return LoadConfigFile(path, path != DefaultConfigPath)
}

// LoadConfigFile reads and validates path. When mustExist is false a missing
// file yields DefaultConfig().
func LoadConfigFile(path string, mustExist bool) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if !mustExist && errors.Is(err, fs.ErrNotExist) {
			return DefaultConfig(), nil
		}
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	return ParseConfig(data, path)
}

// Problem is one thing wrong with a config file.
type Problem struct {
	// Path names the setting, e.g. "routes[1].channel"; empty for the file
	// as a whole.
	Path string
	// Line is 1-based; 0 when no line applies (a config built in code, or
	// the file as a whole).
	Line int
	Msg  string
}

// ConfigError lists every problem found in one config file, so an operator
// fixes them all in one pass instead of one per restart.
type ConfigError struct {
	File     string
	Problems []Problem
}

// Error lists the problems one per line as file:line: path: message.
func (e *ConfigError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.File)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d", p.Line)
		}
		b.WriteString(": ")
		if p.Path != "" {
			b.WriteString(p.Path)
			b.WriteString(": ")
		}
		b.WriteString(p.Msg)
	}
	return b.String()
}

// ParseConfig decodes a casebot.yml document over DefaultConfig() and
// validates the result. Every failure, syntax errors included, is a
// *ConfigError naming the file as name.
//
// Merge rules: a top-level section left out (or left empty) keeps its
// defaults; within a section, settings left out keep theirs; a list or map
// that is written replaces the default one entirely.
func ParseConfig(data []byte, name string) (Config, error) {
	cfg := DefaultConfig()
	// Duplicate keys are reported by the decoder, with the others, rather
	// than as a parse error that hides every later problem.
	file, err := parser.ParseBytes(data, 0, parser.AllowDuplicateMapKey())
	if err != nil {
		return Config{}, &ConfigError{File: name, Problems: []Problem{yamlSyntaxProblem(err)}}
	}
	d := &configDecoder{
		aliases: map[*ast.AliasNode]ast.Node{},
		lines:   map[string]int{},
		bad:     map[string]bool{},
		budget:  maxConfigNodeVisits,
	}
	var root ast.Node
	for _, doc := range file.Docs {
		if doc == nil || yamlIsEmptyBody(doc.Body) {
			continue
		}
		if root != nil {
			d.add("", yamlLine(doc.Body), "only one YAML document is allowed; remove the second ---")
			break
		}
		root = doc.Body
	}
	if root != nil {
		d.collectAnchors(root, map[string]ast.Node{}, 0)
		if r := d.resolve(root); !yamlIsNull(r) {
			d.config(r, &cfg)
		}
	}
	d.fitDefaultsToOwners(&cfg)
	// The domain announces agent escalations; it reads the channel from its
	// own config.
	cfg.Config.EscalationChannel = cfg.Slack.EscalationChannel
	v := &configValidator{lines: d.lines, bad: d.bad}
	v.config(cfg)
	problems := append(d.probs, v.probs...)
	if len(problems) > 0 {
		sortConfigProblems(problems)
		return Config{}, &ConfigError{File: name, Problems: problems}
	}
	return cfg, nil
}

// Validate checks a config built in code (tests, the demo) by the same rules
// as a loaded file; problems carry no line.
func (c Config) Validate() error {
	v := &configValidator{}
	v.config(c)
	if len(v.probs) == 0 {
		return nil
	}
	return &ConfigError{File: "config", Problems: v.probs}
}

// sortConfigProblems orders problems by line; those without a line go last.
// The sort is stable so one line's problems keep the order they were found in.
func sortConfigProblems(ps []Problem) {
	slices.SortStableFunc(ps, func(a, b Problem) int {
		if (a.Line == 0) != (b.Line == 0) {
			if a.Line == 0 {
				return 1
			}
			return -1
		}
		return cmp.Compare(a.Line, b.Line)
	})
}

func yamlSyntaxProblem(err error) Problem {
	var ye yaml.Error
	if errors.As(err, &ye) {
		line := 0
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			line = tk.Position.Line
		}
		return Problem{Line: line, Msg: "YAML syntax: " + ye.GetMessage()}
	}
	return Problem{Msg: "YAML syntax: " + err.Error()}
}

const (
	// maxConfigRouteDepth bounds nested child routes; real trees are two or three
	// levels deep.
	maxConfigRouteDepth = 8
	// maxConfigNodeVisits bounds decoding work so that aliases of aliases (a
	// "billion laughs" file) cannot make startup hang.
	maxConfigNodeVisits = 50_000
	// maxConfigAnchorDepth bounds recursion when collecting anchors.
	maxConfigAnchorDepth = 200
)

// configDecoder turns the YAML AST into a Config by hand rather than through
// yaml.Unmarshal, because that decoder stops at its first error while an
// operator needs every unknown key and type error at once, each with its line.
type configDecoder struct {
	// aliases maps each alias to the node of the anchor it refers to.
	aliases map[*ast.AliasNode]ast.Node
	// lines maps each setting's path to the line it was written on, so
	// validation can place problems found after decoding.
	lines map[string]int
	// bad marks paths that already have a decoding problem, so validation
	// does not report the same setting twice.
	bad    map[string]bool
	probs  []Problem
	budget int
}

// yamlSetter stores one resolved, non-null value found at path.
type yamlSetter func(v ast.Node, path string)

type yamlFields map[string]yamlSetter

type yamlEntry struct {
	key   string
	line  int
	value ast.Node
}

func (d *configDecoder) add(path string, line int, format string, args ...any) {
	d.probs = append(d.probs, Problem{Path: path, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// fail records a problem and marks path so validation skips it.
func (d *configDecoder) fail(path string, format string, args ...any) {
	d.bad[path] = true
	d.add(path, d.line(path), format, args...)
}

// line returns the line of path, or of its nearest ancestor written in the
// file.
func (d *configDecoder) line(path string) int { return pathLine(d.lines, path) }

// exhausted reports (once) that the visit budget is spent.
func (d *configDecoder) exhausted() bool {
	if d.budget > 0 {
		return false
	}
	if d.budget == 0 {
		d.budget--
		// What was decoded so far is partial; validating it would only add noise.
		d.bad[""] = true
		d.add("", 0, "the file is too large or expands too many aliases (more than %d values)", maxConfigNodeVisits)
	}
	return true
}

// collectAnchors records, in document order, which anchor each alias refers
// to. An anchor is registered only after its own value is walked, so an
// alias inside its own anchor is undefined rather than a cycle.
func (d *configDecoder) collectAnchors(n ast.Node, anchors map[string]ast.Node, depth int) {
	if n == nil || depth > maxConfigAnchorDepth {
		return
	}
	switch n := n.(type) {
	case *ast.AnchorNode:
		d.collectAnchors(n.Value, anchors, depth+1)
		if name := yamlTokenValue(n.Name); name != "" {
			anchors[name] = n.Value
		}
	case *ast.AliasNode:
		name := yamlTokenValue(n.Value)
		if target, ok := anchors[name]; ok {
			d.aliases[n] = target
		} else {
			d.add("", yamlLine(n), "alias *%s refers to no anchor defined before it", name)
		}
	case *ast.TagNode:
		d.collectAnchors(n.Value, anchors, depth+1)
	case *ast.MappingNode:
		for _, mv := range n.Values {
			d.collectAnchors(mv, anchors, depth+1)
		}
	case *ast.MappingValueNode:
		d.collectAnchors(n.Key, anchors, depth+1)
		d.collectAnchors(n.Value, anchors, depth+1)
	case *ast.SequenceNode:
		for _, item := range n.Values {
			d.collectAnchors(item, anchors, depth+1)
		}
	}
}

// resolve looks through anchors, tags and aliases to the value node; nil
// stands for no value.
func (d *configDecoder) resolve(n ast.Node) ast.Node {
	for range 64 {
		d.budget--
		switch v := n.(type) {
		case *ast.AnchorNode:
			n = v.Value
		case *ast.TagNode:
			n = v.Value
		case *ast.AliasNode:
			n = d.aliases[v]
		default:
			return n
		}
	}
	return nil
}

// entries lists a mapping's keys with merge keys (<<) expanded: keys written
// in the mapping win over merged ones, and earlier merge sources win over
// later ones, as in YAML 1.1.
func (d *configDecoder) entries(m *ast.MappingNode, path string) []yamlEntry {
	var own, merged []yamlEntry
	for _, mv := range m.Values {
		if mv == nil || mv.Key == nil {
			continue
		}
		line := yamlLine(mv.Key)
		if mv.Key.IsMergeKey() {
			merged = append(merged, d.mergeSources(mv.Value, path, line)...)
			continue
		}
		key, ok := yamlScalarText(d.resolve(mv.Key))
		if !ok {
			d.add(path, line, "keys must be plain text")
			continue
		}
		own = append(own, yamlEntry{key: key, line: line, value: mv.Value})
	}
	seen := make(map[string]int, len(own)+len(merged))
	out := make([]yamlEntry, 0, len(own)+len(merged))
	for _, e := range own {
		if first, dup := seen[e.key]; dup {
			d.add(pathJoin(path, e.key), e.line, "%q is set twice (first on line %d)", e.key, first)
			continue
		}
		seen[e.key] = e.line
		out = append(out, e)
	}
	for _, e := range merged {
		if _, dup := seen[e.key]; !dup {
			seen[e.key] = e.line
			out = append(out, e)
		}
	}
	return out
}

func (d *configDecoder) mergeSources(v ast.Node, path string, line int) []yamlEntry {
	if d.exhausted() {
		return nil
	}
	switch r := d.resolve(v).(type) {
	case *ast.MappingNode:
		return d.entries(r, path)
	case *ast.SequenceNode:
		var out []yamlEntry
		for _, item := range r.Values {
			if m, ok := d.resolve(item).(*ast.MappingNode); ok {
				out = append(out, d.entries(m, path)...)
			} else {
				d.add(path, line, "<< must merge a mapping or a list of mappings")
			}
		}
		return out
	}
	d.add(path, line, "<< must merge a mapping or a list of mappings")
	return nil
}

// eachEntry calls fn for every key of the mapping n with its resolved value,
// after rejecting keys that look like secrets.
func (d *configDecoder) eachEntry(n ast.Node, path string, fn func(key string, v ast.Node, path string)) {
	m, ok := n.(*ast.MappingNode)
	if !ok {
		d.typeError(path, n, "a mapping of settings")
		return
	}
	for _, e := range d.entries(m, path) {
		if d.exhausted() {
			return
		}
		p := pathJoin(path, e.key)
		d.lines[p] = e.line
		if isSecretConfigKey(e.key) {
			d.fail(p, "unknown key %q: secrets are never read from the config file; %s", e.key, secretsEnvHint(p))
			continue
		}
		fn(e.key, d.resolve(e.value), p)
	}
}

// object decodes a mapping with a fixed set of keys. A null value leaves the
// setting at its default.
func (d *configDecoder) object(n ast.Node, path string, fields yamlFields) {
	d.eachEntry(n, path, func(key string, v ast.Node, p string) {
		set, ok := fields[key]
		switch {
		case !ok:
			d.fail(p, "unknown key %q%s", key, unknownConfigKeyHint(p, key, slices.Sorted(maps.Keys(fields))))
		case !yamlIsNull(v):
			set(v, p)
		}
	})
}

func (d *configDecoder) section(fields yamlFields) yamlSetter {
	return func(v ast.Node, p string) { d.object(v, p, fields) }
}

func (d *configDecoder) config(root ast.Node, c *Config) {
	t := &c.Config
	d.object(root, "", yamlFields{
		"timezone":  d.str(&t.Timezone),
		"languages": d.strList(&t.Languages),
		"thresholds": d.section(yamlFields{
			"refund_approval":  d.number(&t.Thresholds.RefundApproval),
			"financial_high":   d.number(&t.Thresholds.FinancialHigh),
			"financial_medium": d.number(&t.Thresholds.FinancialMed),
			"currency":         d.str(&t.Thresholds.Currency),
			"repeat_days":      d.integer(&t.Thresholds.RepeatDays),
		}),
		"owners":    d.owners(&t.Owners),
		"approvers": d.strList(&t.Approvers),
		"vip": d.section(yamlFields{
			"emails":         d.strList(&t.VIP.Emails),
			"domains":        d.strList(&t.VIP.Domains),
			"tags":           d.strList(&t.VIP.Tags),
			"lifetime_spend": d.number(&t.VIP.LifetimeSpend),
		}),
		"root_causes": d.strList(&t.RootCauses),
		"triggers":    d.triggers(&t.Triggers),
		"routes":      d.routes(&t.Routes, 1),
		"ollama": d.section(yamlFields{
			"model":         d.str(&c.Ollama.Model),
			"timeout":       d.duration(&c.Ollama.Timeout),
			"draft_timeout": d.duration(&c.Ollama.DraftTimeout),
			"keep_alive":    d.duration(&c.Ollama.KeepAlive),
			"num_ctx":       d.integer(&c.Ollama.NumCtx),
			"parallel":      d.integer(&c.Ollama.Parallel),
			"retries":       d.integer(&c.Ollama.Retries),
		}),
		"slack": d.section(yamlFields{
			"intake_channels":    d.strList(&c.Slack.IntakeChannels),
			"ops_channel":        d.str(&c.Slack.OpsChannel),
			"escalation_channel": d.str(&c.Slack.EscalationChannel),
			"ignore_bots":        d.strList(&c.Slack.IgnoreBots),
		}),
		"http": d.section(yamlFields{
			"addr":            d.str(&c.HTTP.Addr),
			"public_url":      d.str(&c.HTTP.PublicURL),
			"reply_url_allow": d.strList(&c.HTTP.ReplyURLAllow),
		}),
		"store": d.section(yamlFields{
			"retention_days": d.integer(&c.Store.RetentionDays),
		}),
		"follow_up": d.section(yamlFields{
			"after":    d.duration(&c.FollowUp.After),
			"enabled":  d.boolean(&c.FollowUp.Enabled),
			"template": d.str(&c.FollowUp.Template),
		}),
		"acknowledgement": d.section(yamlFields{
			"enabled":  d.boolean(&c.Acknowledgement.Enabled),
			"template": d.str(&c.Acknowledgement.Template),
		}),
		"email": d.section(yamlFields{
			"imap_addr":     d.str(&c.Email.IMAPAddr),
			"mailbox":       d.str(&c.Email.Mailbox),
			"smtp_addr":     d.str(&c.Email.SMTPAddr),
			"from":          d.str(&c.Email.From),
			"tls":           d.str(&c.Email.TLS),
			"poll_interval": d.duration(&c.Email.PollInterval),
		}),
	})
}

func (d *configDecoder) owners(dst *map[string][]string) yamlSetter {
	return func(v ast.Node, p string) {
		out := map[string][]string{}
		d.eachEntry(v, p, func(key string, v ast.Node, kp string) {
			var ids []string
			if !yamlIsNull(v) {
				d.strList(&ids)(v, kp)
			}
			out[key] = ids
		})
		*dst = out
	}
}

func (d *configDecoder) triggers(dst *triage.TriggerConf) yamlSetter {
	return func(v ast.Node, p string) {
		out := triage.TriggerConf{}
		d.eachEntry(v, p, func(key string, v ast.Node, kp string) {
			var a triage.TriggerAction
			if !yamlIsNull(v) {
				d.object(v, kp, yamlFields{
					"owner":    d.str(&a.Owner),
					"escalate": d.boolean(&a.Escalate),
				})
			}
			out[key] = a
		})
		*dst = out
	}
}

func (d *configDecoder) routes(dst *[]triage.RouteConf, depth int) yamlSetter {
	return func(v ast.Node, p string) {
		seq, ok := v.(*ast.SequenceNode)
		if !ok {
			d.typeError(p, v, "a list of routes")
			return
		}
		if depth > maxConfigRouteDepth {
			d.fail(p, "routes are nested more than %d levels deep", maxConfigRouteDepth)
			return
		}
		out := make([]triage.RouteConf, len(seq.Values))
		for i, item := range seq.Values {
			if d.exhausted() {
				return
			}
			ip := pathIndex(p, i)
			d.lines[ip] = yamlLine(item)
			item = d.resolve(item)
			if yamlIsNull(item) {
				continue
			}
			r := &out[i]
			d.object(item, ip, yamlFields{
				"match":    d.section(configMatchFields(d, &r.Match)),
				"channel":  d.str(&r.Channel),
				"mention":  d.strList(&r.Mention),
				"escalate": d.boolean(&r.Escalate),
				"routes":   d.routes(&r.Routes, depth+1),
			})
		}
		*dst = out
	}
}

func configMatchFields(d *configDecoder, m *triage.Match) yamlFields {
	return yamlFields{
		"flags":          configEnumList(d, &m.Flags),
		"types":          configEnumList(d, &m.Types),
		"urgency":        configEnumList(d, &m.Urgency),
		"financial_risk": configEnumList(d, &m.FinancialRisk),
		"sentiment":      configEnumList(d, &m.Sentiment),
		"sources":        configEnumList(d, &m.Sources),
	}
}

// configEnumList decodes a list of enum values; the values themselves are
// checked by the validator.
func configEnumList[T ~string](d *configDecoder, dst *[]T) yamlSetter {
	return func(v ast.Node, p string) {
		var ss []string
		d.strList(&ss)(v, p)
		out := make([]T, len(ss))
		for i, s := range ss {
			out[i] = T(s)
		}
		*dst = out
	}
}

func (d *configDecoder) str(dst *string) yamlSetter {
	return func(v ast.Node, p string) {
		s, ok := yamlScalarText(v)
		if !ok {
			d.typeError(p, v, "text")
			return
		}
		*dst = s
	}
}

// strList decodes a list of text values. A single value stands for a
// one-item list, as in the spec's `match: {urgency: high}`.
func (d *configDecoder) strList(dst *[]string) yamlSetter {
	return func(v ast.Node, p string) {
		seq, ok := v.(*ast.SequenceNode)
		if !ok {
			s, ok := yamlScalarText(v)
			if !ok {
				d.typeError(p, v, "a list of text values")
				return
			}
			d.lines[pathIndex(p, 0)] = d.line(p)
			*dst = []string{s}
			return
		}
		out := make([]string, len(seq.Values))
		for i, item := range seq.Values {
			ip := pathIndex(p, i)
			d.lines[ip] = yamlLine(item)
			item = d.resolve(item)
			s, ok := yamlScalarText(item)
			if !ok {
				// Keep the failed item's slot so later indexes still match
				// their lines.
				d.typeError(ip, item, "text")
				continue
			}
			out[i] = s
		}
		*dst = out
	}
}

func (d *configDecoder) number(dst *float64) yamlSetter {
	return func(v ast.Node, p string) {
		switch n := v.(type) {
		case *ast.IntegerNode:
			*dst = yamlIntFloat(n)
		case *ast.FloatNode:
			*dst = n.Value
		case *ast.InfinityNode, *ast.NanNode:
			d.fail(p, "must be a finite number")
		default:
			d.typeError(p, v, "a number")
		}
	}
}

func (d *configDecoder) integer(dst *int) yamlSetter {
	return func(v ast.Node, p string) {
		n, ok := v.(*ast.IntegerNode)
		if !ok {
			d.typeError(p, v, "a whole number")
			return
		}
		f := yamlIntFloat(n)
		if math.Abs(f) > math.MaxInt32 {
			d.fail(p, "%s is out of range", yamlTokenValue(n))
			return
		}
		*dst = int(f)
	}
}

func (d *configDecoder) boolean(dst *bool) yamlSetter {
	return func(v ast.Node, p string) {
		b, ok := v.(*ast.BoolNode)
		if !ok {
			d.typeError(p, v, "true or false")
			return
		}
		*dst = b.Value
	}
}

func (d *configDecoder) duration(dst *time.Duration) yamlSetter {
	return func(v ast.Node, p string) {
		switch n := v.(type) {
		case *ast.StringNode:
			dur, err := time.ParseDuration(n.Value)
			if err != nil {
				d.fail(p, "invalid duration %s: write a number with a unit, e.g. \"30s\", \"10m\" or \"48h\"", quoteConfigValue(n.Value))
				return
			}
			*dst = dur
		case *ast.IntegerNode, *ast.FloatNode:
			d.fail(p, "invalid duration %s: a bare number has no unit; write e.g. \"30s\", \"10m\" or \"48h\"", yamlTokenValue(n))
		default:
			d.typeError(p, v, "a duration such as \"30s\"")
		}
	}
}

func (d *configDecoder) typeError(path string, v ast.Node, want string) {
	line := d.line(path)
	if line == 0 {
		line = yamlLine(v)
	}
	d.bad[path] = true
	d.add(path, line, "expected %s, got %s", want, yamlDescribe(v))
}

// fitDefaultsToOwners drops, from built-in triggers and routes the file left
// out, mentions of owner keys that the file's owners section does not
// define. Without this a file that names only its own owners (like the
// spec's example) would fail on the demo's owner keys it never wrote.
func (d *configDecoder) fitDefaultsToOwners(c *Config) {
	if _, ok := d.lines["owners"]; !ok {
		return
	}
	if _, ok := d.lines["triggers"]; !ok {
		for rule, a := range c.Triggers {
			if _, defined := c.Owners[a.Owner]; !defined {
				a.Owner = ""
				c.Triggers[rule] = a
			}
		}
	}
	if _, ok := d.lines["routes"]; !ok {
		for i := range c.Routes {
			c.Routes[i].Mention = slices.DeleteFunc(slices.Clone(c.Routes[i].Mention), func(k string) bool {
				_, defined := c.Owners[k]
				return !defined
			})
		}
	}
}

// configValidator checks the meaning of a decoded config. It runs over the
// merged result, so built-in defaults are checked against the file's values
// too; a problem in a setting the file left out is placed on the line of its
// nearest enclosing setting, or on no line.
type configValidator struct {
	lines map[string]int
	bad   map[string]bool
	probs []Problem
}

var (
	// slackOwnerIDRe matches Slack user (U…, W… on Enterprise Grid) and user-group
	// (S…) IDs.
	slackOwnerIDRe = regexp.MustCompile(`^[UWS][A-Z0-9]{2,}$`)
	// slackUserIDRe matches user IDs only: approval authority is checked
	// against the user who clicks.
	slackUserIDRe      = regexp.MustCompile(`^[UW][A-Z0-9]{2,}$`)
	slackBotIDRe       = regexp.MustCompile(`^[AB][A-Z0-9]{2,}$`) // bot (B…) and app (A…) IDs, for slack.ignore_bots
	currencyCodeRe     = regexp.MustCompile(`^[A-Z]{3}$`)
	rootCauseKeyRe     = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	supportedLanguages = []string{"en", "es", "fr", "de"}
	configTriggerRules = []string{"legal", "safety", "reputation", "vip", "repeat", "refund"}
	configRouteSources = []triage.Source{triage.SourceSlack, triage.SourceEmail, triage.SourceWebhook, triage.SourceManual, triage.SourceImport}
	secretKeyWords     = []string{"token", "secret", "password", "passwd", "api_key", "apikey", "credential", "private_key"}
)

// add records a problem unless decoding already reported one for path or an
// enclosing setting.
func (v *configValidator) add(path, format string, args ...any) {
	for p := path; ; p = pathParent(p) {
		if v.bad[p] {
			return
		}
		if p == "" {
			break
		}
	}
	v.probs = append(v.probs, Problem{Path: path, Line: pathLine(v.lines, path), Msg: fmt.Sprintf(format, args...)})
}

// badWithin reports whether decoding failed anywhere inside path, e.g. an
// unknown key in a match, which leaves the match looking empty.
func (v *configValidator) badWithin(path string) bool {
	for p := range v.bad {
		if p == path || strings.HasPrefix(p, path+".") || strings.HasPrefix(p, path+"[") {
			return true
		}
	}
	return false
}

func (v *configValidator) config(c Config) {
	v.timezone(c.Timezone)
	v.languages(c.Languages)
	v.thresholds(c.Thresholds)
	v.owners(c.Owners)
	v.approvers(c.Approvers)
	v.vip(c.VIP)
	v.rootCauses(c.RootCauses)
	v.triggers(c.Triggers, c.Owners)
	if len(c.Routes) == 0 {
		v.add("routes", "no routes: at least one route is needed, and the last one must match everything")
	}
	v.routes(c.Routes, "routes", true, c.Owners)
	v.ollama(c.Ollama)
	v.slack(c.Slack, c.Routes)
	v.http(c.HTTP)
	if c.Store.RetentionDays < 0 {
		v.add("store.retention_days", "must not be negative (0 keeps tickets forever)")
	}
	v.followUp(c.FollowUp)
	v.email(c.Email)
	if c.Acknowledgement.Enabled && strings.TrimSpace(c.Acknowledgement.Template) == "" {
		v.add("acknowledgement.template", "is empty while the acknowledgement is enabled")
	}
}

func (v *configValidator) timezone(tz string) {
	if strings.TrimSpace(tz) == "" {
		v.add("timezone", `is empty; use an IANA time zone such as "America/New_York" or "UTC"`)
		return
	}
	if _, err := time.LoadLocation(tz); err != nil {
		v.add("timezone", `unknown time zone %s; use an IANA name such as "America/New_York" or "UTC"`, quoteConfigValue(tz))
	}
}

func (v *configValidator) languages(ls []string) {
	if len(ls) == 0 {
		v.add("languages", "at least one language is needed (en, es, fr, de)")
	}
	for i, l := range ls {
		p := pathIndex("languages", i)
		switch {
		case !slices.Contains(supportedLanguages, l):
			v.add(p, "unsupported language %s: the keyword rules cover en, es, fr and de", quoteConfigValue(l))
		case slices.Index(ls, l) < i:
			v.add(p, "language %q is listed twice", l)
		}
	}
}

func (v *configValidator) thresholds(t triage.Thresholds) {
	for _, f := range []struct {
		key string
		val float64
	}{{"refund_approval", t.RefundApproval}, {"financial_high", t.FinancialHigh}, {"financial_medium", t.FinancialMed}} {
		if f.val < 0 || math.IsNaN(f.val) || math.IsInf(f.val, 0) {
			v.add("thresholds."+f.key, "must be a number of at least 0, got %v", f.val)
		}
	}
	if t.FinancialMed >= 0 && t.FinancialHigh >= 0 && t.FinancialMed > t.FinancialHigh {
		v.add("thresholds.financial_medium", "%v is above financial_high %v", t.FinancialMed, t.FinancialHigh)
	}
	if !currencyCodeRe.MatchString(t.Currency) {
		v.add("thresholds.currency", "%s is not a three-letter ISO 4217 code such as USD or EUR", quoteConfigValue(t.Currency))
	}
	if t.RepeatDays < 1 {
		v.add("thresholds.repeat_days", "must be at least 1 day, got %d", t.RepeatDays)
	}
}

func (v *configValidator) owners(owners map[string][]string) {
	for _, key := range slices.Sorted(maps.Keys(owners)) {
		p := pathJoin("owners", key)
		ids := owners[key]
		if strings.TrimSpace(key) == "" {
			v.add(p, "owner key is empty")
		}
		if len(ids) == 0 {
			v.add(p, "owner %q lists no Slack IDs", key)
		}
		for i, id := range ids {
			if !slackOwnerIDRe.MatchString(id) {
				v.add(pathIndex(p, i), "%s is not a Slack user or user-group ID (U…, W… or S…, e.g. U024BE7LH)", quoteConfigValue(id))
			}
		}
	}
}

func (v *configValidator) approvers(ids []string) {
	if len(ids) == 0 {
		v.add("approvers", "no approvers: tickets that need approval (refund above the threshold, legal, safety) could never be approved")
	}
	for i, id := range ids {
		if !slackUserIDRe.MatchString(id) {
			v.add(pathIndex("approvers", i), "%s is not a Slack user ID (U… or W…); approval is checked against the user who clicks, so user groups do not work here", quoteConfigValue(id))
		}
	}
}

func (v *configValidator) vip(c triage.VIPConfig) {
	for i, e := range c.Emails {
		local, domain, ok := strings.Cut(e, "@")
		if !ok || local == "" || domain == "" || strings.ContainsAny(e, " \t") || strings.Contains(domain, "@") {
			v.add(pathIndex("vip.emails", i), "%s is not an email address", quoteConfigValue(e))
		}
	}
	for i, dom := range c.Domains {
		if !strings.Contains(dom, ".") || strings.ContainsAny(dom, "@ \t") {
			v.add(pathIndex("vip.domains", i), "%s is not a domain name such as example.com", quoteConfigValue(dom))
		}
	}
	for i, tag := range c.Tags {
		if strings.TrimSpace(tag) == "" {
			v.add(pathIndex("vip.tags", i), "tag is empty")
		}
	}
	if c.LifetimeSpend < 0 || math.IsNaN(c.LifetimeSpend) {
		v.add("vip.lifetime_spend", "must not be negative (0 turns the spend rule off)")
	}
}

func (v *configValidator) rootCauses(rcs []string) {
	if len(rcs) == 0 {
		v.add("root_causes", "at least one root cause is needed for the Resolve form")
	}
	for i, rc := range rcs {
		p := pathIndex("root_causes", i)
		if first := slices.Index(rcs, rc); first < i {
			v.add(p, "root cause %q is listed twice (first as root_causes[%d])", rc, first)
			continue
		}
		if !rootCauseKeyRe.MatchString(rc) {
			v.add(p, "root cause %s must be a lower_snake_case key such as carrier_delay", quoteConfigValue(rc))
		}
	}
}

func (v *configValidator) triggers(tc triage.TriggerConf, owners map[string][]string) {
	for _, rule := range slices.Sorted(maps.Keys(tc)) {
		p := pathJoin("triggers", rule)
		if !slices.Contains(configTriggerRules, rule) {
			v.add(p, "unknown trigger rule %s (rules: %s)", quoteConfigValue(rule), strings.Join(configTriggerRules, ", "))
			continue
		}
		if o := tc[rule].Owner; o != "" {
			v.ownerRef(p+".owner", o, owners)
		}
	}
}

func (v *configValidator) ownerRef(path, key string, owners map[string][]string) {
	if _, ok := owners[key]; !ok {
		v.add(path, "owner %s is not defined in owners (defined: %s)", quoteConfigValue(key), strings.Join(slices.Sorted(maps.Keys(owners)), ", "))
	}
}

func (v *configValidator) routes(rs []triage.RouteConf, path string, top bool, owners map[string][]string) {
	for i, r := range rs {
		p := pathIndex(path, i)
		switch {
		case strings.TrimSpace(r.Channel) == "":
			v.add(p+".channel", "route has no channel")
		case strings.ContainsAny(r.Channel, " \t\n"):
			v.add(p+".channel", "channel %s contains spaces; use the channel ID, e.g. C024BE91L", quoteConfigValue(r.Channel))
		}
		for j, m := range r.Mention {
			v.ownerRef(pathIndex(p+".mention", j), m, owners)
		}
		v.match(r.Match, p+".match")
		if matchesEveryTicket(r.Match) && i < len(rs)-1 && !v.badWithin(p+".match") {
			v.add(p+".match", "this route matches every ticket, so the %d route(s) after it are never used", len(rs)-1-i)
		}
		v.routes(r.Routes, p+".routes", false, owners)
	}
	if top && len(rs) > 0 && !matchesEveryTicket(rs[len(rs)-1].Match) {
		v.add(pathIndex(path, len(rs)-1)+".match", "the last route must match everything so no ticket is unrouted: remove its match")
	}
}

func (v *configValidator) match(m triage.Match, path string) {
	configEnumCheck(v, path+".flags", "flag", m.Flags, triage.Flags)
	configEnumCheck(v, path+".types", "type", m.Types, triage.Types)
	configEnumCheck(v, path+".urgency", "urgency", m.Urgency, triage.Levels)
	configEnumCheck(v, path+".financial_risk", "financial_risk level", m.FinancialRisk, triage.Levels)
	configEnumCheck(v, path+".sentiment", "sentiment", m.Sentiment, triage.Sentiments)
	configEnumCheck(v, path+".sources", "source", m.Sources, configRouteSources)
}

func configEnumCheck[T ~string](v *configValidator, path, what string, got, allowed []T) {
	for i, g := range got {
		if !slices.Contains(allowed, g) {
			names := make([]string, len(allowed))
			for j, a := range allowed {
				names[j] = string(a)
			}
			v.add(pathIndex(path, i), "unknown %s %s (one of: %s)", what, quoteConfigValue(string(g)), strings.Join(names, ", "))
		}
	}
}

func matchesEveryTicket(m triage.Match) bool {
	return len(m.Flags) == 0 && len(m.Types) == 0 && len(m.Urgency) == 0 &&
		len(m.FinancialRisk) == 0 && len(m.Sentiment) == 0 && len(m.Sources) == 0
}

func (v *configValidator) ollama(o OllamaConfig) {
	if strings.TrimSpace(o.Model) == "" {
		v.add("ollama.model", "model is empty")
	}
	if o.Timeout <= 0 {
		v.add("ollama.timeout", "must be positive, e.g. 30s")
	}
	if o.DraftTimeout <= 0 {
		v.add("ollama.draft_timeout", "must be positive, e.g. 120s")
	}
	if o.NumCtx < 1 {
		v.add("ollama.num_ctx", "must be at least 1, got %d", o.NumCtx)
	}
	if o.Parallel < 1 {
		v.add("ollama.parallel", "must be at least 1, got %d", o.Parallel)
	}
	if o.Retries < 0 {
		v.add("ollama.retries", "must not be negative, got %d", o.Retries)
	}
}

func (v *configValidator) slack(s SlackConfig, routes []triage.RouteConf) {
	// casebot posts cards and threads in every channel it posts to; one that
	// is also an intake channel would turn an agent's thread reply under a
	// card into a ticket with the agent as customer.
	posted := []struct{ path, channel string }{
		{"slack.ops_channel", s.OpsChannel},
		{"slack.escalation_channel", s.EscalationChannel},
	}
	var walk func(rs []triage.RouteConf, path string)
	walk = func(rs []triage.RouteConf, path string) {
		for i, r := range rs {
			p := pathIndex(path, i)
			posted = append(posted, struct{ path, channel string }{p + ".channel", r.Channel})
			walk(r.Routes, p+".routes")
		}
	}
	walk(routes, "routes")
	for i, ch := range s.IntakeChannels {
		p := pathIndex("slack.intake_channels", i)
		switch {
		case strings.TrimSpace(ch) == "" || strings.ContainsAny(ch, " \t\n"):
			v.add(p, "%s is not a channel ID, e.g. C024BE91L", quoteConfigValue(ch))
			continue
		case slices.Index(s.IntakeChannels, ch) < i:
			v.add(p, "channel %q is listed twice", ch)
			continue
		}
		for _, o := range posted {
			if o.channel == ch {
				v.add(p, "%s is also %s: casebot posts there, so replies under its posts would become tickets; "+
					"give intake a channel of its own", ch, o.path)
			}
		}
	}
	for i, id := range s.IgnoreBots {
		p := pathIndex("slack.ignore_bots", i)
		switch {
		case !slackBotIDRe.MatchString(id):
			v.add(p, "%s is not a bot or app ID (B… or A…, e.g. B024BE7LH)", quoteConfigValue(id))
		case slices.Index(s.IgnoreBots, id) < i:
			v.add(p, "%q is listed twice", id)
		}
	}
	if strings.TrimSpace(s.OpsChannel) == "" {
		v.add("slack.ops_channel", "is empty; pattern alerts and the Monday thread are posted there")
	}
	if strings.TrimSpace(s.EscalationChannel) == "" {
		v.add("slack.escalation_channel", "is empty; Escalate mentions owners there")
	}
}

func (v *configValidator) http(h HTTPConfig) {
	_, port, err := net.SplitHostPort(h.Addr)
	if err == nil {
		var n int
		n, err = strconv.Atoi(port)
		if err == nil && (n < 0 || n > 65535) {
			err = errors.New("port out of range")
		}
	}
	if err != nil {
		v.add("http.addr", `%s is not host:port, e.g. ":8080" or "127.0.0.1:8080"`, quoteConfigValue(h.Addr))
	}
	if h.PublicURL != "" {
		u, err := url.Parse(h.PublicURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
			v.add("http.public_url", `%s is not an http(s) URL, e.g. "https://support.shop.example"`, quoteConfigValue(h.PublicURL))
		}
	}
	for i, e := range h.ReplyURLAllow {
		if _, err := intake.ParseReplyURLAllow([]string{e}); err != nil {
			v.add(pathIndex("http.reply_url_allow", i), "%v", err)
		}
	}
}

func (v *configValidator) followUp(f FollowUpConfig) {
	if f.After <= 0 {
		v.add("follow_up.after", "must be positive, e.g. 48h")
	}
	if f.Enabled && strings.TrimSpace(f.Template) == "" {
		v.add("follow_up.template", "is empty while follow-ups are enabled")
	}
}

func (v *configValidator) email(e EmailConfig) {
	if e.IMAPAddr != "" {
		if err := mailServerAddr(e.IMAPAddr); err != nil {
			v.add("email.imap_addr", `%s %v, e.g. "imap.example.com:993"; leave it empty to turn email intake off`, quoteConfigValue(e.IMAPAddr), err)
		}
		if strings.TrimSpace(e.Mailbox) == "" {
			v.add("email.mailbox", `is empty; name the folder casebot reads, e.g. "INBOX"`)
		}
	}
	if e.SMTPAddr != "" {
		if err := mailServerAddr(e.SMTPAddr); err != nil {
			v.add("email.smtp_addr", `%s %v, e.g. "smtp.example.com:465"; leave it empty to turn email replies off`, quoteConfigValue(e.SMTPAddr), err)
		}
	}
	switch {
	case e.From != "":
		// The mailer refuses control characters too: they could end the
		// From header and start another.
		if _, err := mail.ParseAddress(e.From); err != nil || strings.ContainsFunc(e.From, unicode.IsControl) {
			v.add("email.from", `%s is not an email address such as "Shop Support <support@shop.example>"`, quoteConfigValue(e.From))
		}
	case e.SMTPAddr != "":
		v.add("email.from", `is required when smtp_addr is set: the address replies come from, e.g. "Shop Support <support@shop.example>"`)
	}
	if e.TLS != EmailTLSImplicit && e.TLS != EmailTLSStartTLS {
		v.add("email.tls", "unknown TLS mode %s (one of: %s, %s)", quoteConfigValue(e.TLS), EmailTLSImplicit, EmailTLSStartTLS)
	}
	if e.PollInterval <= 0 {
		v.add("email.poll_interval", "must be positive, e.g. 60s")
	}
}

// mailServerAddr checks a mail server address: unlike http.addr, which
// listens, it dials, so it needs a host as well as a port.
func mailServerAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || port == "" {
		return errors.New("is not host:port")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return errors.New("has no valid port (1-65535)")
	}
	return nil
}

// secretsEnvHint says where the secrets belonging to the setting at path
// come from.
func secretsEnvHint(path string) string {
	if path == "email" || strings.HasPrefix(path, "email.") {
		return fmt.Sprintf("set %s, %s, %s and %s in the environment",
			EnvIMAPUsername, EnvIMAPPassword, EnvSMTPUsername, EnvSMTPPassword)
	}
	return fmt.Sprintf("set %s, %s, %s and %s in the environment",
		EnvSlackBotToken, EnvSlackAppToken, EnvOllamaHost, EnvWebhookSecret)
}

// unknownConfigKeyHint suggests the intended key for a typo, points the Ollama
// address to the environment, or lists the keys allowed at that level.
func unknownConfigKeyHint(path, key string, allowed []string) string {
	if path == "ollama.host" || path == "ollama.url" || path == "ollama.address" {
		return fmt.Sprintf(": the Ollama address comes from the %s environment variable", EnvOllamaHost)
	}
	if strings.HasPrefix(path, "email.") && (strings.Contains(strings.ToLower(key), "user") || strings.Contains(strings.ToLower(key), "login")) {
		return ": mail credentials come from the environment; " + secretsEnvHint(path)
	}
	best, bestDist := "", 3
	for _, a := range allowed {
		if dist := configKeyDistance(strings.ToLower(key), a); dist < bestDist && dist < len(key) {
			best, bestDist = a, dist
		}
	}
	if best != "" {
		return fmt.Sprintf("; did you mean %q?", best)
	}
	return "; known keys: " + strings.Join(allowed, ", ")
}

func isSecretConfigKey(key string) bool {
	k := strings.ToLower(key)
	return slices.ContainsFunc(secretKeyWords, func(w string) bool { return strings.Contains(k, w) })
}

// configKeyDistance is the Levenshtein distance between two short keys.
func configKeyDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func pathLine(lines map[string]int, path string) int {
	for p := path; ; p = pathParent(p) {
		if l, ok := lines[p]; ok {
			return l
		}
		if p == "" {
			return 0
		}
	}
}

// pathParent strips the last ".key" or "[i]" from a path.
func pathParent(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

func pathJoin(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func pathIndex(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

func yamlLine(n ast.Node) int {
	if n == nil {
		return 0
	}
	tk := n.GetToken()
	if tk == nil || tk.Position == nil {
		return 0
	}
	return tk.Position.Line
}

func yamlTokenValue(n ast.Node) string {
	if n == nil {
		return ""
	}
	if tk := n.GetToken(); tk != nil {
		return tk.Value
	}
	return ""
}

func yamlIsNull(n ast.Node) bool {
	if n == nil {
		return true
	}
	_, ok := n.(*ast.NullNode)
	return ok
}

// yamlIsEmptyBody reports a document with nothing but comments.
func yamlIsEmptyBody(n ast.Node) bool {
	if n == nil {
		return true
	}
	_, ok := n.(*ast.CommentGroupNode)
	return ok
}

// yamlScalarText returns a scalar's text; numbers and booleans count as text, so
// `currency: 840` or `channel: 123` read as written.
func yamlScalarText(n ast.Node) (string, bool) {
	switch v := n.(type) {
	case *ast.StringNode:
		return v.Value, true
	case *ast.LiteralNode:
		if v.Value == nil {
			return "", true
		}
		return v.Value.Value, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		return yamlTokenValue(v), true
	}
	return "", false
}

func yamlIntFloat(n *ast.IntegerNode) float64 {
	switch x := n.Value.(type) {
	case int64:
		return float64(x)
	case uint64:
		return float64(x)
	}
	return 0
}

// yamlDescribe names what a value is for a type error; text is shortened so a
// value pasted in the wrong place does not end up whole in a log.
func yamlDescribe(n ast.Node) string {
	switch v := n.(type) {
	case nil, *ast.NullNode:
		return "nothing"
	case *ast.SequenceNode:
		return "a list"
	case *ast.MappingNode:
		return "a mapping"
	case *ast.StringNode:
		return "the text " + quoteConfigValue(v.Value)
	case *ast.LiteralNode:
		return "a block of text"
	case *ast.IntegerNode, *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		return "the number " + yamlTokenValue(v)
	case *ast.BoolNode:
		return yamlTokenValue(v)
	}
	return n.Type().String()
}

func quoteConfigValue(s string) string {
	const limit = 40
	if r := []rune(s); len(r) > limit {
		s = string(r[:limit]) + "…"
	}
	return strconv.Quote(s)
}

// The environment variables secrets are read from.
const (
	EnvSlackBotToken = "SLACK_BOT_TOKEN"
	EnvSlackAppToken = "SLACK_APP_TOKEN"
	EnvOllamaHost    = "OLLAMA_HOST"
	EnvWebhookSecret = "CASEBOT_WEBHOOK_SECRET"
	EnvRatingSecret  = "CASEBOT_RATING_SECRET"
	EnvIMAPUsername  = "CASEBOT_IMAP_USERNAME"
	EnvIMAPPassword  = "CASEBOT_IMAP_PASSWORD"
	EnvSMTPUsername  = "CASEBOT_SMTP_USERNAME"
	EnvSMTPPassword  = "CASEBOT_SMTP_PASSWORD"
)

// Secrets are the credentials and addresses that come from the environment,
// never from casebot.yml. Every way of printing a Secrets (fmt verbs, slog,
// JSON) shows only whether each value is set.
type Secrets struct {
	SlackBotToken string
	SlackAppToken string
	// OllamaHost is the Ollama server address; empty means the client's
	// default (127.0.0.1:11434).
	OllamaHost    string
	WebhookSecret string
	// RatingSecret signs the follow-up rating links.
	RatingSecret string
	// IMAPUsername and IMAPPassword log in to email.imap_addr.
	IMAPUsername string
	IMAPPassword string
	// SMTPUsername and SMTPPassword log in to email.smtp_addr; with no
	// username replies are submitted without logging in (a local relay).
	SMTPUsername string
	SMTPPassword string
}

// SecretsFromEnv reads the secrets through getenv (os.Getenv, or a map in
// tests). Surrounding whitespace, such as a newline from a secrets file, is
// trimmed.
func SecretsFromEnv(getenv func(string) string) Secrets {
	get := func(k string) string { return strings.TrimSpace(getenv(k)) }
	return Secrets{
		SlackBotToken: get(EnvSlackBotToken),
		SlackAppToken: get(EnvSlackAppToken),
		OllamaHost:    get(EnvOllamaHost),
		WebhookSecret: get(EnvWebhookSecret),
		RatingSecret:  get(EnvRatingSecret),
		IMAPUsername:  get(EnvIMAPUsername),
		IMAPPassword:  get(EnvIMAPPassword),
		SMTPUsername:  get(EnvSMTPUsername),
		SMTPPassword:  get(EnvSMTPPassword),
	}
}

// String shows which secrets are set, never their values. The Ollama address
// is shown unless it carries credentials (user:password@host).
func (s Secrets) String() string {
	host := secretPresence(s.OllamaHost)
	if s.OllamaHost != "" && !strings.Contains(s.OllamaHost, "@") {
		host = s.OllamaHost
	}
	return fmt.Sprintf("%s=%s %s=%s %s=%s %s=%s %s=%s %s=%s %s=%s %s=%s %s=%s",
		EnvSlackBotToken, secretPresence(s.SlackBotToken),
		EnvSlackAppToken, secretPresence(s.SlackAppToken),
		EnvOllamaHost, host,
		EnvWebhookSecret, secretPresence(s.WebhookSecret),
		EnvRatingSecret, secretPresence(s.RatingSecret),
		EnvIMAPUsername, secretPresence(s.IMAPUsername),
		EnvIMAPPassword, secretPresence(s.IMAPPassword),
		EnvSMTPUsername, secretPresence(s.SMTPUsername),
		EnvSMTPPassword, secretPresence(s.SMTPPassword))
}

// GoString redacts %#v the same way as String.
func (s Secrets) GoString() string { return s.String() }

// LogValue redacts Secrets in slog output, whose JSON handler would
// otherwise print the fields.
func (s Secrets) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON redacts Secrets when encoded as JSON.
func (s Secrets) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

func secretPresence(v string) string {
	if v == "" {
		return "[unset]"
	}
	return "[set]"
}
