// Package bot is casebot's Slack surface (SPEC section 5): it renders
// tickets as Block Kit cards, and will hold the Socket Mode loop, modals,
// slash commands, App Home and the scheduled posts.
//
// Everything a customer or the model wrote is untrusted. It reaches Slack
// only through Escape, which turns '&', '<' and '>' into entities so that it
// can never ping (<!channel>, <@U…>) or link, and through Truncate, which
// keeps every text within its Block Kit limit without splitting an entity or
// a character. The only live mentions on a card are the owners named in
// config. ValidateBlocks checks the limits and is shared with the Slack
// stand-in, so that tests and the demo reject what Slack would reject.
package bot
