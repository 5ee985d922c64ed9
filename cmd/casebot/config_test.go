package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

	"github.com/casebot/casebot/triage"
)

// wantProblem is one expected problem: its line, its exact path and a
// substring of its message.
type wantProblem struct {
	line int
	path string
	msg  string
}

// configSecretsHint is the environment hint every secret-key problem carries.
const configSecretsHint = "set SLACK_BOT_TOKEN, SLACK_APP_TOKEN, OLLAMA_HOST and CASEBOT_WEBHOOK_SECRET in the environment"

// configMailSecretsHint is the hint of a secret key in the email section.
const configMailSecretsHint = "set CASEBOT_IMAP_USERNAME, CASEBOT_IMAP_PASSWORD, CASEBOT_SMTP_USERNAME and CASEBOT_SMTP_PASSWORD in the environment"

// TestConfigInvalidFiles checks that each invalid file reports exactly the
// listed problems, all of them at once, in line order.
func TestConfigInvalidFiles(t *testing.T) {
	tests := []struct {
		file string
		want []wantProblem
	}{
		{"unknown_key.yml", []wantProblem{
			{1, "timezon", `unknown key "timezon"; did you mean "timezone"?`},
			{3, "thresholds.refund_aproval", `did you mean "refund_approval"?`},
			{5, "routes[0].match.flag", `did you mean "flags"?`},
			{7, "routes[0].colour", `unknown key "colour"; known keys: channel, escalate, match, mention, routes`},
			{10, "ollama.host", "the Ollama address comes from the OLLAMA_HOST environment variable"},
			{11, "frobnicate", `unknown key "frobnicate"; known keys: acknowledgement, approvers,`},
		}},
		{"route_no_channel.yml", []wantProblem{
			{2, "routes[0].channel", "route has no channel"},
			{5, "routes[1].channel", "route has no channel"},
			{7, "routes[1].routes[0].channel", "route has no channel"},
		}},
		{"negative_threshold.yml", []wantProblem{
			{2, "thresholds.refund_approval", "must be a number of at least 0, got -1"},
			{3, "thresholds.financial_high", "got -250.5"},
			{6, "vip.lifetime_spend", "must not be negative"},
			{8, "store.retention_days", "must not be negative (0 keeps tickets forever)"},
		}},
		{"unknown_flag.yml", []wantProblem{
			{3, "routes[0].match.flags[1]", `unknown flag "lawsuit" (one of: legal, safety,`},
			{6, "routes[1].match.types[1]", `unknown type "returns"`},
			{7, "routes[1].match.urgency[0]", `unknown urgency "urgent" (one of: low, medium, high)`},
			{8, "routes[1].match.financial_risk[0]", `unknown financial_risk level "huge"`},
			{9, "routes[1].match.sentiment[0]", `unknown sentiment "angry" (one of: frustrated, neutral, satisfied)`},
			{10, "routes[1].match.sources[0]", `unknown source "fax" (one of: slack, email, webhook, manual, import)`},
		}},
		{"bad_timezone.yml", []wantProblem{
			{1, "timezone", `unknown time zone "Mars/Olympus_Mons"`},
		}},
		{"many_problems.yml", []wantProblem{
			{2, "timezone", `unknown time zone "Atlantis/Capital"`},
			{3, "languages[1]", `unsupported language "it"`},
			{5, "thresholds.refund_approval", "must be a number of at least 0, got -10"},
			{6, "thresholds.financial_high", `expected a number, got the text "lots"`},
			{8, "owners.legal[0]", `"alice" is not a Slack user or user-group ID`},
			{10, "root_causes[1]", `root cause "sizing" is listed twice`},
			{12, "triggers.legal.owner", `owner "lawyers" is not defined in owners (defined: legal)`},
			{13, "triggers.weather", `unknown trigger rule "weather"`},
			{15, "routes[0].channel", "route has no channel"},
			{15, "routes[0].match.flags[1]", `unknown flag "lawsuit"`},
			{17, "routes[1].match", "the last route must match everything so no ticket is unrouted"},
			{19, "routes[1].priority", `unknown key "priority"`},
			{21, "ollama.timeout", `invalid duration "soon"`},
			{22, "slack_bot_token", configSecretsHint},
		}},
		{"wrong_type.yml", []wantProblem{
			{2, "thresholds.refund_approval", `expected a number, got the text "one hundred"`},
			{3, "thresholds.repeat_days", "expected a whole number, got the number 7.5"},
			{4, "thresholds.currency", "expected text, got a list"},
			{6, "owners.legal", "expected a list of text values, got a mapping"},
			{7, "routes", `expected a list of routes, got the text "C0QUEUE"`},
			{9, "ollama.parallel", `expected a whole number, got the text "2"`},
			{10, "ollama.retries", `expected a whole number, got the text "two"`},
			{11, "ollama.timeout", "invalid duration 30: a bare number has no unit"},
			{13, "follow_up.enabled", `expected true or false, got the text "yes"`},
			{14, "follow_up.after", `invalid duration "2 days"`},
		}},
		{"secret_in_file.yml", []wantProblem{
			{1, "slack_bot_token", `unknown key "slack_bot_token": secrets are never read from the config file; ` + configSecretsHint},
			{3, "slack.app_token", configSecretsHint},
			{6, "http.webhook_secret", configSecretsHint},
			{8, "ollama.api_key", configSecretsHint},
		}},
		{"last_route_not_catchall.yml", []wantProblem{
			{4, "routes[1].match", "the last route must match everything so no ticket is unrouted"},
		}},
		{"shadowed_route.yml", []wantProblem{
			{2, "routes[0].match", "matches every ticket, so the 2 route(s) after it are never used"},
		}},
		{"unknown_owner.yml", []wantProblem{
			{6, "triggers.safety.owner", `owner "safety-team" is not defined in owners`},
			{10, "routes[0].mention[1]", `owner "counsel" is not defined in owners`},
		}},
		{"bad_owner_id.yml", []wantProblem{
			{2, "owners.legal[1]", `"@alice" is not a Slack user or user-group ID`},
			{2, "owners.legal[2]", `"u024be7lh" is not a Slack user or user-group ID`},
			{3, "owners.refunds[0]", `"C0REFUNDS" is not a Slack user or user-group ID`},
			{4, "owners.empty", `owner "empty" lists no Slack IDs`},
			{5, "approvers[0]", `"S0614TZR7" is not a Slack user ID (U… or W…)`},
		}},
		{"bad_trigger_rule.yml", []wantProblem{
			{3, "triggers.lawsuit", `unknown trigger rule "lawsuit" (rules: legal, safety, reputation, vip, repeat, refund)`},
			{4, "triggers.high_emotion", `unknown trigger rule "high_emotion"`},
		}},
		{"bad_language.yml", []wantProblem{
			{1, "languages[1]", `unsupported language "pt"`},
			{1, "languages[2]", `unsupported language "EN"`},
			{1, "languages[3]", `language "en" is listed twice`},
		}},
		{"duplicate_root_cause.yml", []wantProblem{
			{4, "root_causes[2]", `root cause "carrier_delay" is listed twice (first as root_causes[0])`},
			{5, "root_causes[3]", `root cause "Wrong Item" must be a lower_snake_case key`},
		}},
		{"bad_duration.yml", []wantProblem{
			{2, "ollama.timeout", `invalid duration "30 seconds"`},
			{3, "ollama.draft_timeout", "must be positive"},
			{4, "ollama.keep_alive", `invalid duration "forever"`},
			{6, "follow_up.after", `invalid duration "2d"`},
		}},
		{"duplicate_key.yml", []wantProblem{
			{4, "thresholds.currency", `"currency" is set twice (first on line 3)`},
			{5, "timezone", `"timezone" is set twice (first on line 1)`},
		}},
		{"syntax_error.yml", []wantProblem{
			{3, "", "YAML syntax: "},
		}},
		{"multi_document.yml", []wantProblem{
			{3, "", "only one YAML document is allowed"},
		}},
		{"top_level_list.yml", []wantProblem{
			{1, "", "expected a mapping of settings, got a list"},
		}},
		{"no_routes.yml", []wantProblem{
			{1, "routes", "at least one route is needed, and the last one must match everything"},
			{2, "root_causes", "at least one root cause is needed"},
			{3, "approvers", "no approvers"},
			{4, "languages", "at least one language is needed"},
		}},
		{"bad_addresses.yml", []wantProblem{
			{2, "thresholds.currency", `"usd" is not a three-letter ISO 4217 code`},
			{3, "thresholds.financial_medium", "900 is above financial_high 250"},
			{5, "vip.emails[0]", `"not-an-email" is not an email address`},
			{6, "vip.domains[0]", `"example" is not a domain name`},
			{8, "http.addr", `"8080" is not host:port`},
			{10, "slack.intake_channels[1]", `"general chat" is not a channel ID`},
			{10, "slack.intake_channels[2]", `channel "C0INBOX" is listed twice`},
			{11, "slack.ops_channel", "is empty"},
			{13, "routes[0].channel", `channel "#customer queue" contains spaces`},
			{15, "acknowledgement.template", "is empty while the acknowledgement is enabled"},
		}},
		{"bad_keys.yml", []wantProblem{
			{1, "", "keys must be plain text"},
			{3, "routes[0]", "<< must merge a mapping or a list of mappings"},
		}},
		{"alias_undefined.yml", []wantProblem{
			{1, "", "alias *zone refers to no anchor defined before it"},
		}},
		{"bad_email.yml", []wantProblem{
			{2, "email.imap_addr", `"imap.shop.example" is not host:port, e.g. "imap.example.com:993"`},
			{3, "email.mailbox", "is empty; name the folder casebot reads"},
			{4, "email.smtp_addr", `"smtp.shop.example:99999" has no valid port (1-65535)`},
			{5, "email.from", `"support at shop dot example" is not an email address`},
			{6, "email.tls", `unknown TLS mode "ssl" (one of: implicit, starttls)`},
			{7, "email.poll_interval", "must be positive"},
			{8, "email.password", `unknown key "password": secrets are never read from the config file; ` + configMailSecretsHint},
			{9, "email.username", `unknown key "username": mail credentials come from the environment; ` + configMailSecretsHint},
			{10, "email.folder", `unknown key "folder"; known keys: from, imap_addr, mailbox, poll_interval, smtp_addr, tls`},
		}},
		{"intake_overlap.yml", []wantProblem{
			{1, "timezone", `unknown time zone "Mars/Olympus_Mons"`},
			{3, "slack.intake_channels[0]", "C0INBOX is also slack.escalation_channel: casebot posts there"},
			{3, "slack.intake_channels[0]", "C0INBOX is also routes[0].routes[0].channel"},
			{3, "slack.intake_channels[1]", "C0QUEUE is also routes[1].channel"},
			{3, "slack.intake_channels[2]", "C0OPS1 is also slack.ops_channel"},
			{6, "slack.ignore_bots[1]", `"zapier" is not a bot or app ID (B… or A…`},
			{6, "slack.ignore_bots[2]", `"B0ZAPIER" is listed twice`},
			{6, "slack.ignore_bots[3]", `"U0FLOWBOT" is not a bot or app ID`},
		}},
		{"bad_reply_url_allow.yml", []wantProblem{
			{4, "http.reply_url_allow[1]", `"10.0.0.1/8" has host bits set; did you mean 10.0.0.0/8?`},
			{5, "http.reply_url_allow[2]", `"http://hooks.internal/reply" is not a host name, IP address or CIDR prefix`},
			{6, "http.reply_url_allow[3]", `"fe80::1%eth0" has a zone`},
		}},
		{"email_from_required.yml", []wantProblem{
			{1, "email.from", "is required when smtp_addr is set"},
			{3, "email.poll_interval", "invalid duration 60: a bare number has no unit"},
		}},
	}
	for _, tt := range tests {
		t.Run(strings.TrimSuffix(tt.file, ".yml"), func(t *testing.T) {
			_, err := ParseConfig(readConfigCase(t, tt.file), "casebot.yml")
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("ParseConfig error = %v, want a *ConfigError", err)
			}
			if ce.File != "casebot.yml" {
				t.Errorf("File = %q, want casebot.yml", ce.File)
			}
			for i := 0; i < max(len(ce.Problems), len(tt.want)); i++ {
				switch {
				case i >= len(tt.want):
					t.Errorf("unexpected problem %+v", ce.Problems[i])
				case i >= len(ce.Problems):
					t.Errorf("missing problem %+v", tt.want[i])
				default:
					got, want := ce.Problems[i], tt.want[i]
					if got.Line != want.line || got.Path != want.path || !strings.Contains(got.Msg, want.msg) {
						t.Errorf("problem %d = %d %s: %s\nwant      %d %s: …%s…", i, got.Line, got.Path, got.Msg, want.line, want.path, want.msg)
					}
				}
			}
			// Every problem appears in the error text, one per line.
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(ce.Problems) {
				t.Errorf("Error() has %d lines for %d problems:\n%s", len(lines), len(ce.Problems), err)
			}
		})
	}
}

