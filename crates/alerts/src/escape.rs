//! Text a guest controls (a connector's name, message and details) made
//! inert for each receiver: it may say anything, but it must not ping a
//! channel, form a link, or change how the rest of the message reads.
//!
//! - Slack: `&`, `<` and `>` escaped as Slack documents (so no `<!channel>`,
//!   `<@U123>` or `<http://x|y>` can form), and the text put in a code
//!   span, where Slack applies no formatting and no auto-linking; backticks
//!   in it become `ˋ` so the span cannot be closed early.
//! - Discord: every markdown character backslash-escaped (so no masked link
//!   `[x](http://y)`, no spoiler, quote or heading), a zero-width space
//!   after each `@` and in each `://` (no `@everyone`, no auto-link); the
//!   payload also sets `allowed_mentions` to none.
//! - JSON bodies: `<`, `>`, `&` and the JavaScript line separators written
//!   as `\u` escapes, so a receiver that pastes a value into HTML or a
//!   script gets no markup; the parsed values are unchanged.
//!
//! Every text is made one line (control characters become spaces) and cut
//! to a bound first, so one guest cannot flood a channel.

/// What a message quotes of one guest text, at most.
pub(crate) const MAX_TEXT: usize = 300;

const ZERO_WIDTH_SPACE: char = '\u{200B}';

/// One line of at most `max` characters (an ellipsis marks a cut).
pub(crate) fn one_line(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max * 4));
    for (count, c) in text.chars().enumerate() {
        if count == max {
            out.push('…');
            break;
        }
        out.push(if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
            ' '
        } else {
            c
        });
    }
    out
}

/// A guest's text as a Slack code span.
pub(crate) fn slack(text: &str) -> String {
    let line = one_line(text, MAX_TEXT);
    if line.trim().is_empty() {
        return "(none)".into();
    }
    let mut out = String::with_capacity(line.len() + 8);
    out.push('`');
    for c in line.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '`' => out.push('ˋ'),
            c => out.push(c),
        }
    }
    out.push('`');
    out
}

/// A guest's text with Discord's markdown, mentions and links escaped.
pub(crate) fn discord(text: &str) -> String {
    let line = one_line(text, MAX_TEXT);
    if line.trim().is_empty() {
        return "(none)".into();
    }
    let mut out = String::with_capacity(line.len() + 16);
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' | '*' | '_' | '~' | '`' | '|' | '>' | '<' | '[' | ']' | '(' | ')' | '#' | '-'
            | ':' => {
                out.push('\\');
                out.push(c);
                if c == ':' && chars.peek() == Some(&'/') {
                    out.push(ZERO_WIDTH_SPACE);
                }
            }
            '@' => {
                out.push('@');
                out.push(ZERO_WIDTH_SPACE);
            }
            c => out.push(c),
        }
    }
    out
}

/// `value` as JSON text safe to paste into HTML: see the module doc.
pub(crate) fn json_bytes(value: &serde_json::Value) -> Vec<u8> {
    let text = value.to_string();
    let mut out = String::with_capacity(text.len() + 16);
    // These characters never appear in JSON outside strings, so replacing
    // each with its `\u` escape keeps the document and its values the same.
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.into_bytes()
}
