//! Durations as people write them — `90s`, `30m`, `1h30m`, `1h 30m`, `2d`, `7days`, `1.5s`,
//! `250ms`, or a bare number of seconds — read by `humantime`: the one duration grammar of
//! `config.toml`, `wbl ssh --ttl` and `wbl log --since`. Each reader's bounds stay its own.

use std::time::{Duration, SystemTime};

/// A duration in the grammar above; a bare number is seconds (`0`: none).
pub fn parse(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| not_a_duration(text));
    }
    humantime::parse_duration(t).map_err(|_| not_a_duration(text))
}

fn not_a_duration(text: &str) -> String {
    format!("`{text}` is not a duration; write a number and a unit, like 90s, 30m, 8h, 2d or 1h30m")
}

/// `wbl ssh --ttl`: a [`parse`]d duration of at least one second and at most the longest
/// grant the agent gives (30 days).
pub fn forward_ttl(text: &str) -> Result<Duration, String> {
    let d = parse(text)?;
    if d < Duration::from_secs(1) {
        return Err(format!("`{text}`: the TTL must be at least one second"));
    }
    if d > Duration::from_secs(wbl_proto::MAX_FORWARD_TTL_SECS) {
        return Err(format!("`{text}`: the TTL may be at most 30 days"));
    }
    Ok(d)
}

/// `wbl log --since`: a [`parse`]d duration back from now, or an RFC 3339 time
/// (`2026-11-29T08:00:00Z`).
pub fn since(text: &str) -> Result<SystemTime, String> {
    if let Ok(d) = parse(text) {
        return Ok(SystemTime::now()
            .checked_sub(d)
            .unwrap_or(SystemTime::UNIX_EPOCH));
    }
    humantime::parse_rfc3339_weak(text.trim()).map_err(|_| {
        "expected a duration such as 30m, 2h or 7days, or a time such as 2026-11-29T08:00:00Z"
            .to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grammar() {
        let secs = Duration::from_secs;
        assert_eq!(parse("5m"), Ok(secs(300)));
        assert_eq!(parse("90"), Ok(secs(90)));
        assert_eq!(parse("90s"), Ok(secs(90)));
        assert_eq!(parse("1h30m"), Ok(secs(5400)));
        assert_eq!(parse("1h 30m"), Ok(secs(5400)));
        assert_eq!(parse("2d"), Ok(secs(172_800)));
        assert_eq!(parse("7days"), Ok(secs(7 * 86_400)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        for bad in [
            "",
            "m",
            "h",
            "5x",
            "1x",
            "-1s",
            "-5",
            "5m3",
            "1h30",
            "99999999999999999999d",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn forward_ttls_are_bounded() {
        assert_eq!(forward_ttl("8h"), Ok(Duration::from_secs(8 * 3600)));
        assert_eq!(forward_ttl("30d"), Ok(Duration::from_secs(30 * 86_400)));
        for bad in ["0", "0s", "500ms", "31d"] {
            assert!(forward_ttl(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn since_takes_durations_and_times() {
        let now = SystemTime::now();
        let t = since("2h").unwrap();
        let back = now.duration_since(t).unwrap().as_secs();
        assert!((7199..=7201).contains(&back), "{back}");
        assert!(since("1h 30m").is_ok());
        assert_eq!(
            since("2026-11-29T08:00:00Z").unwrap(),
            humantime::parse_rfc3339("2026-11-29T08:00:00Z").unwrap()
        );
        assert!(since("yesterday-ish").is_err());
    }
}