// TestConfigValidFiles checks what valid files decode to.
func TestConfigValidFiles(t *testing.T) {
	tests := []struct {
		file  string
		check func(t *testing.T, c Config)
	}{
		{"empty.yml", func(t *testing.T, c Config) { assertConfigEqual(t, c, DefaultConfig()) }},
		{"comments_only.yml", func(t *testing.T, c Config) { assertConfigEqual(t, c, DefaultConfig()) }},
		{"valid_minimal.yml", func(t *testing.T, c Config) {
			want := DefaultConfig()
			want.Timezone = "America/Chicago"
			assertConfigEqual(t, c, want)
		}},
		{"valid_reply_url_allow.yml", func(t *testing.T, c Config) {
			want := DefaultConfig()
			want.HTTP.ReplyURLAllow = []string{"127.0.0.1/32", "::1", "10.20.0.0/16", "helpdesk.internal"}
			assertConfigEqual(t, c, want)
		}},
		{"scalar_reply_url_allow.yml", func(t *testing.T, c Config) {
			want := DefaultConfig()
			want.HTTP.ReplyURLAllow = []string{"127.0.0.1"}
			assertConfigEqual(t, c, want)
		}},
		{"valid_full.yml", func(t *testing.T, c Config) {
			want := Config{
				Config: triage.Config{
					Timezone:  "Europe/Paris",
					Languages: []string{"fr", "en"},
					Thresholds: triage.Thresholds{RefundApproval: 0, FinancialHigh: 500, FinancialMed: 75.5,
						Currency: "EUR", RepeatDays: 14},
					Owners: map[string][]string{
						"legal": {"U024BE7LH"}, "safety": {"W012A3CDE"},
						"brand": {"U0BRAND22", "S0614TZR7"}, "lead": {"U0LEAD777"},
					},
					Approvers: []string{"U0LEAD777", "W012A3CDE"},
					VIP: triage.VIPConfig{Emails: []string{"ceo@bigcustomer.fr"}, Domains: []string{"press.example.org"},
						Tags: []string{"vip", "ambassador"}, LifetimeSpend: 2500},
					RootCauses: []string{"carrier_delay", "sizing", "other"},
					Triggers: triage.TriggerConf{
						"legal":      {Owner: "legal", Escalate: true},
						"safety":     {Owner: "safety", Escalate: true},
						"reputation": {Owner: "brand"},
						"refund":     {Owner: "lead"},
					},
					EscalationChannel: "C0LEGAL01",
					Routes: []triage.RouteConf{
						{Match: triage.Match{Flags: []triage.Flag{triage.FlagLegal, triage.FlagSafety}},
							Channel: "C0LEGAL01", Mention: []string{"legal"}, Escalate: true},
						{Match: triage.Match{Types: []triage.Type{triage.TypeRefund, triage.TypeBilling},
							FinancialRisk: []triage.Level{triage.LevelHigh}},
							Channel: "C0MONEY01",
							Routes: []triage.RouteConf{{
								Match: triage.Match{Sentiment: []triage.Sentiment{triage.SentimentFrustrated},
									Sources: []triage.Source{triage.SourceEmail, triage.SourceWebhook}},
								Channel: "C0MONEYHOT", Mention: []string{"lead"},
							}}},
						{Channel: "C0QUEUE01"},
					},
				},
				Ollama: OllamaConfig{Model: "llama3.2:3b", Timeout: 15 * time.Second, DraftTimeout: 2 * time.Minute,
					KeepAlive: -time.Second, NumCtx: 8192, Parallel: 2, Retries: 3},
				Slack: SlackConfig{IntakeChannels: []string{"C0INBOX01", "C0INBOX02"}, OpsChannel: "C0OPS0001",
					EscalationChannel: "C0LEGAL01"},
				HTTP:            HTTPConfig{Addr: "127.0.0.1:9090"},
				Store:           StoreConfig{RetentionDays: 365},
				FollowUp:        FollowUpConfig{After: 72 * time.Hour, Enabled: false, Template: "How did we do? Rate us 1-5."},
				Acknowledgement: AckConfig{Enabled: true, Template: "Merci ! We received your message.\n"},
				Email:           DefaultConfig().Email,
			}
			assertConfigEqual(t, c, want)
		}},
		{"valid_ignore_bots.yml", func(t *testing.T, c Config) {
			want := DefaultConfig()
			want.Slack.IgnoreBots = []string{"B024BE7LH", "A0STOCKBOT"}
			assertConfigEqual(t, c, want)
		}},
		{"valid_email.yml", func(t *testing.T, c Config) {
			want := DefaultConfig()
			want.Email = EmailConfig{IMAPAddr: "imap.shop.example:143", Mailbox: "Support/Casebot",
				SMTPAddr: "[2001:db8::25]:587", From: "Harbor & Pine Support <support@harborandpine.example>",
				TLS: EmailTLSStartTLS, PollInterval: 2 * time.Minute}
			assertConfigEqual(t, c, want)
		}},
		{"spec_example.yml", func(t *testing.T, c Config) {
			if c.Timezone != "America/New_York" || c.Routes[2].Channel != "C-QUEUE" {
				t.Errorf("timezone %q, last channel %q", c.Timezone, c.Routes[2].Channel)
			}
			if got := c.Routes[1].Match.Urgency; !slices.Equal(got, []triage.Level{triage.LevelHigh}) {
				t.Errorf("routes[1] urgency = %v", got)
			}
			// Thresholds the example leaves out keep their defaults.
			if c.Thresholds.FinancialMed != 50 || c.Thresholds.RepeatDays != 30 {
				t.Errorf("thresholds = %+v, want default financial_medium and repeat_days", c.Thresholds)
			}
			// The built-in triggers keep only the owners the example defines.
			if c.Triggers["legal"].Owner != "legal" || c.Triggers["safety"].Owner != "" || !c.Triggers["safety"].Escalate {
				t.Errorf("triggers = %+v", c.Triggers)
			}
		}},
		{"scalar_match.yml", func(t *testing.T, c Config) {
			want := []triage.Match{
				{Urgency: []triage.Level{triage.LevelHigh}, Flags: []triage.Flag{triage.FlagLegal}},
				{Types: []triage.Type{triage.TypeRefund}, Sentiment: []triage.Sentiment{triage.SentimentFrustrated}},
				{},
			}
			for i, w := range want {
				if !reflect.DeepEqual(c.Routes[i].Match, w) {
					t.Errorf("routes[%d].match = %+v, want %+v", i, c.Routes[i].Match, w)
				}
			}
		}},
		{"anchors.yml", func(t *testing.T, c Config) {
			team := []string{"U024BE7LH", "U0LEGAL02"}
			if !slices.Equal(c.Owners["safety"], team) {
				t.Errorf("owners.safety = %v, want the aliased %v", c.Owners["safety"], team)
			}
			r := c.Routes[1]
			want := triage.RouteConf{Match: triage.Match{Flags: []triage.Flag{triage.FlagReputation}},
				Channel: "C0PRIORITY", Mention: []string{"legal"}, Escalate: true}
			if !reflect.DeepEqual(r, want) {
				t.Errorf("merged route = %+v, want %+v", r, want)
			}
		}},
		{"default_triggers_fit_owners.yml", func(t *testing.T, c Config) {
			for rule, a := range c.Triggers {
				if a.Owner != "" && a.Owner != "legal" {
					t.Errorf("trigger %s still mentions undefined owner %q", rule, a.Owner)
				}
			}
			if !slices.Equal(c.Routes[0].Mention, []string{"legal"}) {
				t.Errorf("routes[0].mention = %v", c.Routes[0].Mention)
			}
			// Fitting the defaults must not leak into the next DefaultConfig.
			if got := DefaultConfig().Triggers["safety"].Owner; got != "safety" {
				t.Errorf("DefaultConfig safety owner = %q after parsing", got)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(strings.TrimSuffix(tt.file, ".yml"), func(t *testing.T) {
			c, err := ParseConfig(readConfigCase(t, tt.file), "casebot.yml")
			if err != nil {
				t.Fatalf("ParseConfig: %v", err)
			}
			tt.check(t, c)
		})
	}
}

// TestConfigEveryCaseHasATest keeps testdata and the tables in step: a file
// no test reads would be a case that cannot fail.
func TestConfigEveryCaseHasATest(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "config", "*.yml"))
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("config_test.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !bytes.Contains(src, []byte(`"`+filepath.Base(f)+`"`)) {
			t.Errorf("%s is not used by any test", f)
		}
	}
}

