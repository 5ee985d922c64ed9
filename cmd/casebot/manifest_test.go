package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/dlclark/regexp2"
	"github.com/goccy/go-yaml"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// TestManifestValidates checks manifest.yml against Slack's published app
// manifest schema (slackapi/manifest-schema, MIT, copied under
// testdata/slack), so the app can be created from it in one paste.
func TestManifestValidates(t *testing.T) {
	schema := compileManifestSchema(t)
	doc := loadYAMLAsJSON(t, filepath.Join("..", "..", "manifest.yml"))
	if err := schema.Validate(doc); err != nil {
		t.Fatalf("manifest.yml does not validate against Slack's schema:\n%v", err)
	}
	// What the bot needs from the manifest, which the schema does not require.
	m := doc.(map[string]any)
	settings := m["settings"].(map[string]any)
	if settings["socket_mode_enabled"] != true || settings["interactivity"].(map[string]any)["is_enabled"] != true {
		t.Error("Socket Mode and interactivity must be on")
	}
	if got := m["features"].(map[string]any)["slash_commands"].([]any)[0].(map[string]any)["command"]; got != "/casebot" {
		t.Errorf("slash command %v, want /casebot", got)
	}
}

// TestManifestSchemaCatchesMistakes makes sure the validation can fail.
func TestManifestSchemaCatchesMistakes(t *testing.T) {
	schema := compileManifestSchema(t)
	for name, doc := range map[string]string{
		"no display name":   `{"display_information": {}}`,
		"unknown setting":   `{"display_information": {"name": "casebot"}, "settings": {"sockets": true}}`,
		"command without /": `{"display_information": {"name": "casebot"}, "features": {"slash_commands": [{"command": "casebot", "description": "x"}]}}`,
	} {
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader([]byte(doc)))
		if err != nil {
			t.Fatal(err)
		}
		if schema.Validate(v) == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func compileManifestSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "slack", "manifest.schema.1.0.0.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	// Slack's patterns use look-ahead, which Go's regexp lacks; the schema is
	// written for ECMAScript regular expressions.
	c.UseRegexpEngine(func(expr string) (jsonschema.Regexp, error) {
		re, err := regexp2.Compile(expr, regexp2.ECMAScript)
		if err != nil {
			return nil, err
		}
		return ecmaRegexp{re}, nil
	})
	if err := c.AddResource("manifest.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	schema, err := c.Compile("manifest.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return schema
}

func loadYAMLAsJSON(t *testing.T, path string) any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// ecmaRegexp adapts regexp2 to the schema compiler.
type ecmaRegexp struct{ re *regexp2.Regexp }

func (r ecmaRegexp) MatchString(s string) bool {
	ok, err := r.re.MatchString(s)
	return err == nil && ok
}

func (r ecmaRegexp) String() string { return r.re.String() }
