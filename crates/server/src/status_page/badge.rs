//! A shields-style SVG badge, `<label> | <status>` or
//! `<label> | <status> 99.95%`, for a README or a wiki page.
//!
//! The label is a connector's name or id, so a guest controls it: every
//! piece of text is XML-escaped, and the status is spelled out, so the
//! colour is never the only sign of it.

use axum::body::Body;
use axum::http::Response;
use axum::http::header::{self, HeaderValue};

/// The `Content-Type` of [`badge`]'s SVG.
pub const BADGE_CONTENT_TYPE: &str = "image/svg+xml; charset=utf-8";

/// Characters kept of a label; a longer one ends in `…` so a hostile
/// name cannot make a badge thousands of pixels wide.
const MAX_LABEL_CHARS: usize = 48;

const HEIGHT: u32 = 20;
/// Space either side of each half's text.
const PADDING: u32 = 6;

/// The badge of one connector: `label` on grey, then the status word (and,
/// with `uptime`, the percentage, rounded down so 99.999 never reads 100%)
/// on the status's colour. An unknown status word is shown as given, on
/// grey.
pub fn badge(label: &str, status: &str, uptime: Option<f64>) -> String {
    let label = shorten(label.trim());
    let status = shorten(status.trim());
    let value = match uptime.and_then(format_uptime) {
        Some(uptime) => format!("{status} {uptime}"),
        None => status.clone(),
    };
    let colour = colour_of(&status);
    let label_width = text_width(&label) + 2 * PADDING;
    let value_width = text_width(&value) + 2 * PADDING;
    let width = label_width + value_width;
    // Text is laid out at 10x scale (shields' trick) for sub-pixel centring.
    let label_x = label_width * 5;
    let value_x = (label_width * 2 + value_width) * 5;
    let label_len = (label_width - 2 * PADDING) * 10;
    let value_len = (value_width - 2 * PADDING) * 10;
    let title = format!("{}: {}", escape(&label), escape(&value));
    let label = escape(&label);
    let value = escape(&value);
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{HEIGHT}" role="img" aria-label="{title}"><title>{title}</title><linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient><clipPath id="r"><rect width="{width}" height="{HEIGHT}" rx="3" fill="#fff"/></clipPath><g clip-path="url(#r)"><rect width="{label_width}" height="{HEIGHT}" fill="#555"/><rect x="{label_width}" width="{value_width}" height="{HEIGHT}" fill="{colour}"/><rect width="{width}" height="{HEIGHT}" fill="url(#s)"/></g><g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" text-rendering="geometricPrecision" font-size="110"><text aria-hidden="true" x="{label_x}" y="150" fill="#010101" fill-opacity=".3" transform="scale(.1)" textLength="{label_len}">{label}</text><text x="{label_x}" y="140" transform="scale(.1)" textLength="{label_len}">{label}</text><text aria-hidden="true" x="{value_x}" y="150" fill="#010101" fill-opacity=".3" transform="scale(.1)" textLength="{value_len}">{value}</text><text x="{value_x}" y="140" transform="scale(.1)" textLength="{value_len}">{value}</text></g></svg>"##
    )
}

/// `svg` (from [`badge`]) as an answer: its type, no caching (a badge is
/// only worth its freshness), and the page's security headers, which keep
/// an SVG opened on its own from running anything.
pub fn badge_response(svg: String) -> Response<Body> {
    let mut response = Response::new(Body::from(svg));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(BADGE_CONTENT_TYPE),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, max-age=0"),
    );
    for (name, value) in super::secure_headers() {
        headers.insert(name, value);
    }
    response
}

/// The same colours as the page (`assets/style.css`), dark enough for
/// white text.
fn colour_of(status: &str) -> &'static str {
    match status {
        "healthy" => "#15803d",
        "degraded" => "#b45309",
        "unhealthy" => "#b91c1c",
        "unavailable" => "#7e22ce",
        _ => "#64748b",
    }
}

