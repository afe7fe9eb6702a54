//! Backup windows (`Mon..Fri 20:00-23:30`): the times at which scheduled
//! backups may start.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Days, NaiveTime, Timelike, Utc};

use crate::field::{self, ALL_WEEKDAYS};
use crate::{check_length, Error};

const DAY_SECONDS: u32 = 86_400;

/// A recurring daily time range, optionally limited to some weekdays, in
/// UTC.
///
/// Forms (see the [crate documentation](crate) for details):
///
/// * `always` or `*`: no restriction.
/// * `22:00-06:00`: every day from 22:00 to 06:00 the next morning.
/// * `Mon..Fri 20:00-23:30`: those weekdays only.
/// * `Sat,Sun 00:00-24:00` or just `Sat,Sun`: whole days.
///
/// The start is inclusive and the end exclusive. When a window crosses
/// midnight, its weekdays are the days on which it *starts*: `Fri
/// 22:00-06:00` is open from Friday 22:00 to Saturday 06:00.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Window(Kind);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Always,
    Daily {
        /// Bit 0 is Monday.
        weekdays: u8,
        /// Seconds since midnight, `0..86_400`.
        start: u32,
        /// Seconds since midnight, `1..=86_400`, different from `start`;
        /// smaller than `start` when the window crosses midnight.
        end: u32,
    },
}

impl Window {
    /// The window that is always open.
    pub const ALWAYS: Window = Window(Kind::Always);

    /// Whether the window is open at `t`.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        let Kind::Daily {
            weekdays,
            start,
            end,
        } = self.0
        else {
            return true;
        };
        let time = t.num_seconds_from_midnight();
        let today = t.weekday().num_days_from_monday();
        let on = |day: u32| weekdays & (1 << day) != 0;
        if start < end {
            on(today) && (start..end).contains(&time)
        } else {
            // Crossing midnight: the evening part belongs to today's
            // window, the morning part to yesterday's.
            (on(today) && time >= start) || (on((today + 6) % 7) && time < end)
        }
    }

    /// `t` itself if the window is open at `t`, otherwise the moment it
    /// next opens. `None` only if that lies beyond the dates chrono can
    /// represent.
    pub fn next_open(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.contains(t) {
            return Some(t);
        }
        let Kind::Daily {
            weekdays, start, ..
        } = self.0
        else {
            return Some(t);
        };
        let start = NaiveTime::from_num_seconds_from_midnight_opt(start, 0)?;
        // Some weekday is always set, so a start comes within a week.
        for k in 0..=7 {
            let date = t.date_naive().checked_add_days(Days::new(k))?;
            if weekdays & (1 << date.weekday().num_days_from_monday()) == 0 {
                continue;
            }
            let opens = date.and_time(start).and_utc();
            if opens > t {
                return Some(opens);
            }
        }
        None
    }

    fn parse_inner(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("the window is empty (use \"always\" for no restriction)".into());
        }
        if text == "*" || text.eq_ignore_ascii_case("always") {
            return Ok(Window::ALWAYS);
        }
        let tokens: Vec<&str> = text.split_whitespace().collect();
        let (weekdays, range) = match tokens[..] {
            [one] if one.starts_with(|c: char| c.is_alphabetic()) => (Some(one), None),
            [one] => (None, Some(one)),
            [days, range] => (Some(days), Some(range)),
            _ => {
                return Err("expected [WEEKDAYS] START-END, for example \
                            Mon..Fri 20:00-23:30"
                    .into())
            }
        };
        let weekdays = match weekdays {
            Some(days) => field::parse_weekdays(days)?,
            None => ALL_WEEKDAYS,
        };
        let (start, end) = match range {
            None => (0, DAY_SECONDS),
            Some(range) => {
                let Some((start, end)) = range.split_once('-') else {
                    return Err(format!(
                        "expected a time range like 22:00-06:00, found {range:?}"
                    ));
                };
                let start = parse_time(start, "start")?;
                let end = parse_time(end, "end")?;
                if start == DAY_SECONDS {
                    return Err("the window cannot start at 24:00 (use 00:00)".into());
                }
                if start == end {
                    return Err(format!(
                        "the window starts and ends at the same time {range:?} \
                         (use 00:00-24:00 for whole days)"
                    ));
                }
                (start, end)
            }
        };
        Ok(Window(Kind::Daily {
            weekdays,
            start,
            end,
        }))
    }
}

