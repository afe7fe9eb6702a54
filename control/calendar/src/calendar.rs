//! Calendar events (`Mon..Fri 22:00`): parsing, normalized display and the
//! field-by-field search for the next and previous matching second.
//!
//! The search never scans second by second. It walks the year, then the
//! months of that year that are in the month set, then the candidate days of
//! that month (a bit set: day list, minus days the month does not have, minus
//! days on the wrong weekday), and finally picks the time of day directly
//! from the hour, minute and second bit sets. Every step is a handful of bit
//! operations, so a search costs microseconds even when the next match is
//! years away.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Timelike, Utc};

use crate::field::{
    self, next_bit, prev_bit, prev_bit_below, Field, Item, ALL_WEEKDAYS, DAY, HOUR, MINUTE, MONTH,
    SECOND, YEAR,
};
use crate::{check_length, Error, MAX_INPUT_LEN};

/// How far [`CalendarEvent::next_after`] and
/// [`CalendarEvent::last_at_or_before`] look, in years.
///
/// 400 years are one full cycle of the Gregorian calendar (weekdays and leap
/// days repeat after it), so an expression without a year that matches at
/// all matches within this horizon from any starting point, and explicit
/// years are limited to 1970..=2199. `None` therefore really means "never
/// (again)"; and since the search skips whole years, months and days, even
/// the longest search takes only some microseconds.
pub const SEARCH_YEARS: i32 = 400;

/// A systemd-style calendar event such as `Mon..Fri 22:00` or `*-*-01 04:00`.
///
/// See the [crate documentation](crate) for the grammar. Parse with
/// [`str::parse`]; [`Display`](fmt::Display) gives the normalized form
/// (`Mon..Fri *-*-* 22:00:00`), which parses back to an equal value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CalendarEvent {
    /// Bit 0 is Monday; [`ALL_WEEKDAYS`] when no weekday is given.
    weekdays: u8,
    /// Empty for `*` (any year, not only 1970..=2199).
    years: Vec<Item>,
    months: Field,
    /// In the `~` form, bit `n` stands for the `n`-th last day of the month.
    days: Field,
    days_from_end: bool,
    hours: Field,
    minutes: Field,
    seconds: Field,
}

