package slackfake

import (
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Block Kit limits, as Slack documents them. They are kept here, apart from
// package bot's own checks, because this package plays Slack's server.
const (
	maxMessageBlocks   = 50
	maxViewBlocks      = 100
	maxBlockID         = 255
	maxActionID        = 255
	maxSectionText     = 3000
	maxSectionFields   = 10
	maxFieldText       = 2000
	maxHeaderText      = 150
	maxContextElements = 10
	maxActionsElements = 25
	maxButtonText      = 75
	maxButtonValue     = 2000
	maxURL             = 3000
	maxMarkdownText    = 12000
	maxAltText         = 2000
	maxImageTitle      = 2000
	maxLabelText       = 2000
	maxPlaceholderText = 150
	maxOptions         = 100
	maxOverflowOptions = 5
	maxOptionText      = 75
	maxOptionValue     = 150
	maxViewTitle       = 24
	maxViewButton      = 24
	maxCallbackID      = 255
	maxPrivateMetadata = 3000
	maxExternalID      = 255
)

// blockTypes are the layout blocks Slack accepts; any other type is refused.
var blockTypes = map[string]bool{
	"section": true, "header": true, "context": true, "actions": true,
	"divider": true, "image": true, "input": true, "rich_text": true,
	"markdown": true, "file": true, "video": true, "table": true,
}

// checker collects problems in Slack's response_metadata style:
// "[ERROR] <what> [json-pointer:<where>]".
type checker struct {
	problems []string
	blockIDs map[string]bool
}

func (c *checker) add(ptr, format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf("[ERROR] %s [json-pointer:%s]", fmt.Sprintf(format, args...), ptr))
}

// maxLen reports a string field longer than limit characters.
func (c *checker) maxLen(obj map[string]any, key string, limit int, ptr string) {
	s, _ := obj[key].(string)
	if n := utf8.RuneCountInString(s); n > limit {
		c.add(ptr+"/"+key, "must be at most %d characters, got %d", limit, n)
	}
}

// text checks a text object: its type (plain_text only, when plainOnly) and
// its length. required reports a missing object.
func (c *checker) text(v any, ptr string, limit int, plainOnly, required bool) {
	if v == nil {
		if required {
			c.add(ptr, "missing required field")
		}
		return
	}
	obj, isObj := v.(map[string]any)
	if !isObj {
		c.add(ptr, "must be a text object")
		return
	}
	switch obj["type"] {
	case "plain_text":
	case "mrkdwn":
		if plainOnly {
			c.add(ptr+"/type", "must be plain_text")
		}
	default:
		c.add(ptr+"/type", "must be plain_text or mrkdwn")
	}
	s, isString := obj["text"].(string)
	if !isString || s == "" {
		c.add(ptr+"/text", "must be a non-empty string")
		return
	}
	c.maxLen(obj, "text", limit, ptr)
}

// checkBlocks checks a blocks array against Block Kit's limits. It returns
// an error only when raw is not a JSON array of objects.
func checkBlocks(raw json.RawMessage, maxBlocks int, ptr string) ([]string, error) {
	var blocks []any
	if err := json.Unmarshal(raw, &blocks); err != nil {
		return nil, fmt.Errorf("blocks must be a JSON array: %w", err)
	}
	c := &checker{blockIDs: map[string]bool{}}
	if err := c.blocks(blocks, maxBlocks, ptr); err != nil {
		return nil, err
	}
	return c.problems, nil
}

func (c *checker) blocks(blocks []any, maxBlocks int, ptr string) error {
	if len(blocks) > maxBlocks {
		c.add(ptr, "must have at most %d blocks, got %d", maxBlocks, len(blocks))
	}
	for i, b := range blocks {
		obj, isObj := b.(map[string]any)
		if !isObj {
			return errors.New("blocks must be JSON objects")
		}
		c.block(obj, fmt.Sprintf("%s/%d", ptr, i))
	}
	return nil
}

func (c *checker) block(b map[string]any, ptr string) {
	typ, _ := b["type"].(string)
	if !blockTypes[typ] {
		c.add(ptr+"/type", "unsupported block type %q", typ)
		return
	}
	if id, isString := b["block_id"].(string); isString {
		c.maxLen(b, "block_id", maxBlockID, ptr)
		if c.blockIDs[id] {
			c.add(ptr+"/block_id", "duplicate block_id %q", id)
		}
		c.blockIDs[id] = true
	}
	switch typ {
	case "section":
		c.section(b, ptr)
	case "header":
		c.text(b["text"], ptr+"/text", maxHeaderText, true, true)
	case "context":
		elems, _ := b["elements"].([]any)
		if len(elems) == 0 {
			c.add(ptr+"/elements", "must have at least 1 element")
		}
		if len(elems) > maxContextElements {
			c.add(ptr+"/elements", "must have at most %d elements, got %d", maxContextElements, len(elems))
		}
		for i, e := range elems {
			el, _ := e.(map[string]any)
			eptr := fmt.Sprintf("%s/elements/%d", ptr, i)
			switch el["type"] {
			case "plain_text", "mrkdwn":
				c.text(el, eptr, maxSectionText, false, true)
			case "image":
				c.image(el, eptr)
			default:
				c.add(eptr+"/type", "context elements must be text or image")
			}
		}
	case "actions":
		elems, _ := b["elements"].([]any)
		if len(elems) == 0 {
			c.add(ptr+"/elements", "must have at least 1 element")
		}
		if len(elems) > maxActionsElements {
			c.add(ptr+"/elements", "must have at most %d elements, got %d", maxActionsElements, len(elems))
		}
		seen := map[string]bool{}
		for i, e := range elems {
			el, _ := e.(map[string]any)
			eptr := fmt.Sprintf("%s/elements/%d", ptr, i)
			c.element(el, eptr)
			if id, isString := el["action_id"].(string); isString {
				if seen[id] {
					c.add(eptr+"/action_id", "duplicate action_id %q", id)
				}
				seen[id] = true
			}
		}
	case "image":
		c.image(b, ptr)
		c.text(b["title"], ptr+"/title", maxImageTitle, true, false)
	case "input":
		c.text(b["label"], ptr+"/label", maxLabelText, true, true)
		c.text(b["hint"], ptr+"/hint", maxLabelText, true, false)
		el, _ := b["element"].(map[string]any)
		if el == nil {
			c.add(ptr+"/element", "missing required field")
		} else {
			c.element(el, ptr+"/element")
		}
	case "markdown":
		s, _ := b["text"].(string)
		if s == "" {
			c.add(ptr+"/text", "must be a non-empty string")
		}
		c.maxLen(b, "text", maxMarkdownText, ptr)
	}
}

