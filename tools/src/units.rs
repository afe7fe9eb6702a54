//! Sizes and durations as the command line prints and reads them.

use anyhow::{anyhow, bail, Result};

pub(crate) fn human(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

pub(crate) fn parse_duration(s: &str) -> Result<std::time::Duration> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| anyhow!("bad duration {s:?} (use e.g. 90s, 30m, 1h, 2d)"))?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => bail!("bad duration unit in {s:?} (use s, m, h or d)"),
    };
    Ok(std::time::Duration::from_secs(n * mult))
}

/// A Unix time as people read it: local time to the minute,
/// "2026-12-03 09:14".
pub(crate) fn local_time(t: i64) -> String {
    time_in(t, &chrono::Local)
}

/// [`local_time`], or "-" for none.
pub(crate) fn local_time_opt(t: Option<i64>) -> String {
    t.map_or_else(|| crate::table::ABSENT.to_string(), local_time)
}

/// A Unix time in the time zone `tz`, to the minute.
pub(crate) fn time_in<Tz: chrono::TimeZone>(t: i64, tz: &Tz) -> String
where
    Tz::Offset: std::fmt::Display,
{
    match chrono::DateTime::from_timestamp(t, 0) {
        Some(d) => d.with_timezone(tz).format("%Y-%m-%d %H:%M").to_string(),
        None => t.to_string(),
    }
}

/// A duration in seconds, two units at most: "45s", "1m 05s",
/// "2h 03m", "3d 04h".
pub(crate) fn duration(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {:02}h", s / 86400, s % 86400 / 3600),
    }
}

/// A transfer rate in MiB/s; none when nothing moved or no time passed.
pub(crate) fn rate(bytes: u64, secs: f64) -> Option<String> {
    (bytes > 0 && secs > 0.0).then(|| format!("{:.1} MiB/s", bytes as f64 / secs / 1048576.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_binary_units() {
        assert_eq!(human(0), "0 B");
        assert_eq!(human(1023), "1023 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(5 * 1024 * 1024 * 1024), "5.0 GiB");
    }

    #[test]
    fn times_are_to_the_minute_in_the_zone() {
        assert_eq!(time_in(1_796_289_240, &chrono::Utc), "2026-12-03 09:14");
        let cet = chrono::FixedOffset::east_opt(3600).unwrap();
        assert_eq!(time_in(1_796_289_240, &cet), "2026-12-03 10:14");
        assert_eq!(local_time_opt(None), "-");
    }

    #[test]
    fn durations_have_two_units() {
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(45), "45s");
        assert_eq!(duration(65), "1m 05s");
        assert_eq!(duration(2 * 3600 + 3 * 60 + 9), "2h 03m");
        assert_eq!(duration(3 * 86400 + 4 * 3600), "3d 04h");
        assert_eq!(duration(-5), "0s");
    }

    #[test]
    fn rates_are_mib_per_second() {
        assert_eq!(rate(10 * 1048576, 4.0).as_deref(), Some("2.5 MiB/s"));
        assert_eq!(rate(0, 4.0), None);
        assert_eq!(rate(10, 0.0), None);
    }
}