impl CalendarEvent {
    /// The first matching second strictly after `t`, or `None` if there is
    /// none within [`SEARCH_YEARS`] (for instance when all the years the
    /// expression names are in the past).
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Slots are whole seconds: the first candidate is the next whole
        // second (timestamp() rounds down, also before 1970).
        let from = DateTime::from_timestamp(t.timestamp().checked_add(1)?, 0)?;
        self.first_at_or_after(from.naive_utc())
            .map(|n| n.and_utc())
    }

    /// The most recent matching second at or before `t`, or `None` if there
    /// is none within [`SEARCH_YEARS`].
    pub fn last_at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let from = DateTime::from_timestamp(t.timestamp(), 0)?;
        self.last_at_or_before_naive(from.naive_utc())
            .map(|n| n.and_utc())
    }

    /// Whether `t` is a slot of the expression: a whole second (no
    /// fractional part) whose date and time match.
    pub fn matches(&self, t: DateTime<Utc>) -> bool {
        t.timestamp_subsec_nanos() == 0
            && self.hours.contains(t.hour())
            && self.minutes.contains(t.minute())
            && self.seconds.contains(t.second())
            && self.date_matches(t.date_naive())
    }

    /// Whether the date part (weekday, year, month, day) matches.
    fn date_matches(&self, date: NaiveDate) -> bool {
        let weekday = date.weekday().num_days_from_monday();
        self.weekdays & (1 << weekday) != 0
            && self.year_matches(date.year())
            && self.months.contains(date.month())
            && self.day_mask(date.year(), date.month()) & (1 << date.day()) != 0
    }

    fn year_matches(&self, year: i32) -> bool {
        self.next_year(i64::from(year)) == Some(i64::from(year))
    }

    /// The first year `>= year` in the year list.
    fn next_year(&self, year: i64) -> Option<i64> {
        if self.years.is_empty() {
            return Some(year);
        }
        self.years
            .iter()
            .filter_map(|item| item.next_at_or_after(year))
            .min()
    }

    /// The last year `<= year` in the year list.
    fn prev_year(&self, year: i64) -> Option<i64> {
        if self.years.is_empty() {
            return Some(year);
        }
        self.years
            .iter()
            .filter_map(|item| item.prev_at_or_before(year))
            .max()
    }

    /// The days of `year-month` that match the day list and the weekdays,
    /// as a bit set (bit 1 is the 1st).
    fn day_mask(&self, year: i32, month: u32) -> u64 {
        let len = days_in_month(year, month);
        let mut days = if self.days_from_end {
            let mut forward = 0u64;
            for n in 1..=len {
                if self.days.mask & (1 << n) != 0 {
                    forward |= 1 << (len + 1 - n);
                }
            }
            forward
        } else {
            self.days.mask & ((1u64 << (len + 1)) - 2)
        };
        if self.weekdays != ALL_WEEKDAYS && days != 0 {
            let Some(first) = NaiveDate::from_ymd_opt(year, month, 1) else {
                return 0;
            };
            let first = first.weekday().num_days_from_monday();
            let mut on_weekdays = 0u64;
            for day in 1..=len {
                if self.weekdays & (1 << ((first + day - 1) % 7)) != 0 {
                    on_weekdays |= 1 << day;
                }
            }
            days &= on_weekdays;
        }
        days
    }

    /// The earliest matching time of day `>= (h, m, s)`.
    fn time_at_or_after(&self, h: u32, m: u32, s: u32) -> Option<(u32, u32, u32)> {
        if self.hours.contains(h) {
            if self.minutes.contains(m) {
                if let Some(s) = next_bit(self.seconds.mask, s) {
                    return Some((h, m, s));
                }
            }
            if let Some(m) = next_bit(self.minutes.mask, m + 1) {
                return Some((h, m, self.first_second()));
            }
        }
        let h = next_bit(self.hours.mask, h + 1)?;
        Some((h, self.first_minute(), self.first_second()))
    }

    /// The latest matching time of day `<= (h, m, s)`.
    fn time_at_or_before(&self, h: u32, m: u32, s: u32) -> Option<(u32, u32, u32)> {
        if self.hours.contains(h) {
            if self.minutes.contains(m) {
                if let Some(s) = prev_bit(self.seconds.mask, s) {
                    return Some((h, m, s));
                }
            }
            if let Some(m) = prev_bit_below(self.minutes.mask, m) {
                return Some((h, m, self.last_second()));
            }
        }
        let h = prev_bit_below(self.hours.mask, h)?;
        Some((h, self.last_minute(), self.last_second()))
    }

    fn first_minute(&self) -> u32 {
        self.minutes.mask.trailing_zeros()
    }
    fn first_second(&self) -> u32 {
        self.seconds.mask.trailing_zeros()
    }
    fn last_minute(&self) -> u32 {
        63 - self.minutes.mask.leading_zeros()
    }
    fn last_second(&self) -> u32 {
        63 - self.seconds.mask.leading_zeros()
    }

    /// The first matching second `>= from`.
    fn first_at_or_after(&self, from: NaiveDateTime) -> Option<NaiveDateTime> {
        let (y0, m0, d0) = (i64::from(from.year()), from.month(), from.day());
        let limit = y0 + i64::from(SEARCH_YEARS);
        let mut year = self.next_year(y0)?;
        while year <= limit {
            let y = i32::try_from(year).ok()?;
            let first_month = if year == y0 { m0 } else { 1 };
            let mut month = next_bit(self.months.mask, first_month);
            while let Some(m) = month {
                let start_month = year == y0 && m == m0;
                let days = self.day_mask(y, m);
                let mut day = next_bit(days, if start_month { d0 } else { 1 });
                while let Some(d) = day {
                    let time = if start_month && d == d0 {
                        self.time_at_or_after(from.hour(), from.minute(), from.second())
                    } else {
                        self.time_at_or_after(0, 0, 0)
                    };
                    if let Some((h, mi, s)) = time {
                        return NaiveDate::from_ymd_opt(y, m, d)?.and_hms_opt(h, mi, s);
                    }
                    day = next_bit(days, d + 1);
                }
                month = next_bit(self.months.mask, m + 1);
            }
            year = self.next_year(year + 1)?;
        }
        None
    }

    /// The last matching second `<= from`.
    fn last_at_or_before_naive(&self, from: NaiveDateTime) -> Option<NaiveDateTime> {
        let (y0, m0, d0) = (i64::from(from.year()), from.month(), from.day());
        let limit = y0 - i64::from(SEARCH_YEARS);
        let mut year = self.prev_year(y0)?;
        while year >= limit {
            let y = i32::try_from(year).ok()?;
            let last_month = if year == y0 { m0 } else { 12 };
            let mut month = prev_bit(self.months.mask, last_month);
            while let Some(m) = month {
                let start_month = year == y0 && m == m0;
                let days = self.day_mask(y, m);
                let mut day = prev_bit(days, if start_month { d0 } else { 31 });
                while let Some(d) = day {
                    let time = if start_month && d == d0 {
                        self.time_at_or_before(from.hour(), from.minute(), from.second())
                    } else {
                        self.time_at_or_before(23, 59, 59)
                    };
                    if let Some((h, mi, s)) = time {
                        return NaiveDate::from_ymd_opt(y, m, d)?.and_hms_opt(h, mi, s);
                    }
                    day = prev_bit_below(days, d);
                }
                month = prev_bit_below(self.months.mask, m);
            }
            year = self.prev_year(year - 1)?;
        }
        None
    }

    /// `*-*-* 00:00:00`, which parsing and the shorthands start from.
    fn midnight() -> Self {
        CalendarEvent {
            weekdays: ALL_WEEKDAYS,
            years: Vec::new(),
            months: Field::any(MONTH),
            days: Field::any(DAY),
            days_from_end: false,
            hours: Field::single(0),
            minutes: Field::single(0),
            seconds: Field::single(0),
        }
    }

    /// Expands the systemd shorthands (`daily`, ...).
    fn shorthand(name: &str) -> Option<Self> {
        let mut event = CalendarEvent::midnight();
        let items = |values: &[u32]| -> Vec<Item> {
            values
                .iter()
                .map(|&v| Item {
                    start: v,
                    end: v,
                    step: 1,
                })
                .collect()
        };
        match name.to_ascii_lowercase().as_str() {
            "minutely" => {
                event.hours = Field::any(HOUR);
                event.minutes = Field::any(MINUTE);
            }
            "hourly" => event.hours = Field::any(HOUR),
            "daily" => {}
            "weekly" => event.weekdays = 1,
            "monthly" => event.days = Field::single(1),
            "quarterly" => {
                event.months = Field::new(items(&[1, 4, 7, 10]), MONTH, false);
                event.days = Field::single(1);
            }
            "semiannually" => {
                event.months = Field::new(items(&[1, 7]), MONTH, false);
                event.days = Field::single(1);
            }
            "yearly" | "annually" => {
                event.months = Field::single(1);
                event.days = Field::single(1);
            }
            _ => return None,
        }
        Some(event)
    }

    /// Parses an expression (already length-checked and trimmed); the error
    /// says what is wrong, without the input.
    fn parse_inner(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("the expression is empty".into());
        }
        let mut tokens: Vec<&str> = text.split_whitespace().collect();
        if tokens.len() > 1
            && tokens
                .last()
                .is_some_and(|t| t.eq_ignore_ascii_case("utc") || t == &"Z")
        {
            tokens.pop();
        }
        if let [word] = tokens[..] {
            if let Some(event) = CalendarEvent::shorthand(word) {
                return Ok(event);
            }
        }
        let mut event = CalendarEvent::midnight();
        // 0: weekdays, 1: date, 2: time; each part at most once, in order.
        let mut seen: Option<(usize, &str)> = None;
        for (i, &token) in tokens.iter().enumerate() {
            let Some(kind) = part_kind(token) else {
                return Err(format!(
                    "cannot tell what {token:?} is: write weekdays like Mon..Fri, \
                     dates like 2027-01-31 or *-*-01, and times like 04:00 or *:0/15"
                ));
            };
            if kind == 0 && i > 0 && i == tokens.len() - 1 && !token.contains(['.', ',']) {
                if let Err(why) = field::parse_weekdays(token) {
                    return Err(format!(
                        "unexpected {token:?} at the end: all times are UTC, other time \
                         zones are not supported ({why})"
                    ));
                }
            }
            if let Some((prev_kind, prev)) = seen {
                if kind == prev_kind {
                    return Err(format!(
                        "two {} given: {prev:?} and {token:?}",
                        PART_NAMES_PLURAL[kind]
                    ));
                }
                if kind < prev_kind {
                    return Err(format!(
                        "the {} {token:?} must come before the {} {prev:?} \
                         (the order is [WEEKDAYS] [DATE] [TIME])",
                        PART_NAMES[kind], PART_NAMES[prev_kind]
                    ));
                }
            }
            seen = Some((kind, token));
            match kind {
                0 => event.weekdays = field::parse_weekdays(token)?,
                1 => event.parse_date(token)?,
                _ => event.parse_time(token)?,
            }
        }
        // With `~`, a day list covering every day is the same as `*`.
        if event.days_from_end && event.days.is_any() {
            event.days_from_end = false;
        }
        event.check_matches_somewhere()?;
        Ok(event)
    }

    /// `[YEAR-]MONTH-DAY`, or `[YEAR-]MONTH~DAY` counting from the end of
    /// the month.
    fn parse_date(&mut self, token: &str) -> Result<(), String> {
        let (rest, day, from_end) = match token.split_once('~') {
            Some((rest, day)) => (rest, day, true),
            None => match token.rsplit_once('-') {
                Some((rest, day)) => (rest, day, false),
                None => return Err(format!("invalid date {token:?}")),
            },
        };
        let (year, month) = match rest.split_once('-') {
            Some((year, month)) => (Some(year), month),
            None => (None, rest),
        };
        if month.contains(['-', '~']) || day.contains(['-', '~']) {
            return Err(format!(
                "invalid date {token:?}: expected YEAR-MONTH-DAY, MONTH-DAY or \
                 YEAR-MONTH~DAY (ranges are written a..b)"
            ));
        }
        if let Some(year) = year {
            let mut items = field::parse_items(year, YEAR, false)?;
            field::sort_items(&mut items);
            let covers_all = items
                .iter()
                .any(|i| i.start == YEAR.min && i.end == YEAR.max && i.step == 1);
            // `*` or an explicit full range both mean "any year".
            self.years = if covers_all { Vec::new() } else { items };
        }
        self.months = Field::new(field::parse_items(month, MONTH, false)?, MONTH, false);
        self.days = Field::new(field::parse_items(day, DAY, from_end)?, DAY, from_end);
        self.days_from_end = from_end;
        Ok(())
    }

    /// `HOUR:MINUTE[:SECOND]`.
    fn parse_time(&mut self, token: &str) -> Result<(), String> {
        let parts: Vec<&str> = token.split(':').collect();
        let (hour, minute, second) = match parts[..] {
            [h, m] => (h, m, None),
            [h, m, s] => (h, m, Some(s)),
            _ => {
                return Err(format!(
                    "invalid time {token:?}: expected HOUR:MINUTE or HOUR:MINUTE:SECOND"
                ))
            }
        };
        self.hours = Field::new(field::parse_items(hour, HOUR, false)?, HOUR, false);
        self.minutes = Field::new(field::parse_items(minute, MINUTE, false)?, MINUTE, false);
        if let Some(second) = second {
            if second.replace("..", "").contains('.') {
                return Err(format!(
                    "invalid time {token:?}: fractional seconds are not supported"
                ));
            }
            self.seconds = Field::new(field::parse_items(second, SECOND, false)?, SECOND, false);
        }
        Ok(())
    }

    /// Rejects expressions that can never match, such as `*-02-30`.
    ///
    /// Explicit years lie within 1970..=2199 and a year wildcard repeats
    /// every 400 years, so one search from 1970 is exhaustive.
    fn check_matches_somewhere(&self) -> Result<(), String> {
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .ok_or("internal error: no epoch")?;
        if self.first_at_or_after(epoch).is_some() {
            return Ok(());
        }
        // Find out which part is to blame, for the message.
        let mut relaxed = self.clone();
        relaxed.weekdays = ALL_WEEKDAYS;
        relaxed.years.clear();
        if relaxed.first_at_or_after(epoch).is_none() {
            return Err("it never matches: none of its days exists in its months".into());
        }
        relaxed.years.clone_from(&self.years);
        if relaxed.first_at_or_after(epoch).is_none() {
            return Err("it never matches: none of its days exists in its years".into());
        }
        if self.years.is_empty() {
            Err("it never matches: its days never fall on its weekdays".into())
        } else {
            Err("it never matches: its days never fall on its weekdays in its years".into())
        }
    }
}