func (c *checker) section(b map[string]any, ptr string) {
	fields, hasFields := b["fields"].([]any)
	if b["text"] == nil && !hasFields {
		c.add(ptr, "must have text or fields")
	}
	c.text(b["text"], ptr+"/text", maxSectionText, false, false)
	if len(fields) > maxSectionFields {
		c.add(ptr+"/fields", "must have at most %d fields, got %d", maxSectionFields, len(fields))
	}
	for i, fl := range fields {
		c.text(fl, fmt.Sprintf("%s/fields/%d", ptr, i), maxFieldText, false, true)
	}
	if acc, isObj := b["accessory"].(map[string]any); isObj {
		c.element(acc, ptr+"/accessory")
	}
}

func (c *checker) image(b map[string]any, ptr string) {
	if _, hasURL := b["image_url"].(string); !hasURL && b["slack_file"] == nil {
		c.add(ptr, "must have image_url or slack_file")
	}
	c.maxLen(b, "image_url", maxURL, ptr)
	if s, _ := b["alt_text"].(string); s == "" {
		c.add(ptr+"/alt_text", "must be a non-empty string")
	}
	c.maxLen(b, "alt_text", maxAltText, ptr)
}

// element checks an interactive element (button, select, input …).
func (c *checker) element(el map[string]any, ptr string) {
	if el == nil {
		c.add(ptr, "must be an element object")
		return
	}
	c.maxLen(el, "action_id", maxActionID, ptr)
	c.text(el["placeholder"], ptr+"/placeholder", maxPlaceholderText, true, false)
	switch el["type"] {
	case "button":
		c.text(el["text"], ptr+"/text", maxButtonText, true, true)
		c.maxLen(el, "value", maxButtonValue, ptr)
		c.maxLen(el, "url", maxURL, ptr)
		if style, has := el["style"]; has && style != "primary" && style != "danger" {
			c.add(ptr+"/style", "must be primary or danger")
		}
	case "overflow":
		c.options(el, ptr, maxOverflowOptions)
	case "static_select", "multi_static_select", "radio_buttons", "checkboxes":
		c.options(el, ptr, maxOptions)
	}
}

func (c *checker) options(el map[string]any, ptr string, limit int) {
	opts, _ := el["options"].([]any)
	if groups, isArr := el["option_groups"].([]any); isArr {
		for _, g := range groups {
			gm, _ := g.(map[string]any)
			more, _ := gm["options"].([]any)
			opts = append(opts, more...)
		}
	}
	if len(opts) > limit {
		c.add(ptr+"/options", "must have at most %d options, got %d", limit, len(opts))
	}
	for i, o := range opts {
		om, _ := o.(map[string]any)
		optr := fmt.Sprintf("%s/options/%d", ptr, i)
		if om == nil {
			c.add(optr, "must be an option object")
			continue
		}
		c.text(om["text"], optr+"/text", maxOptionText, false, true)
		c.maxLen(om, "value", maxOptionValue, optr)
	}
}

// checkView checks a modal (wantType "modal") or App Home (wantType "home")
// view object against Slack's view limits and its blocks against Block Kit's.
func checkView(raw json.RawMessage, wantType string) ([]string, error) {
	var v map[string]any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("view must be a JSON object: %w", err)
	}
	c := &checker{blockIDs: map[string]bool{}}
	const ptr = "/view"
	if v["type"] != wantType {
		c.add(ptr+"/type", "must be %s", wantType)
	}
	if wantType == "modal" {
		c.text(v["title"], ptr+"/title", maxViewTitle, true, true)
		c.text(v["submit"], ptr+"/submit", maxViewButton, true, false)
		c.text(v["close"], ptr+"/close", maxViewButton, true, false)
	}
	c.maxLen(v, "callback_id", maxCallbackID, ptr)
	c.maxLen(v, "private_metadata", maxPrivateMetadata, ptr)
	c.maxLen(v, "external_id", maxExternalID, ptr)
	blocks, isArr := v["blocks"].([]any)
	if !isArr {
		c.add(ptr+"/blocks", "missing required field")
	}
	if err := c.blocks(blocks, maxViewBlocks, ptr+"/blocks"); err != nil {
		return nil, err
	}
	if wantType == "modal" && v["submit"] == nil {
		for i, b := range blocks {
			if bm, _ := b.(map[string]any); bm["type"] == "input" {
				c.add(fmt.Sprintf("%s/blocks/%d", ptr, i), "input blocks need the view to have a submit button")
				break
			}
		}
	}
	return c.problems, nil
}
