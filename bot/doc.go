// Package bot is casebot's Slack surface (SPEC section 5): the Socket Mode
// loop (App: intake messages, buttons, modals, /casebot, the shortcut and
// App Home), the Poster that drains the store's outbox to Slack at Slack's
// pace, and the Block Kit rendering of cards and posts. bot/slackfake is the
// in-process Slack stand-in that tests and the demo run against.
//
// Everything a customer or the model wrote is untrusted. It reaches Slack
// only through Escape, which turns '&', '<' and '>' into entities so that it
// can never ping (<!channel>, <@U…>) or link, and through Truncate, which
// keeps every text within its Block Kit limit without splitting an entity or
// a character. The only live mentions on a card are the owners named in
// config. ValidateBlocks checks the limits and is shared with the Slack
// stand-in, so that tests and the demo reject what Slack would reject.
package bot