// TestConfigExampleFile checks that casebot.example.yml is valid and writes
// every top-level section.
func TestConfigExampleFile(t *testing.T) {
	path := filepath.Join("..", "..", "casebot.example.yml")
	c, err := LoadConfigFile(path, true)
	if err != nil {
		t.Fatalf("casebot.example.yml: %v", err)
	}
	if c.Timezone != "America/New_York" || len(c.Routes) < 2 {
		t.Errorf("example decoded to timezone %q with %d routes", c.Timezone, len(c.Routes))
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	file, err := parser.ParseBytes(data, 0)
	if err != nil {
		t.Fatal(err)
	}
	written := map[string]bool{}
	for _, mv := range file.Docs[0].Body.(*ast.MappingNode).Values {
		written[mv.Key.String()] = true
	}
	for _, key := range topLevelConfigKeys(t) {
		if !written[key] {
			t.Errorf("casebot.example.yml does not show the %q section", key)
		}
	}
}

// topLevelConfigKeys lists the keys the decoder accepts at the top level,
// read from the unknown-key message so the list cannot drift.
func topLevelConfigKeys(t *testing.T) []string {
	t.Helper()
	_, err := ParseConfig([]byte("zzzzzzzzzzzz: 1\n"), "x")
	var ce *ConfigError
	if !errors.As(err, &ce) || len(ce.Problems) != 1 {
		t.Fatalf("want one unknown-key problem, got %v", err)
	}
	_, list, ok := strings.Cut(ce.Problems[0].Msg, "known keys: ")
	if !ok {
		t.Fatalf("no key list in %q", ce.Problems[0].Msg)
	}
	return strings.Split(list, ", ")
}

func TestDefaultConfigIsValid(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate() = %v", err)
	}
	c := DefaultConfig()
	c.RootCauses[0] = "changed"
	c.Triggers["legal"] = triage.TriggerAction{}
	if d := DefaultConfig(); d.RootCauses[0] == "changed" || d.Triggers["legal"].Owner != "legal" {
		t.Error("changing one DefaultConfig() changed the next")
	}
}

