//! Property tests: random expressions built from parts, checked against a
//! brute-force reference matcher written independently of the crate's bit
//! sets and searches.
#![allow(clippy::unwrap_used)]

use arca_calendar::{CalendarEvent, Schedule, Window};
use chrono::{DateTime, Datelike, Days, NaiveDate, TimeZone, Timelike, Utc};
use proptest::prelude::*;
use std::time::Duration;

/// One list entry, as generated.
#[derive(Debug, Clone)]
enum Part {
    Star,
    StarStep(u32),
    Value(u32),
    Range(u32, u32),
    Step(u32, u32),
    RangeStep(u32, u32, u32),
}

/// A field: `None` leaves it out or writes `*`, depending on the field.
#[derive(Debug, Clone)]
struct FieldSpec {
    min: u32,
    max: u32,
    parts: Vec<Part>,
}

impl FieldSpec {
    fn text(&self, pad: usize) -> String {
        let num = |v: u32| format!("{v:0pad$}");
        self.parts
            .iter()
            .map(|p| match *p {
                Part::Star => "*".to_string(),
                Part::StarStep(s) => format!("*/{s}"),
                Part::Value(v) => num(v),
                Part::Range(a, b) => format!("{}..{}", num(a), num(b)),
                Part::Step(a, s) => format!("{}/{s}", num(a)),
                Part::RangeStep(a, b, s) => format!("{}..{}/{s}", num(a), num(b)),
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Membership, straight from the definitions. `from_end` is the `~`
    /// reading: `v` counts from the end of the month and repetitions are
    /// anchored at the upper end (`a/s` is a, a-s, ... down to 1).
    fn contains(&self, v: u32, from_end: bool) -> bool {
        self.parts.iter().any(|p| {
            let (start, end, step, anchor_high) = match *p {
                Part::Star => (self.min, self.max, 1, false),
                Part::StarStep(s) => (self.min, self.max, s, from_end),
                Part::Value(a) => (a, a, 1, false),
                Part::Range(a, b) => (a, b, 1, false),
                Part::Step(a, s) if from_end => (self.min, a, s, true),
                Part::Step(a, s) => (a, self.max, s, false),
                Part::RangeStep(a, b, s) => (a, b, s, from_end),
            };
            if v < start || v > end {
                return false;
            }
            if anchor_high {
                (end - v).is_multiple_of(step)
            } else {
                (v - start).is_multiple_of(step)
            }
        })
    }
}

fn part(min: u32, max: u32) -> impl Strategy<Value = Part> {
    let value = min..=max;
    let pair = (min..=max, min..=max).prop_map(|(a, b)| (a.min(b), a.max(b)));
    let step = 1..=(max - min + 3);
    prop_oneof![
        1 => Just(Part::Star),
        1 => step.clone().prop_map(Part::StarStep),
        4 => value.clone().prop_map(Part::Value),
        2 => pair.clone().prop_map(|(a, b)| Part::Range(a, b)),
        2 => (value, step.clone()).prop_map(|(a, s)| Part::Step(a, s)),
        1 => (pair, step).prop_map(|((a, b), s)| Part::RangeStep(a, b, s)),
    ]
}

fn field(min: u32, max: u32, max_parts: usize) -> impl Strategy<Value = FieldSpec> {
    proptest::collection::vec(part(min, max), 1..=max_parts).prop_map(move |parts| FieldSpec {
        min,
        max,
        parts,
    })
}

/// Years: values from `lo..=hi` (near the test time), in the field
/// 1970..=2199 (which `*` and `a/s` refer to).
fn years(lo: u32, hi: u32) -> impl Strategy<Value = FieldSpec> {
    proptest::collection::vec(part(lo, hi), 1..=2).prop_map(|parts| FieldSpec {
        min: 1970,
        max: 2199,
        parts,
    })
}

/// A field that is `*` half of the time.
fn maybe_field(min: u32, max: u32) -> impl Strategy<Value = FieldSpec> {
    prop_oneof![
        1 => Just(FieldSpec { min, max, parts: vec![Part::Star] }),
        1 => field(min, max, 3),
    ]
}

#[derive(Debug, Clone)]
struct Expr {
    /// Bit 0 is Monday; 0 when no weekdays are written.
    weekdays: u8,
    /// Years near the test time, or `None` for `*`.
    years: Option<FieldSpec>,
    months: FieldSpec,
    days: FieldSpec,
    days_from_end: bool,
    hours: FieldSpec,
    minutes: FieldSpec,
    seconds: Option<FieldSpec>,
    /// Leave the date out (it must then be `*-*-*`).
    omit_date: bool,
}

const NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sunday"];

impl Expr {
    fn text(&self) -> String {
        let mut out = Vec::new();
        if self.weekdays != 0 {
            let days: Vec<&str> = (0..7)
                .filter(|d| self.weekdays & (1 << d) != 0)
                .map(|d| NAMES[d])
                .collect();
            out.push(days.join(","));
        }
        if !self.omit_date {
            let years = self.years.as_ref().map_or("*".into(), |y| y.text(4));
            let sep = if self.days_from_end { '~' } else { '-' };
            out.push(format!(
                "{years}-{}{sep}{}",
                self.months.text(2),
                self.days.text(1)
            ));
        }
        let mut time = format!("{}:{}", self.hours.text(2), self.minutes.text(1));
        if let Some(s) = &self.seconds {
            time = format!("{time}:{}", s.text(2));
        }
        out.push(time);
        out.join(" ")
    }

    fn date_matches(&self, d: NaiveDate) -> bool {
        let weekday = d.weekday().num_days_from_monday();
        if self.weekdays != 0 && self.weekdays & (1 << weekday) == 0 {
            return false;
        }
        if self.omit_date {
            return true;
        }
        if let Some(years) = &self.years {
            if d.year() < 0 || !years.contains(d.year() as u32, false) {
                return false;
            }
        }
        if !self.months.contains(d.month(), false) {
            return false;
        }
        if self.days_from_end {
            let len = days_in_month(d);
            self.days.contains(len - d.day() + 1, true)
        } else {
            self.days.contains(d.day(), false)
        }
    }

    /// For each of hours, minutes and seconds, which values match.
    fn time_table(&self) -> [[bool; 60]; 3] {
        let mut table = [[false; 60]; 3];
        for v in 0..60 {
            table[0][v as usize] = v < 24 && self.hours.contains(v, false);
            table[1][v as usize] = self.minutes.contains(v, false);
            table[2][v as usize] = match &self.seconds {
                Some(s) => s.contains(v, false),
                None => v == 0,
            };
        }
        table
    }

    fn matches(&self, t: DateTime<Utc>) -> bool {
        let table = self.time_table();
        t.timestamp_subsec_nanos() == 0
            && table[0][t.hour() as usize]
            && table[1][t.minute() as usize]
            && table[2][t.second() as usize]
            && self.date_matches(t.date_naive())
    }

    /// The first matching second in the open interval (a, b), by brute
    /// force: day by day, and second by second on the first and last day.
    fn first_match_between(&self, a: DateTime<Utc>, b: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let table = self.time_table();
        let has_time = table[0].iter().any(|&x| x)
            && table[1].iter().any(|&x| x)
            && table[2].iter().any(|&x| x);
        let (first, last) = (a.date_naive(), b.date_naive());
        let mut day = first;
        while day <= last {
            if self.date_matches(day) {
                if day != first && day != last {
                    assert!(has_time);
                    return Some(Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0).unwrap()));
                }
                for s in 0..86_400 {
                    let (h, m, sec) = (s / 3600, s / 60 % 60, s % 60);
                    if !(table[0][h as usize] && table[1][m as usize] && table[2][sec as usize]) {
                        continue;
                    }
                    let x = Utc.from_utc_datetime(&day.and_hms_opt(h, m, sec).unwrap());
                    if x > a && x < b {
                        return Some(x);
                    }
                }
            }
            day = day.checked_add_days(Days::new(1)).unwrap();
        }
        None
    }
}

fn days_in_month(d: NaiveDate) -> u32 {
    let (y, m) = if d.month() == 12 {
        (d.year() + 1, 1)
    } else {
        (d.year(), d.month() + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1)
        .unwrap()
        .pred_opt()
        .unwrap()
        .day()
}

/// A time between 1990 and 2150, on a whole second most of the time.
fn time() -> impl Strategy<Value = DateTime<Utc>> {
    let secs = 631_152_000i64..5_680_281_600;
    let nanos = prop_oneof![3 => Just(0u32), 1 => 0u32..1_000_000_000];
    (secs, nanos).prop_map(|(s, n)| DateTime::from_timestamp(s, n).unwrap())
}

fn expr_and_time() -> impl Strategy<Value = (Expr, DateTime<Utc>)> {
    (
        time(),
        any::<u8>(),
        any::<bool>(),
        prop::bool::weighted(0.2),
    )
        .prop_flat_map(|(t, weekdays, from_end, omit_date)| {
            let year = t.year() as u32;
            let years = prop_oneof![
                3 => Just(None),
                1 => years(year.saturating_sub(3).max(1970), (year + 3).min(2199)).prop_map(Some),
            ];
            let weekdays = if weekdays & 0x80 != 0 {
                weekdays & 0x7f
            } else {
                0
            };
            let days = if omit_date {
                Just(FieldSpec {
                    min: 1,
                    max: 31,
                    parts: vec![Part::Star],
                })
                .boxed()
            } else {
                maybe_field(1, 31).boxed()
            };
            let months = if omit_date {
                Just(FieldSpec {
                    min: 1,
                    max: 12,
                    parts: vec![Part::Star],
                })
                .boxed()
            } else {
                maybe_field(1, 12).boxed()
            };
            (
                years,
                months,
                days,
                maybe_field(0, 23),
                maybe_field(0, 59),
                prop::option::of(maybe_field(0, 59)),
            )
                .prop_map(move |(years, months, days, hours, minutes, seconds)| {
                    let expr = Expr {
                        weekdays,
                        years: if omit_date { None } else { years },
                        months,
                        days,
                        days_from_end: from_end && !omit_date,
                        hours,
                        minutes,
                        seconds,
                        omit_date,
                    };
                    (expr, t)
                })
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn calendar_search_agrees_with_brute_force((expr, t) in expr_and_time()) {
        let text = expr.text();
        let event: CalendarEvent = match text.parse() {
            Ok(e) => e,
            Err(e) => {
                // Only expressions that never match may be rejected.
                prop_assert!(e.to_string().contains("never matches"), "{}", e);
                let start = Utc.with_ymd_and_hms(1970, 1, 1, 0, 0, 0).unwrap();
                let end = Utc.with_ymd_and_hms(2370, 1, 1, 0, 0, 0).unwrap();
                prop_assert_eq!(expr.first_match_between(start, end), None);
                return Ok(());
            }
        };
        // The normalized form parses back to the same event.
        let normalized = event.to_string();
        let reparsed = normalized.parse::<CalendarEvent>();
        prop_assert_eq!(reparsed.as_ref(), Ok(&event), "{}", normalized);

        let next = event.next_after(t);
        match next {
            Some(next) => {
                prop_assert!(next > t);
                prop_assert!(expr.matches(next), "{} does not match {}", next, text);
                prop_assert!(event.matches(next));
                prop_assert_eq!(expr.first_match_between(t, next), None);
                prop_assert_eq!(event.last_at_or_before(next), Some(next));
            }
            None => {
                // Within a bounded span at least, there is no match.
                let horizon = t + chrono::Duration::days(3 * 366);
                prop_assert_eq!(expr.first_match_between(t, horizon), None);
            }
        }

        let last = event.last_at_or_before(t);
        match last {
            Some(last) => {
                prop_assert!(last <= t);
                prop_assert!(expr.matches(last), "{} does not match {}", last, text);
                let after_t = t + chrono::Duration::nanoseconds(1);
                prop_assert_eq!(expr.first_match_between(last, after_t), None);
                prop_assert_eq!(event.next_after(last), next);
            }
            None => {
                let horizon = t - chrono::Duration::days(3 * 366);
                prop_assert_eq!(expr.first_match_between(horizon, t + chrono::Duration::nanoseconds(1)), None);
            }
        }
    }

    #[test]
    fn intervals_are_epoch_multiples(secs in 1u64..=366 * 86_400, t in time()) {
        let d = Duration::from_secs(secs);
        let schedule: Schedule = Schedule::Interval(d).to_string().parse().unwrap();
        prop_assert_eq!(&schedule, &Schedule::Interval(d));
        let next = schedule.next_after(t).unwrap();
        let last = schedule.last_at_or_before(t).unwrap();
        let d = secs as i64;
        prop_assert!(next > t && (next - t).num_seconds() <= d);
        prop_assert!(last <= t && (t - last).num_seconds() < d);
        prop_assert_eq!(next.timestamp().rem_euclid(d), 0);
        prop_assert_eq!(last.timestamp().rem_euclid(d), 0);
        prop_assert_eq!(next.timestamp_subsec_nanos(), 0);
        prop_assert_eq!(schedule.last_at_or_before(next), Some(next));
        prop_assert!(schedule.matches(next) && schedule.matches(last));
    }

    #[test]
    fn windows_agree_with_reference(
        weekdays in 1u8..=0x7f,
        start_min in 0u32..1440,
        end_min in 1u32..=1440,
        t in time(),
    ) {
        prop_assume!(start_min != end_min);
        let names: Vec<&str> = (0..7).filter(|d| weekdays & (1 << d) != 0).map(|d| NAMES[d]).collect();
        let text = format!(
            "{} {:02}:{:02}-{:02}:{:02}",
            names.join(","), start_min / 60, start_min % 60, end_min / 60, end_min % 60
        );
        let window: Window = text.parse().unwrap();
        prop_assert_eq!(window.to_string().parse::<Window>().unwrap(), window);

        // Reference: the window opened on day D spans [D + start, D + start + len).
        let len = if end_min > start_min { end_min - start_min } else { end_min + 1440 - start_min };
        let opening = |day: NaiveDate| -> Option<(DateTime<Utc>, DateTime<Utc>)> {
            (weekdays & (1 << day.weekday().num_days_from_monday()) != 0).then(|| {
                let open = Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0).unwrap())
                    + chrono::Duration::minutes(i64::from(start_min));
                (open, open + chrono::Duration::minutes(i64::from(len)))
            })
        };
        let date = t.date_naive();
        let reference_contains = [date.pred_opt().unwrap(), date]
            .into_iter()
            .filter_map(opening)
            .any(|(open, close)| open <= t && t < close);
        prop_assert_eq!(window.contains(t), reference_contains, "{} at {}", text, t);
        let reference_next = if reference_contains {
            t
        } else {
            (0..8)
                .filter_map(|k| opening(date.checked_add_days(Days::new(k)).unwrap()))
                .map(|(open, _)| open)
                .find(|&open| open > t)
                .unwrap()
        };
        prop_assert_eq!(window.next_open(t), Some(reference_next), "{} at {}", text, t);
    }

    #[test]
    fn arbitrary_strings_never_panic(s in ".{0,300}") {
        exercise(&s);
    }

    #[test]
    fn syntax_soup_never_panics(s in "[0-9*,./:~ a-zA-Z-]{0,40}") {
        exercise(&s);
    }
}

/// Parses `s` every way and uses whatever parses.
fn exercise(s: &str) {
    let t = Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap();
    if let Ok(schedule) = s.parse::<Schedule>() {
        let _ = schedule.last_at_or_before(t);
        if let Some(next) = schedule.next_after(t) {
            assert!(next > t);
            assert_eq!(schedule.last_at_or_before(next), Some(next));
        }
        assert_eq!(schedule.to_string().parse::<Schedule>().unwrap(), schedule);
    }
    if let Ok(event) = s.parse::<CalendarEvent>() {
        let _ = event.next_after(t);
        assert_eq!(event.to_string().parse::<CalendarEvent>().unwrap(), event);
    }
    if let Ok(window) = s.parse::<Window>() {
        let _ = window.contains(t);
        assert!(window.next_open(t).is_some_and(|open| open >= t));
        assert_eq!(window.to_string().parse::<Window>().unwrap(), window);
    }
}
