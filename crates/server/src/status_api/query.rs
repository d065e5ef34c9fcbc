//! The history API's query words: times (`2026-12-06T10:00:00Z`, or `24h`
//! meaning 24 hours ago) and steps (`raw`, or a whole number of hours).

use std::time::{Duration, SystemTime};

/// Raw checks, or rollups of this length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Raw,
    Every(Duration),
}

const HOUR: u64 = 3600;

pub fn parse_step(text: Option<&str>) -> Result<Step, String> {
    let text = match text.map(str::trim) {
        None | Some("" | "raw") => return Ok(Step::Raw),
        Some(text) => text,
    };
    let step = humantime::parse_duration(text)
        .map_err(|e| format!("step `{text}` is not `raw` or a duration like 1h or 1d ({e})"))?;
    if step.is_zero() || step.as_secs() % HOUR != 0 || step.subsec_nanos() != 0 {
        return Err(format!(
            "step `{text}` must be `raw` or a whole number of hours (1h, 6h, 1d): rollups are hourly"
        ));
    }
    Ok(Step::Every(step))
}

/// An RFC 3339 time, or a duration before `now` (`24h`, `-24h`, `7d`).
pub fn parse_time(text: &str, now: SystemTime) -> Result<SystemTime, String> {
    let text = text.trim();
    if let Ok(at) = humantime::parse_rfc3339_weak(text) {
        return Ok(at);
    }
    let ago = text.strip_prefix('-').unwrap_or(text);
    let span = humantime::parse_duration(ago).map_err(|_| {
        format!("`{text}` is not a time: write 2026-12-06T10:00:00Z, or 24h for 24 hours ago")
    })?;
    // Times before the epoch are of no use to a history.
    Ok(now
        .checked_sub(span)
        .filter(|t| *t >= SystemTime::UNIX_EPOCH)
        .unwrap_or(SystemTime::UNIX_EPOCH))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_raw_or_whole_hours() {
        assert_eq!(parse_step(None), Ok(Step::Raw));
        assert_eq!(parse_step(Some("raw")), Ok(Step::Raw));
        assert_eq!(
            parse_step(Some("1d")),
            Ok(Step::Every(Duration::from_secs(86_400)))
        );
        assert_eq!(
            parse_step(Some("6h")),
            Ok(Step::Every(Duration::from_secs(6 * 3600)))
        );
        for bad in ["5m", "90m", "0h", "soon", "1h30m"] {
            let error = parse_step(Some(bad)).expect_err(bad);
            assert!(error.contains(bad), "{error}");
        }
    }

    #[test]
    fn times_are_rfc3339_or_a_span_before_now() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(
            parse_time("24h", now),
            Ok(now - Duration::from_secs(86_400))
        );
        assert_eq!(parse_time("-1h", now), Ok(now - Duration::from_secs(3600)));
        assert_eq!(
            parse_time("1970-01-01T00:01:40Z", now),
            Ok(SystemTime::UNIX_EPOCH + Duration::from_secs(100))
        );
        assert!(parse_time("yesterday", now).is_err());
        assert_eq!(
            parse_time("100000d", now),
            Ok(SystemTime::UNIX_EPOCH),
            "a span past the epoch stops there"
        );
    }
}