func TestConfigValidateInCode(t *testing.T) {
	c := DefaultConfig()
	c.Routes = append(c.Routes, triage.RouteConf{Match: triage.Match{Urgency: []triage.Level{"extreme"}}})
	c.Thresholds.RefundApproval = -1
	err := c.Validate()
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("Validate() = %v, want *ConfigError", err)
	}
	want := strings.Join([]string{
		"config: thresholds.refund_approval: must be a number of at least 0, got -1",
		"config: routes[3].match: this route matches every ticket, so the 1 route(s) after it are never used",
		"config: routes[4].channel: route has no channel",
		`config: routes[4].match.urgency[0]: unknown urgency "extreme" (one of: low, medium, high)`,
		"config: routes[4].match: the last route must match everything so no ticket is unrouted: remove its match",
	}, "\n")
	if err.Error() != want {
		t.Errorf("Validate() =\n%s\nwant\n%s", err, want)
	}
}

// TestConfigEmailValidate covers the email rules a file cannot show all at
// once: which settings are checked when a half is off, and header injection.
func TestConfigEmailValidate(t *testing.T) {
	tests := []struct {
		name     string
		edit     func(e *EmailConfig)
		wantPath string // "" for valid
	}{
		{"off by default", func(*EmailConfig) {}, ""},
		{"intake only", func(e *EmailConfig) { e.IMAPAddr = "imap.example.com:993" }, ""},
		{"replies only", func(e *EmailConfig) { e.SMTPAddr, e.From = "smtp.example.com:465", "support@shop.example" }, ""},
		{"mailbox unused while intake is off", func(e *EmailConfig) { e.Mailbox = "" }, ""},
		{"mailbox empty", func(e *EmailConfig) { e.IMAPAddr, e.Mailbox = "imap.example.com:993", " " }, "email.mailbox"},
		{"no host", func(e *EmailConfig) { e.IMAPAddr = ":993" }, "email.imap_addr"},
		{"port 0", func(e *EmailConfig) { e.SMTPAddr, e.From = "smtp.example.com:0", "s@shop.example" }, "email.smtp_addr"},
		{"named port", func(e *EmailConfig) { e.IMAPAddr = "imap.example.com:imaps" }, "email.imap_addr"},
		{"from checked while replies are off", func(e *EmailConfig) { e.From = "support" }, "email.from"},
		{"from missing", func(e *EmailConfig) { e.SMTPAddr = "smtp.example.com:465" }, "email.from"},
		{"from adds a header", func(e *EmailConfig) {
			e.SMTPAddr, e.From = "smtp.example.com:465", "support@shop.example\r\nBcc: all@shop.example"
		}, "email.from"},
		{"tls empty", func(e *EmailConfig) { e.TLS = "" }, "email.tls"},
		{"insecure is not offered", func(e *EmailConfig) { e.TLS = "insecure" }, "email.tls"},
		{"poll interval zero", func(e *EmailConfig) { e.PollInterval = 0 }, "email.poll_interval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.edit(&c.Email)
			err := c.Validate()
			if tt.wantPath == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var ce *ConfigError
			if !errors.As(err, &ce) || len(ce.Problems) != 1 || ce.Problems[0].Path != tt.wantPath {
				t.Fatalf("Validate() = %v, want one problem at %s", err, tt.wantPath)
			}
		})
	}
}