/// Parses `H:MM` or `H:MM:SS` (or `24:00`) into seconds since midnight.
fn parse_time(text: &str, what: &str) -> Result<u32, String> {
    let invalid = || format!("invalid {what} time {text:?}: expected HH:MM or HH:MM:SS");
    let parts: Vec<&str> = text.split(':').collect();
    if !(2..=3).contains(&parts.len()) {
        return Err(invalid());
    }
    let mut values = [0u32; 3];
    for (value, part) in values.iter_mut().zip(&parts) {
        if part.is_empty() || part.len() > 2 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        *value = part.parse().map_err(|_| invalid())?;
    }
    let [h, m, s] = values;
    if h == 24 && m == 0 && s == 0 {
        return Ok(DAY_SECONDS);
    }
    if h > 23 {
        return Err(format!(
            "hour {h} in the {what} time is out of range 0..=23"
        ));
    }
    if m > 59 {
        return Err(format!(
            "minute {m} in the {what} time is out of range 0..=59"
        ));
    }
    if s > 59 {
        return Err(format!(
            "second {s} in the {what} time is out of range 0..=59"
        ));
    }
    Ok(h * 3600 + m * 60 + s)
}

fn write_time(f: &mut fmt::Formatter<'_>, seconds: u32) -> fmt::Result {
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    write!(f, "{h:02}:{m:02}")?;
    if s != 0 {
        write!(f, ":{s:02}")?;
    }
    Ok(())
}

impl Default for Window {
    /// [`Window::ALWAYS`].
    fn default() -> Self {
        Window::ALWAYS
    }
}

impl FromStr for Window {
    type Err = Error;

    fn from_str(input: &str) -> Result<Self, Error> {
        check_length(input, "backup window")?;
        Window::parse_inner(input.trim())
            .map_err(|why| Error(format!("invalid backup window {input:?}: {why}")))
    }
}