fn format_uptime(uptime: f64) -> Option<String> {
    if !uptime.is_finite() {
        return None;
    }
    // The epsilon keeps 99.95 (9994.999... in binary) from reading 99.94.
    let hundredths = (uptime.clamp(0.0, 100.0) * 100.0 + 1e-6).floor();
    let text = format!("{:.2}", hundredths / 100.0);
    let text = text.trim_end_matches('0').trim_end_matches('.');
    Some(format!("{text}%"))
}

fn shorten(text: &str) -> String {
    if text.chars().count() <= MAX_LABEL_CHARS {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(MAX_LABEL_CHARS - 1).collect();
    short.push('…');
    short
}

/// The width of `text` in Verdana 11px, near enough for a badge: the
/// narrow and wide letters apart, everything else average.
fn text_width(text: &str) -> u32 {
    text.chars()
        .map(|c| match c {
            'i' | 'j' | 'l' | '.' | ',' | ':' | ';' | '|' | '!' | '\'' | 'I' => 4,
            ' ' | 'f' | 't' | 'r' | '(' | ')' | '[' | ']' | '-' | '/' => 5,
            'm' | 'w' | 'M' | 'W' | '%' | '@' | '…' => 11,
            c if c.is_ascii_uppercase() => 8,
            c if c.is_ascii() => 7,
            // CJK and other wide scripts.
            _ => 11,
        })
        .sum()
}

/// Text and attribute values alike.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Not allowed in XML 1.0 at all: a control character would make
            // the whole badge unreadable.
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_word_is_in_the_text_with_and_without_uptime() {
        let plain = badge("Prometheus", "healthy", None);
        assert!(plain.contains(">healthy</text>"), "{plain}");
        assert!(plain.contains(">Prometheus</text>"), "{plain}");
        assert!(plain.contains("#15803d"), "{plain}");
        let with_uptime = badge("Prometheus", "degraded", Some(99.95));
        assert!(
            with_uptime.contains(">degraded 99.95%</text>"),
            "{with_uptime}"
        );
        assert!(with_uptime.contains("#b45309"), "{with_uptime}");
        assert!(with_uptime.contains("aria-label=\"Prometheus: degraded 99.95%\""));
    }

    #[test]
    fn hostile_labels_and_statuses_are_escaped() {
        let svg = badge(
            "<script>alert(\"x\")</script> & 'co'",
            "<b>healthy</b>",
            None,
        );
        for raw in ["<script", "<b>", "\"x\"", "'co'", " & "] {
            assert!(!svg.contains(raw), "{raw} unescaped in {svg}");
        }
        assert!(
            svg.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &apos;co&apos;")
        );
        assert!(svg.contains("&lt;b&gt;healthy&lt;/b&gt;"));
        // An unknown word gets the neutral colour, not a status's.
        assert!(svg.contains("#64748b"));
        assert!(!badge("x", "a\u{7}b", None).contains('\u{7}'));
    }

    #[test]
    fn uptime_is_rounded_down_and_trimmed() {
        let cases = [
            (100.0, "100%"),
            (99.999, "99.99%"),
            (99.9, "99.9%"),
            (99.95, "99.95%"),
            (99.94, "99.94%"),
            (0.0, "0%"),
            (150.0, "100%"),
        ];
        for (uptime, shown) in cases {
            assert_eq!(format_uptime(uptime).as_deref(), Some(shown), "{uptime}");
        }
        assert_eq!(format_uptime(f64::NAN), None);
        assert!(badge("x", "healthy", Some(f64::INFINITY)).contains(">healthy</text>"));
    }

    #[test]
    fn a_long_label_is_cut_so_the_badge_stays_small() {
        let svg = badge(&"a".repeat(10_000), "healthy", None);
        assert!(svg.len() < 3_000, "{} bytes", svg.len());
        assert!(svg.contains('…'));
    }

    #[test]
    fn the_answer_is_an_uncached_svg_with_the_page_headers() {
        let response = badge_response(badge("x", "healthy", None));
        let headers = response.headers();
        assert_eq!(headers[header::CONTENT_TYPE], BADGE_CONTENT_TYPE);
        assert_eq!(headers[header::CACHE_CONTROL], "no-cache, max-age=0");
        assert_eq!(
            headers[header::CONTENT_SECURITY_POLICY],
            super::super::CONTENT_SECURITY_POLICY
        );
    }
}