func TestConfigErrorFormat(t *testing.T) {
	e := &ConfigError{File: "casebot.yml", Problems: []Problem{
		{Path: "routes[1].channel", Line: 12, Msg: "route has no channel"},
		{Line: 3, Msg: "YAML syntax: bad"},
		{Path: "timezone", Msg: "is empty"},
	}}
	want := "casebot.yml:12: routes[1].channel: route has no channel\n" +
		"casebot.yml:3: YAML syntax: bad\n" +
		"casebot.yml: timezone: is empty"
	if got := e.Error(); got != want {
		t.Errorf("Error() =\n%s\nwant\n%s", got, want)
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	valid := filepath.Join(dir, "valid.yml")
	invalid := filepath.Join(dir, "invalid.yml")
	writeConfigTestFile(t, valid, "timezone: Europe/Berlin\n")
	writeConfigTestFile(t, invalid, "timezone: Nowhere/Land\n")

	t.Run("empty path gives defaults", func(t *testing.T) {
		c, err := LoadConfig("")
		if err != nil {
			t.Fatal(err)
		}
		assertConfigEqual(t, c, DefaultConfig())
	})
	t.Run("missing default path gives defaults", func(t *testing.T) {
		t.Chdir(t.TempDir())
		c, err := LoadConfig(DefaultConfigPath)
		if err != nil {
			t.Fatal(err)
		}
		assertConfigEqual(t, c, DefaultConfig())
	})
	t.Run("default path is read when present", func(t *testing.T) {
		d := t.TempDir()
		t.Chdir(d)
		writeConfigTestFile(t, filepath.Join(d, DefaultConfigPath), "timezone: Asia/Tokyo\n")
		c, err := LoadConfig(DefaultConfigPath)
		if err != nil || c.Timezone != "Asia/Tokyo" {
			t.Fatalf("LoadConfig = %q, %v", c.Timezone, err)
		}
	})
	t.Run("missing named file is an error", func(t *testing.T) {
		_, err := LoadConfig(filepath.Join(dir, "nope.yml"))
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("LoadConfig = %v, want fs.ErrNotExist", err)
		}
	})
	t.Run("missing file allowed", func(t *testing.T) {
		c, err := LoadConfigFile(filepath.Join(dir, "nope.yml"), false)
		if err != nil {
			t.Fatal(err)
		}
		assertConfigEqual(t, c, DefaultConfig())
	})
	t.Run("valid file", func(t *testing.T) {
		c, err := LoadConfig(valid)
		if err != nil || c.Timezone != "Europe/Berlin" {
			t.Fatalf("LoadConfig = %q, %v", c.Timezone, err)
		}
	})
	t.Run("invalid file names itself", func(t *testing.T) {
		_, err := LoadConfig(invalid)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.File != invalid {
			t.Fatalf("LoadConfig = %v, want *ConfigError for %s", err, invalid)
		}
		if want := invalid + ":1: timezone: "; !strings.HasPrefix(err.Error(), want) {
			t.Errorf("Error() = %q, want prefix %q", err, want)
		}
	})
}