impl fmt::Display for Window {
    /// `always`, or `[WEEKDAYS ]HH:MM[:SS]-HH:MM[:SS]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Kind::Daily {
            weekdays,
            start,
            end,
        } = self.0
        else {
            return f.write_str("always");
        };
        if weekdays != ALL_WEEKDAYS {
            field::write_weekdays(f, weekdays)?;
            f.write_str(" ")?;
        }
        write_time(f, start)?;
        f.write_str("-")?;
        write_time(f, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn window(s: &str) -> Window {
        s.parse().unwrap()
    }

    #[test]
    fn parse_and_display() {
        for (input, normalized) in [
            ("*", "always"),
            ("Always", "always"),
            ("22:00-06:00", "22:00-06:00"),
            ("Mon..Fri 20:00-23:30", "Mon..Fri 20:00-23:30"),
            ("Sat,Sun 00:00-24:00", "Sat,Sun 00:00-24:00"),
            ("sat,sunday", "Sat,Sun 00:00-24:00"),
            ("  1:05:30-2:00:00 ", "01:05:30-02:00"),
            ("Fri..Mon 22:00-06:00", "Mon,Fri..Sun 22:00-06:00"),
        ] {
            let w = window(input);
            assert_eq!(w.to_string(), normalized, "{input}");
            assert_eq!(window(normalized), w, "{input}");
        }
        assert_eq!(Window::default(), Window::ALWAYS);
    }

    #[test]
    fn errors() {
        let err = |s: &str| s.parse::<Window>().unwrap_err().to_string();
        assert_eq!(
            err("22:00-22:00"),
            "invalid backup window \"22:00-22:00\": the window starts and ends at the same \
             time \"22:00-22:00\" (use 00:00-24:00 for whole days)"
        );
        assert_eq!(
            err("Mon..Fri 25:00-26:00"),
            "invalid backup window \"Mon..Fri 25:00-26:00\": hour 25 in the start time is \
             out of range 0..=23"
        );
        assert_eq!(
            err("24:00-06:00"),
            "invalid backup window \"24:00-06:00\": the window cannot start at 24:00 (use 00:00)"
        );
        for bad in [
            "",
            "22:00",
            "22-06",
            "22:00-06:00-07:00",
            "Mon Tue 22:00-06:00",
            "Mon-Fri 22:00-23:00",
            "22:60-23:00",
            "22:00-23:00:60",
            "24:01-23:00",
            "22:00-:00",
            "+1:00-2:00",
            "1:000-2:00",
        ] {
            assert!(bad.parse::<Window>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn contains_simple() {
        let w = window("Mon..Fri 20:00-23:30");
        // 2026-11-23 is a Monday.
        assert!(!w.contains(at("2026-11-23T19:59:59Z")));
        assert!(w.contains(at("2026-11-23T20:00:00Z")));
        assert!(w.contains(at("2026-11-23T23:29:59.999Z")));
        assert!(!w.contains(at("2026-11-23T23:30:00Z")));
        assert!(!w.contains(at("2026-11-22T21:00:00Z"))); // Sunday
        assert!(w.contains(at("2026-11-27T21:00:00Z"))); // Friday
        assert!(!w.contains(at("2026-11-28T21:00:00Z"))); // Saturday
    }

    #[test]
    fn contains_across_midnight() {
        let w = window("22:00-06:00");
        assert!(w.contains(at("2026-11-22T22:00:00Z")));
        assert!(w.contains(at("2026-11-23T00:00:00Z")));
        assert!(w.contains(at("2026-11-23T05:59:59Z")));
        assert!(!w.contains(at("2026-11-23T06:00:00Z")));
        assert!(!w.contains(at("2026-11-23T21:59:59Z")));

        // Friday's window runs into Saturday morning; Sunday has none.
        let w = window("Mon..Fri 22:00-06:00");
        assert!(w.contains(at("2026-11-27T23:00:00Z"))); // Friday night
        assert!(w.contains(at("2026-11-28T05:00:00Z"))); // Saturday morning
        assert!(!w.contains(at("2026-11-28T23:00:00Z"))); // Saturday night
        assert!(!w.contains(at("2026-11-23T05:00:00Z"))); // Monday morning
        assert!(w.contains(at("2026-11-24T05:00:00Z"))); // Tuesday morning
    }

    #[test]
    fn whole_days() {
        let w = window("Sat,Sun 00:00-24:00");
        assert!(!w.contains(at("2026-11-27T23:59:59Z"))); // Friday
        assert!(w.contains(at("2026-11-28T00:00:00Z")));
        assert!(w.contains(at("2026-11-29T23:59:59Z")));
        assert!(!w.contains(at("2026-11-30T00:00:00Z"))); // Monday
        assert_eq!(w, window("Sat,Sun"));
        assert!(Window::ALWAYS.contains(at("2026-11-30T00:00:00Z")));
    }

    #[test]
    fn next_open() {
        let w = window("Mon..Fri 20:00-23:30");
        let t = at("2026-11-22T10:00:00Z"); // Sunday
        assert_eq!(w.next_open(t), Some(at("2026-11-23T20:00:00Z")));
        let inside = at("2026-11-23T21:00:00Z");
        assert_eq!(w.next_open(inside), Some(inside));
        // Friday after the window: next Monday.
        assert_eq!(
            w.next_open(at("2026-11-27T23:30:00Z")),
            Some(at("2026-11-30T20:00:00Z"))
        );

        let w = window("22:00-06:00");
        assert_eq!(
            w.next_open(at("2026-11-23T06:00:00Z")),
            Some(at("2026-11-23T22:00:00Z"))
        );
        let w = window("Sun 22:00-06:00");
        assert_eq!(
            w.next_open(at("2026-11-23T07:00:00Z")),
            Some(at("2026-11-29T22:00:00Z"))
        );
        assert!(w.contains(at("2026-11-30T05:00:00Z")));
        assert_eq!(Window::ALWAYS.next_open(t), Some(t));
    }
}
