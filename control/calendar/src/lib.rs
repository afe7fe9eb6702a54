//! Backup schedules for `arca server`: when a backup is due, and when it may
//! run.
//!
//! **All times are UTC.** Expressions name UTC times, and every function
//! takes and returns [`DateTime<Utc>`]; there are no time zones and no
//! daylight-saving shifts.
//!
//! A [`Schedule`] says when backups are due: either a fixed
//! [interval](Schedule::Interval) or a [calendar event](CalendarEvent) in the
//! style of systemd timers. A [`Window`] says at which times of day (and on
//! which weekdays) a due backup may start.
//!
//! ```
//! use arca_calendar::{Schedule, Window};
//! use chrono::{DateTime, Utc};
//!
//! let t: DateTime<Utc> = "2026-11-22T10:00:00Z".parse().unwrap(); // a Sunday
//! let nightly: Schedule = "Mon..Fri 22:00".parse().unwrap();
//! assert_eq!(nightly.to_string(), "Mon..Fri *-*-* 22:00:00");
//! assert_eq!(nightly.next_after(t).unwrap().to_rfc3339(), "2026-11-23T22:00:00+00:00");
//!
//! let window: Window = "Mon..Fri 20:00-23:30".parse().unwrap();
//! assert!(!window.contains(t));
//! assert_eq!(window.next_open(t).unwrap().to_rfc3339(), "2026-11-23T20:00:00+00:00");
//! ```
//!
//! # Intervals
//!
//! `every` followed by a length made of numbers with units: `s` (seconds),
//! `m` (minutes), `h` (hours), `d` (days); longer names such as `min`,
//! `hours` or `days` and `w` (weeks) work too, as does a space between
//! number and unit.
//!
//! | Expression        | Meaning                     |
//! |-------------------|-----------------------------|
//! | `every 5s`        | every 5 seconds             |
//! | `every 15m`       | every 15 minutes            |
//! | `every 1h30m`     | every 90 minutes            |
//! | `every 90s`       | every 90 seconds            |
//! | `every 1d`        | every day at 00:00 UTC      |
//!
//! The shortest interval is 1 second, the longest 366 days. The slots of an
//! interval are the multiples of its length since the Unix epoch
//! (1970-01-01 00:00:00 UTC), so they stay put when the server restarts:
//! `every 15m` fires at :00, :15, :30 and :45, `every 1d` at midnight, and
//! `every 7d` on Thursdays at midnight (the epoch was a Thursday; use
//! `weekly` or `Sun 03:00` to pick the day). The normalized form is
//! `every 1h30m`.
//!
//! # Calendar events
//!
//! The syntax is that of systemd calendar events (`man systemd.time`):
//!
//! ```text
//! [WEEKDAYS] [[YEAR-]MONTH-DAY] [HOUR:MINUTE[:SECOND]]
//! ```
//!
//! * A missing date means every day (`*-*-*`), a missing time means
//!   midnight (`00:00:00`), and missing seconds mean `:00`. At least one of
//!   the three parts must be there.
//! * Each number field may be
//!   - `*`: any value;
//!   - a value: `5`, `05`;
//!   - a list: `1,15`;
//!   - a range: `8..18` (both ends included);
//!   - a repetition: `0/15` is 0, 15, 30, 45 and `*/20` is 0, 20, 40
//!     (`START/STEP` runs to the end of the field's range); `8..18/2` is 8,
//!     10, ..., 18;
//!   - any list of those: `0..5,22,23`.
//! * Ranges: years 1970..=2199 (a `*` year is any year), months 1..=12,
//!   days 1..=31, hours 0..=23, minutes and seconds 0..=59.
//! * WEEKDAYS is a list of names and ranges: `Mon`, `Monday`, `Sat,Sun`,
//!   `Mon..Fri`, `Mon..Wed,Fri` (any case). A range may wrap around the
//!   week: `Fri..Mon`. An event with weekdays and a date matches days that
//!   satisfy both.
//! * A day that a month does not have is skipped: `*-*-31` fires only in
//!   months with 31 days, `*-02-29` only in leap years.
//! * `~` instead of the last `-` counts days from the end of the month:
//!   `*-*~01` is the last day of every month, `*-02~03` the third-last day
//!   of February, `*-*~01..07` the last seven days, and `Mon *-*~07/1` (the
//!   7th-last day and every day after it) the last Monday of every month.
//! * A trailing `UTC` (or `Z`) is accepted and ignored; other time zones
//!   are not.
//!
//! | Expression           | Meaning                                         |
//! |----------------------|-------------------------------------------------|
//! | `Mon..Fri 22:00`     | weekdays at 22:00                               |
//! | `*-*-* 02:30`        | every day at 02:30                              |
//! | `Sat,Sun 03:30:15`   | weekends at 03:30:15                            |
//! | `*:0/15`             | every quarter of an hour                        |
//! | `*-*-01 04:00`       | the 1st of every month at 04:00                 |
//! | `*-*-1/7`            | the 1st, 8th, 15th, 22nd and 29th at 00:00      |
//! | `Mon *-*-* 0/6:00`   | Mondays at 00:00, 06:00, 12:00 and 18:00        |
//! | `2027-01-01 00:00`   | once, on 2027-01-01 at 00:00                    |
//! | `*-*~01 23:00`       | the last day of every month at 23:00            |
//! | `12-24 18:00`        | every 24 December at 18:00                      |
//!
//! Shorthands, as in systemd:
//!
//! | Shorthand               | Same as                      |
//! |-------------------------|------------------------------|
//! | `minutely`              | `*-*-* *:*:00`               |
//! | `hourly`                | `*-*-* *:00:00`              |
//! | `daily`                 | `*-*-* 00:00:00`             |
//! | `weekly`                | `Mon *-*-* 00:00:00`         |
//! | `monthly`               | `*-*-01 00:00:00`            |
//! | `quarterly`             | `*-01,04,07,10-01 00:00:00`  |
//! | `semiannually`          | `*-01,07-01 00:00:00`        |
//! | `yearly`, `annually`    | `*-01-01 00:00:00`           |
//!
//! The normalized form, as [`Display`](std::fmt::Display) writes it, spells
//! out every part: `Mon..Fri *-*-* 22:00:00`, `*-*-* *:00/15:00`.
//!
//! An expression that can never match, such as `*-02-30` or
//! `Mon 2027-01-01` (a Friday), is rejected. One whose years are all in the
//! past is accepted; it simply has no next slot.
//!
//! Not supported (compared with systemd): time zones other than UTC,
//! fractional seconds, month names, `@EPOCH` timestamps and words such as
//! `today`.
//!
//! # Backup windows
//!
//! ```text
//! always | * | [WEEKDAYS] START-END | WEEKDAYS
//! ```
//!
//! START and END are `HH:MM` or `HH:MM:SS`; END may be `24:00`. The window
//! is open from START (included) to END (excluded). If END is earlier than
//! START the window crosses midnight, and its weekdays are the days on which
//! it *starts*. Weekdays alone mean whole days.
//!
//! | Window                  | Open                                        |
//! |-------------------------|---------------------------------------------|
//! | `always` or `*`         | all the time                                |
//! | `22:00-06:00`           | every night from 22:00 to 06:00             |
//! | `Mon..Fri 20:00-23:30`  | weekday evenings                            |
//! | `Fri 22:00-06:00`       | Friday 22:00 to Saturday 06:00              |
//! | `Sat,Sun 00:00-24:00`   | all weekend (same as `Sat,Sun`)             |
//!
//! # Errors and limits
//!
//! Parsing never panics, whatever the input (it comes from the REST API).
//! Inputs longer than [`MAX_INPUT_LEN`] bytes are rejected. An [`Error`]
//! names the input and what is wrong with it, for example
//! `invalid calendar expression "Mon..Fri 25:00": hour 25 is out of range 0..=23`.
//!
//! Searches look at most [`SEARCH_YEARS`] years ahead or back and skip by
//! whole years, months, days, hours and minutes; each costs microseconds.