// TestConfigSecretValuesNotEchoed: a secret pasted into the file is refused
// without its value reaching the error text (which ends up in logs).
func TestConfigSecretValuesNotEchoed(t *testing.T) {
	_, err := ParseConfig(readConfigCase(t, "secret_in_file.yml"), "casebot.yml")
	if err == nil {
		t.Fatal("secrets in the file were accepted")
	}
	for _, v := range []string{"xoxb-", "xapp-", "hunter2", "sk-not"} {
		if strings.Contains(err.Error(), v) {
			t.Errorf("error text contains the secret value %q:\n%s", v, err)
		}
	}
}

// TestConfigAliasExpansionBounded: aliases of aliases (each level ten
// copies of the one before) must not make decoding explode.
func TestConfigAliasExpansionBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("routes:\n  - channel: C0\n    match: {urgency: low}\n    routes: &r0 [")
	b.WriteString(strings.Repeat("{channel: C1}, ", 9) + "{channel: C1}]\n")
	for i := 1; i <= 6; i++ {
		fmt.Fprintf(&b, "  - channel: C0\n    match: {urgency: low}\n    routes: &r%d [", i)
		b.WriteString(strings.Repeat(fmt.Sprintf("{channel: C1, routes: *r%d}, ", i-1), 9))
		fmt.Fprintf(&b, "{channel: C1, routes: *r%d}]\n", i-1)
	}
	b.WriteString("  - channel: C0QUEUE\n")
	_, err := ParseConfig([]byte(b.String()), "bomb.yml")
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("ParseConfig = %v, want *ConfigError", err)
	}
	if len(ce.Problems) != 1 || !strings.Contains(ce.Problems[0].Msg, "expands too many aliases") {
		t.Errorf("want only the budget problem, got:\n%s", err)
	}
}

