//! Fixed intervals (`every 15m`): parsing, display and slot arithmetic.
//!
//! The slots of an interval `d` are the multiples of `d` since the Unix
//! epoch, so they do not move when the server restarts.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// The longest accepted interval: 366 days.
pub const MAX_INTERVAL: Duration = Duration::from_secs(366 * 86_400);

const NANOS_PER_SEC: i128 = 1_000_000_000;

/// Unit names (matched without regard to case) and their length in seconds.
const UNITS: [(&str, u64); 19] = [
    ("seconds", 1),
    ("second", 1),
    ("secs", 1),
    ("sec", 1),
    ("s", 1),
    ("minutes", 60),
    ("minute", 60),
    ("mins", 60),
    ("min", 60),
    ("m", 60),
    ("hours", 3600),
    ("hour", 3600),
    ("h", 3600),
    ("days", 86_400),
    ("day", 86_400),
    ("d", 86_400),
    ("weeks", 604_800),
    ("week", 604_800),
    ("w", 604_800),
];

/// Parses the part after `every`: `5s`, `1h30m`, `2 hours 30 minutes`.
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("the length of the interval is missing (for example: every 15m)".into());
    }
    let mut rest = text;
    let mut total: u64 = 0;
    let mut seen_units: Vec<u64> = Vec::new();
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!(
                "expected a number at {rest:?} (for example: every 15m, every 1h30m)"
            ));
        }
        let (number, after) = rest.split_at(digits);
        let after = after.trim_start();
        let letters = after.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, after) = after.split_at(letters);
        if unit.is_empty() {
            return Err(format!(
                "the unit after {number} is missing (use s, m, h or d)"
            ));
        }
        let lower = unit.to_ascii_lowercase();
        let Some(&(_, seconds)) = UNITS.iter().find(|(name, _)| *name == lower) else {
            return Err(format!("unknown unit {unit:?} (use s, m, h or d)"));
        };
        if seen_units.contains(&seconds) {
            return Err(format!("the unit {unit:?} is given twice"));
        }
        seen_units.push(seconds);
        let too_long = || format!("{text} is longer than the maximum of 366 days");
        let value: u64 = number.parse().map_err(|_| too_long())?;
        total = value
            .checked_mul(seconds)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(too_long)?;
        rest = after.trim_start();
    }
    let duration = Duration::from_secs(total);
    if duration.is_zero() {
        return Err("the interval must be at least 1 second".into());
    }
    if duration > MAX_INTERVAL {
        return Err(format!("{text} is longer than the maximum of 366 days"));
    }
    Ok(duration)
}

/// Writes `every 1h30m` (days, hours, minutes, seconds; zero parts left
/// out). A fractional second, which the parser never produces, is written
/// as a decimal (`every 1.5s`) and does not parse back.
pub(crate) fn write(f: &mut fmt::Formatter<'_>, d: Duration) -> fmt::Result {
    f.write_str("every ")?;
    let secs = d.as_secs();
    let nanos = d.subsec_nanos();
    if nanos != 0 {
        let fraction = format!("{nanos:09}");
        return write!(f, "{secs}.{}s", fraction.trim_end_matches('0'));
    }
    if secs == 0 {
        return f.write_str("0s");
    }
    let parts = [
        (secs / 86_400, "d"),
        (secs / 3600 % 24, "h"),
        (secs / 60 % 60, "m"),
        (secs % 60, "s"),
    ];
    for (value, unit) in parts {
        if value != 0 {
            write!(f, "{value}{unit}")?;
        }
    }
    Ok(())
}

/// `t` in nanoseconds since the epoch.
fn nanos(t: DateTime<Utc>) -> i128 {
    i128::from(t.timestamp()) * NANOS_PER_SEC + i128::from(t.timestamp_subsec_nanos())
}

fn from_nanos(n: i128) -> Option<DateTime<Utc>> {
    let secs = i64::try_from(n.div_euclid(NANOS_PER_SEC)).ok()?;
    let sub = u32::try_from(n.rem_euclid(NANOS_PER_SEC)).ok()?;
    DateTime::from_timestamp(secs, sub)
}

/// The first multiple of `d` since the epoch strictly after `t`; `None` for
/// a zero interval.
pub(crate) fn next_after(d: Duration, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let d = i128::try_from(d.as_nanos()).ok().filter(|&d| d > 0)?;
    let k = nanos(t).div_euclid(d).checked_add(1)?;
    from_nanos(k.checked_mul(d)?)
}

/// The last multiple of `d` since the epoch at or before `t`; `None` for a
/// zero interval.
pub(crate) fn last_at_or_before(d: Duration, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let d = i128::try_from(d.as_nanos()).ok().filter(|&d| d > 0)?;
    from_nanos(nanos(t).div_euclid(d).checked_mul(d)?)
}

/// Whether `t` is a multiple of `d` since the epoch.
pub(crate) fn matches(d: Duration, t: DateTime<Utc>) -> bool {
    i128::try_from(d.as_nanos())
        .ok()
        .filter(|&d| d > 0)
        .is_some_and(|d| nanos(t).rem_euclid(d) == 0)
}