mod calendar;
mod field;
mod interval;
mod window;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};

pub use calendar::{CalendarEvent, SEARCH_YEARS};
pub use interval::MAX_INTERVAL;
pub use window::Window;

/// The longest expression accepted, in bytes.
pub const MAX_INPUT_LEN: usize = 256;

/// Why an expression was rejected; the message quotes the input and says
/// what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Error(String);

/// Rejects overlong inputs before any other parsing.
fn check_length(input: &str, what: &str) -> Result<(), Error> {
    if input.len() > MAX_INPUT_LEN {
        return Err(Error(format!(
            "invalid {what}: it is {} bytes long, the maximum is {MAX_INPUT_LEN}",
            input.len()
        )));
    }
    Ok(())
}

/// When backups are due: at fixed intervals, or at calendar events.
///
/// Parse with [`str::parse`]: inputs starting with `every` are intervals,
/// anything else is a calendar event (see the [crate documentation](crate)).
/// [`Display`](fmt::Display) gives the normalized form, which parses back to
/// an equal value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Schedule {
    /// Every multiple of the duration since the Unix epoch (`every 15m`).
    ///
    /// Parsing only produces whole seconds from 1 second to
    /// [`MAX_INTERVAL`]; a zero duration built by hand has no slots.
    Interval(Duration),
    /// A systemd-style calendar event (`Mon..Fri 22:00`).
    Calendar(CalendarEvent),
}

impl Schedule {
    /// The first slot strictly after `t`.
    ///
    /// `None` if there is none: a calendar event whose years are all past,
    /// a zero interval, or a result beyond what chrono can represent.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Interval(d) => interval::next_after(*d, t),
            Schedule::Calendar(event) => event.next_after(t),
        }
    }

    /// The most recent slot at or before `t` (`t` itself if it is a slot).
    ///
    /// After downtime, this is the one missed slot to catch up on, rather
    /// than one run per missed slot. `None` if there is none within
    /// [`SEARCH_YEARS`] (or for a zero interval).
    pub fn last_at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Interval(d) => interval::last_at_or_before(*d, t),
            Schedule::Calendar(event) => event.last_at_or_before(t),
        }
    }

    /// Whether `t` is exactly a slot.
    pub fn matches(&self, t: DateTime<Utc>) -> bool {
        match self {
            Schedule::Interval(d) => interval::matches(*d, t),
            Schedule::Calendar(event) => event.matches(t),
        }
    }
}

impl From<CalendarEvent> for Schedule {
    fn from(event: CalendarEvent) -> Self {
        Schedule::Calendar(event)
    }
}

/// If `text` starts with the word `every`, what follows it.
fn strip_every(text: &str) -> Option<&str> {
    let head = text.get(..5)?;
    let rest = &text[5..];
    (head.eq_ignore_ascii_case("every")
        && rest
            .chars()
            .next()
            .is_none_or(|c| c.is_whitespace() || c.is_ascii_digit()))
    .then_some(rest)
}

impl FromStr for Schedule {
    type Err = Error;

    fn from_str(input: &str) -> Result<Self, Error> {
        check_length(input, "schedule")?;
        match strip_every(input.trim()) {
            Some(length) => interval::parse(length)
                .map(Schedule::Interval)
                .map_err(|why| Error(format!("invalid interval {input:?}: {why}"))),
            None => input.parse().map(Schedule::Calendar),
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Interval(d) => interval::write(f, *d),
            Schedule::Calendar(event) => event.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests;