func TestConfigRouteDepthLimit(t *testing.T) {
	var b strings.Builder
	b.WriteString("routes:\n")
	indent := "  "
	for range maxConfigRouteDepth + 1 {
		fmt.Fprintf(&b, "%s- channel: C0DEEP\n%s  routes:\n", indent, indent)
		indent += "    "
	}
	fmt.Fprintf(&b, "%s- channel: C0DEEPEST\n", indent)
	_, err := ParseConfig([]byte(b.String()), "deep.yml")
	if err == nil || !strings.Contains(err.Error(), "nested more than 8 levels deep") {
		t.Fatalf("ParseConfig = %v, want a nesting problem", err)
	}
}

func TestConfigSecretsFromEnv(t *testing.T) {
	env := map[string]string{
		"SLACK_BOT_TOKEN":        "xoxb-bot-value\n",
		"SLACK_APP_TOKEN":        "xapp-app-value",
		"OLLAMA_HOST":            "http://gpu-box:11434",
		"CASEBOT_WEBHOOK_SECRET": "",
		"CASEBOT_IMAP_USERNAME":  "support@shop.example",
		"CASEBOT_IMAP_PASSWORD":  " imap-pa55 \n",
		"CASEBOT_SMTP_USERNAME":  "",
		"CASEBOT_SMTP_PASSWORD":  "smtp-pa55",
	}
	s := SecretsFromEnv(func(k string) string { return env[k] })
	got := []string{s.SlackBotToken, s.SlackAppToken, s.OllamaHost, s.WebhookSecret,
		s.IMAPUsername, s.IMAPPassword, s.SMTPUsername, s.SMTPPassword}
	if !slices.Equal(got, []string{"xoxb-bot-value", "xapp-app-value", "http://gpu-box:11434", "",
		"support@shop.example", "imap-pa55", "", "smtp-pa55"}) {
		t.Fatalf("SecretsFromEnv = %#v", got)
	}
	want := "SLACK_BOT_TOKEN=[set] SLACK_APP_TOKEN=[set] OLLAMA_HOST=http://gpu-box:11434 CASEBOT_WEBHOOK_SECRET=[unset] " +
		"CASEBOT_RATING_SECRET=[unset] " +
		"CASEBOT_IMAP_USERNAME=[set] CASEBOT_IMAP_PASSWORD=[set] CASEBOT_SMTP_USERNAME=[unset] CASEBOT_SMTP_PASSWORD=[set]"
	if got := s.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}

	withCreds := Secrets{SlackBotToken: "xoxb-bot-value", OllamaHost: "https://user:pa55word@gpu-box",
		IMAPUsername: "imap-user-value", IMAPPassword: "imap-pa55", SMTPUsername: "smtp-user-value", SMTPPassword: "smtp-pa55"}
	if got := withCreds.String(); strings.Contains(got, "pa55word") || !strings.Contains(got, "OLLAMA_HOST=[set]") {
		t.Errorf("String() = %q, want the credentialed OLLAMA_HOST redacted", got)
	}

	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("start", "secrets", withCreds)
	encoded, err := json.Marshal(struct{ S Secrets }{withCreds})
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"%v":   fmt.Sprintf("%v", withCreds),
		"%+v":  fmt.Sprintf("%+v", withCreds),
		"%#v":  fmt.Sprintf("%#v", withCreds),
		"%s":   fmt.Sprintf("%s", withCreds),
		"slog": logged.String(),
		"json": string(encoded),
	}
	for how, out := range outputs {
		for _, secret := range []string{"xoxb-bot-value", "pa55word", "imap-user-value", "imap-pa55", "smtp-user-value", "smtp-pa55"} {
			if strings.Contains(out, secret) {
				t.Errorf("%s output leaks the secret %q: %s", how, secret, out)
			}
		}
		if !strings.Contains(out, "SLACK_BOT_TOKEN=[set]") {
			t.Errorf("%s output %q does not say which secrets are set", how, out)
		}
	}
}

