//! Reading the daemons' structured logs (`[log] format = "json"`: one JSON
//! object per line with an RFC 3339 UTC `timestamp`, tracing-subscriber's
//! format) to place their events on a run's timeline: when a failure
//! detector declared a proxy dead, when a backup lb took over, and how
//! often a detector suspected a proxy that was alive.

/// Milliseconds since the Unix epoch of an RFC 3339 UTC time
/// (`2026-11-23T12:20:01.123456Z`; a numeric offset is applied).
pub fn parse_rfc3339_ms(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if b[10] != b'T' && b[10] != b't' && b[10] != b' ' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut frac = 0.0;
    if let Some(r) = rest.strip_prefix('.') {
        let digits = r.chars().take_while(char::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        frac = format!("0.{}", &r[..digits]).parse().ok()?;
        rest = &r[digits..];
    }
    let offset_min = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) => {
            let hh: i64 = o.get(1..3)?.parse().ok()?;
            let mm: i64 = o.get(4..6)?.parse().ok()?;
            let m = hh * 60 + mm;
            if o.starts_with('-') {
                -m
            } else {
                m
            }
        }
        _ => return None,
    };
    // Days from the civil date (proleptic Gregorian), Howard Hinnant's
    // algorithm.
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    Some((secs as f64 + frac) * 1e3)
}

/// One log line: its time (Unix ms) and the whole JSON object.
pub fn events(log: &str) -> Vec<(f64, serde_json::Value)> {
    log.lines()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l.trim()).ok()?;
            let t = parse_rfc3339_ms(v.get("timestamp")?.as_str()?)?;
            Some((t, v))
        })
        .collect()
}

/// The text of a log event: its `message` and every other field, so a
/// pattern can match either.
pub fn text(v: &serde_json::Value) -> String {
    v.to_string()
}

/// The first event at or after `after_unix_ms` whose JSON text contains
/// every one of `all`, as Unix ms.
pub fn first_event(log: &str, after_unix_ms: f64, all: &[&str]) -> Option<f64> {
    events(log)
        .into_iter()
        .filter(|(t, _)| *t >= after_unix_ms)
        .find(|(_, v)| {
            let s = text(v);
            all.iter().all(|p| s.contains(p))
        })
        .map(|(t, _)| t)
}

/// The lb's "proxy down" events that were false suspicions: all of them
/// except those of proxy `victim` at or after `killed_unix_ms` (the one
/// proxy the scenario killed, if any).
pub fn false_downs(log: &str, victim: Option<u16>, killed_unix_ms: f64) -> usize {
    events(log)
        .into_iter()
        .filter(|(_, v)| {
            v.get("message")
                .and_then(|m| m.as_str())
                .is_some_and(|m| m.starts_with("proxy down"))
        })
        .filter(|(t, v)| {
            let id = v.get("proxy").and_then(|p| p.as_u64());
            !(victim.is_some() && id == victim.map(u64::from) && *t >= killed_unix_ms)
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_utc_and_offsets() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(
            parse_rfc3339_ms("1970-01-02T00:00:01.5Z"),
            Some(86_401_500.0)
        );
        // 2026-11-23 is day 20780 since the epoch.
        assert_eq!(
            parse_rfc3339_ms("2026-11-23T12:20:01.123456Z"),
            Some((20_780.0 * 86_400.0 + 12.0 * 3600.0 + 20.0 * 60.0 + 1.123456) * 1e3)
        );
        assert_eq!(
            parse_rfc3339_ms("2026-11-23T13:20:01+01:00"),
            parse_rfc3339_ms("2026-11-23T12:20:01Z")
        );
        assert_eq!(
            parse_rfc3339_ms("2000-02-29T00:00:00Z"),
            Some(951_782_400_000.0)
        );
        for bad in [
            "",
            "2026-11-23",
            "2026-13-01T00:00:00Z",
            "2026-11-23T12:20:01",
            "2026-11-23T12:20:01.Z",
        ] {
            assert_eq!(parse_rfc3339_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn finds_the_first_matching_event_after_a_time() {
        let log = "not json\n\
            {\"timestamp\":\"1970-01-01T00:00:01Z\",\"level\":\"INFO\",\"message\":\"proxy down\",\"proxy\":1}\n\
            {\"timestamp\":\"1970-01-01T00:00:02Z\",\"level\":\"INFO\",\"message\":\"proxy down\",\"proxy\":2}\n\
            {\"timestamp\":\"1970-01-01T00:00:03Z\",\"level\":\"INFO\",\"message\":\"proxy down\",\"proxy\":1}\n";
        assert_eq!(events(log).len(), 3);
        assert_eq!(
            first_event(log, 0.0, &["proxy down", "\"proxy\":1"]),
            Some(1000.0)
        );
        assert_eq!(
            first_event(log, 1500.0, &["proxy down", "\"proxy\":1"]),
            Some(3000.0)
        );
        assert_eq!(first_event(log, 1500.0, &["proxy up"]), None);
        // Proxy 1 killed at 2.5 s: its later down is the detection, the
        // others are false suspicions.
        assert_eq!(false_downs(log, Some(1), 2500.0), 2);
        assert_eq!(false_downs(log, Some(1), 0.0), 1);
        assert_eq!(false_downs(log, None, 0.0), 3);
        assert_eq!(false_downs("", Some(1), 0.0), 0);
    }
}