const PART_NAMES: [&str; 3] = ["weekdays", "date", "time"];
const PART_NAMES_PLURAL: [&str; 3] = ["weekday lists", "dates", "times"];

/// Which part of an expression a token is: weekdays (0), date (1) or time
/// (2); `None` if it looks like none of them.
fn part_kind(token: &str) -> Option<usize> {
    if token.contains(':') {
        Some(2)
    } else if token.starts_with(|c: char| c.is_alphabetic()) {
        Some(0)
    } else if token.contains(['-', '~']) {
        Some(1)
    } else {
        None
    }
}

fn is_leap_year(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Number of days of `month` (1..=12) in `year`.
pub(crate) fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The words a schedule may be (the shorthands, and `every` of an
/// interval), for suggestions.
const KEYWORDS: &[&str] = &[
    "minutely",
    "hourly",
    "daily",
    "weekly",
    "monthly",
    "quarterly",
    "semiannually",
    "yearly",
    "annually",
    "every",
];

/// The keyword `word` is a slip of ("dialy": `daily`): a single word at
/// most two edits away from one, and not far shorter.
fn near_keyword(input: &str) -> Option<&'static str> {
    let word = input.split_whitespace().next()?.to_ascii_lowercase();
    if word.len() < 3 || !word.chars().all(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    KEYWORDS
        .iter()
        .map(|k| (edit_distance(&word, k), *k))
        .filter(|(d, _)| *d > 0 && *d <= 2)
        .min()
        .map(|(_, k)| k)
}

/// Levenshtein distance with adjacent transpositions counted as one edit
/// (optimal string alignment), over bytes: keywords are ASCII.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

impl FromStr for CalendarEvent {
    type Err = Error;

    fn from_str(input: &str) -> Result<Self, Error> {
        check_length(input, "calendar expression")?;
        let invalid = |why: String| Error(format!("invalid calendar expression {input:?}: {why}"));
        let event = CalendarEvent::parse_inner(input.trim()).map_err(|why| {
            match near_keyword(input.trim()) {
                Some(k) => invalid(format!("{why}; did you mean `{k}`?")),
                None => invalid(why),
            }
        })?;
        // The normalized form spells out defaults and pads numbers, so it
        // can be longer than the input; it must parse back, too.
        let normalized = event.to_string().len();
        if normalized > MAX_INPUT_LEN {
            return Err(invalid(format!(
                "its normalized form would be {normalized} bytes long, the maximum is \
                 {MAX_INPUT_LEN}"
            )));
        }
        Ok(event)
    }
}

impl fmt::Display for CalendarEvent {
    /// The normalized form, `[WEEKDAYS ]YEAR-MONTH-DAY HH:MM:SS`, for
    /// example `Mon..Fri *-*-* 22:00:00`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.weekdays != ALL_WEEKDAYS {
            field::write_weekdays(f, self.weekdays)?;
            f.write_str(" ")?;
        }
        field::write_items(f, &self.years, YEAR, false)?;
        f.write_str("-")?;
        field::write_items(f, &self.months.items, MONTH, false)?;
        f.write_str(if self.days_from_end { "~" } else { "-" })?;
        field::write_items(f, &self.days.items, DAY, self.days_from_end)?;
        f.write_str(" ")?;
        field::write_items(f, &self.hours.items, HOUR, false)?;
        f.write_str(":")?;
        field::write_items(f, &self.minutes.items, MINUTE, false)?;
        f.write_str(":")?;
        field::write_items(f, &self.seconds.items, SECOND, false)
    }
}

#[cfg(test)]
mod tests;