// FuzzParseConfig: any input either yields a config that validates again or
// a *ConfigError whose problems are all placed and described.
func FuzzParseConfig(f *testing.F) {
	seeds, err := filepath.Glob(filepath.Join("testdata", "config", "*.yml"))
	if err != nil {
		f.Fatal(err)
	}
	seeds = append(seeds, filepath.Join("..", "..", "casebot.example.yml"))
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	// Found by fuzzing: a lone \r is a line break, so the problem is on line 2.
	f.Add([]byte("\r0"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data, "fuzz.yml")
		if err == nil {
			if verr := c.Validate(); verr != nil {
				t.Fatalf("parsed config does not validate: %v", verr)
			}
			return
		}
		var ce *ConfigError
		if !errors.As(err, &ce) {
			t.Fatalf("error %v (%T) is not a *ConfigError", err, err)
		}
		if len(ce.Problems) == 0 {
			t.Fatal("ConfigError without problems")
		}
		// YAML breaks lines at \n, \r\n and a lone \r.
		lines := bytes.Count(data, []byte("\n")) + bytes.Count(data, []byte("\r")) - bytes.Count(data, []byte("\r\n")) + 1
		for _, p := range ce.Problems {
			if p.Msg == "" || p.Line < 0 || p.Line > lines {
				t.Fatalf("bad problem %+v for a %d-line input", p, lines)
			}
		}
	})
}

func readConfigCase(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "config", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func writeConfigTestFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func assertConfigEqual(t *testing.T, got, want Config) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", " ")
		w, _ := json.MarshalIndent(want, "", " ")
		t.Errorf("config mismatch\ngot:  %s\nwant: %s", g, w)
	}
}

func TestConfigPublicURL(t *testing.T) {
	for _, tt := range []struct {
		url string
		ok  bool
	}{
		{"", true},
		{"https://support.shop.example", true},
		{"http://127.0.0.1:8080/casebot", true},
		{"ftp://support.shop.example", false},
		{"support.shop.example", false},
		{"https://user:pw@support.shop.example", false},
	} {
		_, err := ParseConfig([]byte("http:\n  public_url: \""+tt.url+"\"\n"), "casebot.yml")
		if (err == nil) != tt.ok {
			t.Errorf("public_url %q: err = %v, want ok %v", tt.url, err, tt.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "casebot.yml:2: http.public_url") {
			t.Errorf("public_url %q: problem does not name the field and line: %v", tt.url, err)
		}
	}
}
