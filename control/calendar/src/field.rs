//! Building blocks shared by calendar events and windows: numeric value
//! lists (`5`, `1..5`, `0/15`, `8..18/2`, `*`), weekday lists (`Mon..Fri,Sun`),
//! and the bit-set helpers the searches are built on.

use std::fmt;

/// Limits and display width of one numeric field of a calendar event.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    /// Name used in error messages ("hour 25 is out of range 0..=23").
    pub name: &'static str,
    pub min: u32,
    pub max: u32,
    /// Zero-padded width in the normalized form.
    pub width: usize,
}

/// Years an expression may name. Wildcard years match any year.
pub(crate) const YEAR: Bounds = Bounds {
    name: "year",
    min: 1970,
    max: 2199,
    width: 4,
};
pub(crate) const MONTH: Bounds = Bounds {
    name: "month",
    min: 1,
    max: 12,
    width: 2,
};
pub(crate) const DAY: Bounds = Bounds {
    name: "day",
    min: 1,
    max: 31,
    width: 2,
};
pub(crate) const HOUR: Bounds = Bounds {
    name: "hour",
    min: 0,
    max: 23,
    width: 2,
};
pub(crate) const MINUTE: Bounds = Bounds {
    name: "minute",
    min: 0,
    max: 59,
    width: 2,
};
pub(crate) const SECOND: Bounds = Bounds {
    name: "second",
    min: 0,
    max: 59,
    width: 2,
};

/// One entry of a comma-separated list: the values `start..=end` taken every
/// `step`.
///
/// Normally the values are `start, start + step, ...` (anchored at `start`).
/// For days counted from the end of the month (`~`), the anchor is `end`
/// instead: `end, end - step, ...`, so that a repetition always runs towards
/// the end of the month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Item {
    pub start: u32,
    pub end: u32,
    pub step: u32,
}

impl Item {
    /// Calls `f` with every value of the item.
    pub fn for_each(self, from_end: bool, mut f: impl FnMut(u32)) {
        // Both `step >= 1` and `start <= end` hold by construction.
        let count = (self.end - self.start) / self.step;
        for k in 0..=count {
            if from_end {
                f(self.end - k * self.step);
            } else {
                f(self.start + k * self.step);
            }
        }
    }

    /// The smallest value `>= v`, for forward items (years).
    pub fn next_at_or_after(self, v: i64) -> Option<i64> {
        let (start, end, step) = (
            i64::from(self.start),
            i64::from(self.end),
            i64::from(self.step),
        );
        if v <= start {
            return Some(start);
        }
        let k = (v - start + step - 1) / step;
        let candidate = start + k * step;
        (candidate <= end).then_some(candidate)
    }

    /// The largest value `<= v`, for forward items (years).
    pub fn prev_at_or_before(self, v: i64) -> Option<i64> {
        let (start, end, step) = (
            i64::from(self.start),
            i64::from(self.end),
            i64::from(self.step),
        );
        if v < start {
            return None;
        }
        let top = v.min(end);
        Some(start + (top - start) / step * step)
    }

    /// Writes the item in normalized form.
    fn write(self, f: &mut fmt::Formatter<'_>, bounds: Bounds, from_end: bool) -> fmt::Result {
        let w = bounds.width;
        if self.start == self.end {
            write!(f, "{:0w$}", self.start)
        } else if self.step == 1 {
            write!(f, "{:0w$}..{:0w$}", self.start, self.end)
        } else if from_end && self.start == 1 {
            write!(f, "{:0w$}/{}", self.end, self.step)
        } else if !from_end && self.end == bounds.max {
            write!(f, "{:0w$}/{}", self.start, self.step)
        } else {
            write!(f, "{:0w$}..{:0w$}/{}", self.start, self.end, self.step)
        }
    }
}

/// Writes a list of items, or `*` for an empty list.
pub(crate) fn write_items(
    f: &mut fmt::Formatter<'_>,
    items: &[Item],
    bounds: Bounds,
    from_end: bool,
) -> fmt::Result {
    if items.is_empty() {
        return f.write_str("*");
    }
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(",")?;
        }
        item.write(f, bounds, from_end)?;
    }
    Ok(())
}

/// A field whose values fit in a `u64` bit set (everything but the year).
///
/// `items` is the list as written, kept for display; it is empty for `*`
/// (and for any list that covers the whole range). `mask` has bit `v` set
/// for every value `v` of the field.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Field {
    pub items: Vec<Item>,
    pub mask: u64,
}

impl Field {
    /// The wildcard `*`.
    pub fn any(bounds: Bounds) -> Self {
        Field {
            items: Vec::new(),
            mask: full_mask(bounds),
        }
    }

    /// A field with the single value `v`.
    pub fn single(v: u32) -> Self {
        Field {
            items: vec![Item {
                start: v,
                end: v,
                step: 1,
            }],
            mask: 1 << v,
        }
    }

    /// Builds the bit set of `items`; the list is sorted and deduplicated,
    /// and a list covering every value is normalized to `*`.
    pub fn new(mut items: Vec<Item>, bounds: Bounds, from_end: bool) -> Self {
        sort_items(&mut items);
        let mut mask = 0u64;
        for item in &items {
            item.for_each(from_end, |v| mask |= 1 << v);
        }
        if items.is_empty() || mask == full_mask(bounds) {
            Field::any(bounds)
        } else {
            Field { items, mask }
        }
    }

    pub fn is_any(&self) -> bool {
        self.items.is_empty()
    }

    pub fn contains(&self, v: u32) -> bool {
        v < 64 && self.mask & (1 << v) != 0
    }
}

/// Sorts a list and drops repeated entries (`5,1,5` becomes `1,5`).
pub(crate) fn sort_items(items: &mut Vec<Item>) {
    items.sort_unstable_by_key(|i| (i.start, i.end, i.step));
    items.dedup();
}

/// All values of `bounds` (which must lie within 0..=63).
pub(crate) fn full_mask(bounds: Bounds) -> u64 {
    let upper = if bounds.max >= 63 {
        u64::MAX
    } else {
        (1u64 << (bounds.max + 1)) - 1
    };
    upper & !((1u64 << bounds.min) - 1)
}

/// The smallest set bit `>= from`.
pub(crate) fn next_bit(mask: u64, from: u32) -> Option<u32> {
    if from >= 64 {
        return None;
    }
    let rest = mask & (u64::MAX << from);
    (rest != 0).then(|| rest.trailing_zeros())
}

/// The largest set bit `<= upto`.
pub(crate) fn prev_bit(mask: u64, upto: u32) -> Option<u32> {
    let rest = if upto >= 63 {
        mask
    } else {
        mask & ((1u64 << (upto + 1)) - 1)
    };
    (rest != 0).then(|| 63 - rest.leading_zeros())
}

/// The largest set bit `< below`.
pub(crate) fn prev_bit_below(mask: u64, below: u32) -> Option<u32> {
    below.checked_sub(1).and_then(|upto| prev_bit(mask, upto))
}

/// Parses a decimal number (ASCII digits only).
fn parse_number(text: &str, bounds: Bounds) -> Result<u32, String> {
    if text.is_empty() {
        return Err(format!("a number is missing in the {} field", bounds.name));
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "expected a number in the {} field, found {text:?}",
            bounds.name
        ));
    }
    // More than 9 digits cannot be a valid value and might overflow u32.
    if text.len() > 9 {
        return Err(format!("{} {text} is out of range", bounds.name));
    }
    text.parse::<u32>()
        .map_err(|_| format!("{} {text} is out of range", bounds.name))
}

/// Parses a value and checks it against the field's range.
fn parse_value(text: &str, bounds: Bounds) -> Result<u32, String> {
    let v = parse_number(text, bounds)?;
    if v < bounds.min || v > bounds.max {
        return Err(format!(
            "{} {v} is out of range {}..={}",
            bounds.name, bounds.min, bounds.max
        ));
    }
    Ok(v)
}

/// Parses a comma-separated list of `*`, `a`, `a..b`, `a/s`, `a..b/s`, `*/s`.
///
/// `from_end` selects the `~` reading of days (counted from the end of the
/// month), where `a/s` means `a, a - s, ...` down to 1, that is `1..a/s`
/// anchored at `a`.
pub(crate) fn parse_items(text: &str, bounds: Bounds, from_end: bool) -> Result<Vec<Item>, String> {
    if text.is_empty() {
        return Err(format!("the {} is missing", bounds.name));
    }
    let mut items = Vec::new();
    for part in text.split(',') {
        if part.is_empty() {
            return Err(format!("empty entry in the {} list {text:?}", bounds.name));
        }
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => {
                let step = parse_number(step, bounds)
                    .map_err(|_| format!("invalid step {step:?} in the {} field", bounds.name))?;
                if step == 0 {
                    return Err(format!("the step in {part:?} must be at least 1"));
                }
                (range, Some(step))
            }
            None => (part, None),
        };
        let (start, end) = if range == "*" {
            (bounds.min, bounds.max)
        } else if let Some((a, b)) = range.split_once("..") {
            let (a, b) = (parse_value(a, bounds)?, parse_value(b, bounds)?);
            if a > b {
                return Err(format!(
                    "the {} range {a}..{b} runs backwards (write the smaller value first)",
                    bounds.name
                ));
            }
            (a, b)
        } else {
            let v = parse_value(range, bounds)?;
            match (step, from_end) {
                (None, _) => (v, v),
                // `a/s`: every s-th value from a to the end of the range.
                (Some(_), false) => (v, bounds.max),
                // `~a/s`: from the a-th last day every s-th day to the last.
                (Some(_), true) => (bounds.min, v),
            }
        };
        let step = step.unwrap_or(1);
        // A step past the end leaves a single value.
        let item = if end - start < step && step > 1 {
            let single = if from_end { end } else { start };
            Item {
                start: single,
                end: single,
                step: 1,
            }
        } else {
            Item {
                start,
                end,
                step: if start == end { 1 } else { step },
            }
        };
        items.push(item);
    }
    Ok(items)
}

/// All seven weekdays; bit 0 is Monday.
pub(crate) const ALL_WEEKDAYS: u8 = 0x7f;

const WEEKDAY_NAMES: [(&str, &str); 7] = [
    ("mon", "monday"),
    ("tue", "tuesday"),
    ("wed", "wednesday"),
    ("thu", "thursday"),
    ("fri", "friday"),
    ("sat", "saturday"),
    ("sun", "sunday"),
];

const WEEKDAY_SHORT: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// Parses a weekday name (`Mon` or `Monday`, any case) to 0 (Monday) ..= 6.
fn parse_weekday(text: &str) -> Result<u32, String> {
    let lower = text.to_ascii_lowercase();
    if let Some(index) = WEEKDAY_NAMES
        .iter()
        .position(|&(short, long)| lower == short || lower == long)
    {
        // At most 6.
        return Ok(index as u32);
    }
    let hint = if text.contains('-') {
        " (ranges are written Mon..Fri)"
    } else {
        " (expected Mon, Tue, Wed, Thu, Fri, Sat, Sun or the full names)"
    };
    Err(format!("unknown weekday {text:?}{hint}"))
}

/// Parses `Mon..Fri,Sun` into a bit set. A range may wrap around the end
/// of the week: `Fri..Mon` is Friday, Saturday, Sunday and Monday.
pub(crate) fn parse_weekdays(text: &str) -> Result<u8, String> {
    let mut mask = 0u8;
    for part in text.split(',') {
        if part.is_empty() {
            return Err(format!("empty entry in the weekday list {text:?}"));
        }
        match part.split_once("..") {
            Some((a, b)) => {
                let (a, b) = (parse_weekday(a)?, parse_weekday(b)?);
                let mut d = a;
                loop {
                    mask |= 1 << d;
                    if d == b {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            }
            None => mask |= 1 << parse_weekday(part)?,
        }
    }
    Ok(mask)
}

/// Writes a weekday set in normalized form: runs of three or more days as
/// ranges (`Mon..Fri`), in Monday-first order (`Mon,Fri..Sun`).
pub(crate) fn write_weekdays(f: &mut fmt::Formatter<'_>, mask: u8) -> fmt::Result {
    let mut first = true;
    let mut d = 0usize;
    while d < 7 {
        if mask & (1 << d) == 0 {
            d += 1;
            continue;
        }
        let mut end = d;
        while end + 1 < 7 && mask & (1 << (end + 1)) != 0 {
            end += 1;
        }
        let mut emit = |f: &mut fmt::Formatter<'_>, s: &str| -> fmt::Result {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            f.write_str(s)
        };
        if end - d >= 2 {
            emit(f, WEEKDAY_SHORT[d])?;
            f.write_str("..")?;
            f.write_str(WEEKDAY_SHORT[end])?;
        } else {
            for day in WEEKDAY_SHORT.iter().take(end + 1).skip(d) {
                emit(f, day)?;
            }
        }
        d = end + 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits() {
        let m = (1 << 3) | (1 << 10) | (1 << 63);
        assert_eq!(next_bit(m, 0), Some(3));
        assert_eq!(next_bit(m, 3), Some(3));
        assert_eq!(next_bit(m, 4), Some(10));
        assert_eq!(next_bit(m, 11), Some(63));
        assert_eq!(next_bit(m, 64), None);
        assert_eq!(next_bit(0, 0), None);
        assert_eq!(prev_bit(m, 63), Some(63));
        assert_eq!(prev_bit(m, 62), Some(10));
        assert_eq!(prev_bit(m, 3), Some(3));
        assert_eq!(prev_bit(m, 2), None);
        assert_eq!(prev_bit_below(m, 0), None);
        assert_eq!(prev_bit_below(m, 4), Some(3));
        assert_eq!(full_mask(HOUR), (1 << 24) - 1);
        assert_eq!(full_mask(DAY), ((1 << 32) - 1) & !1);
        assert_eq!(full_mask(MINUTE).count_ones(), 60);
    }

    fn values(text: &str, bounds: Bounds, from_end: bool) -> Vec<u32> {
        let mut v = Vec::new();
        for item in parse_items(text, bounds, from_end).unwrap() {
            item.for_each(from_end, |x| v.push(x));
        }
        v.sort_unstable();
        v.dedup();
        v
    }

    #[test]
    fn items() {
        assert_eq!(values("0/15", MINUTE, false), [0, 15, 30, 45]);
        assert_eq!(values("*/20", MINUTE, false), [0, 20, 40]);
        assert_eq!(values("8..18/4", HOUR, false), [8, 12, 16]);
        assert_eq!(values("1,5..7,3", DAY, false), [1, 3, 5, 6, 7]);
        assert_eq!(values("1/7", DAY, false), [1, 8, 15, 22, 29]);
        // From the end: the 7th-last day and every 3rd day after it.
        assert_eq!(values("7/3", DAY, true), [1, 4, 7]);
        assert_eq!(values("2..8/3", DAY, true), [2, 5, 8]);
        assert_eq!(values("1..3", DAY, true), [1, 2, 3]);
    }

    #[test]
    fn item_errors() {
        let err = |t: &str, b| parse_items(t, b, false).unwrap_err();
        assert_eq!(err("25", HOUR), "hour 25 is out of range 0..=23");
        assert_eq!(
            err("5..3", HOUR),
            "the hour range 5..3 runs backwards (write the smaller value first)"
        );
        assert_eq!(err("0/0", MINUTE), "the step in \"0/0\" must be at least 1");
        assert_eq!(
            err("1,,2", MINUTE),
            "empty entry in the minute list \"1,,2\""
        );
        assert_eq!(
            err("x", MINUTE),
            "expected a number in the minute field, found \"x\""
        );
        assert_eq!(
            err("99999999999", MINUTE),
            "minute 99999999999 is out of range"
        );
        assert_eq!(err("", MINUTE), "the minute is missing");
        assert_eq!(
            err("1..", MINUTE),
            "a number is missing in the minute field"
        );
        assert_eq!(err("1969", YEAR), "year 1969 is out of range 1970..=2199");
    }

    #[test]
    fn year_items() {
        let item = Item {
            start: 2026,
            end: 2199,
            step: 3,
        };
        assert_eq!(item.next_at_or_after(2000), Some(2026));
        assert_eq!(item.next_at_or_after(2027), Some(2029));
        assert_eq!(item.next_at_or_after(2029), Some(2029));
        assert_eq!(item.next_at_or_after(2199), None);
        assert_eq!(item.prev_at_or_before(2025), None);
        assert_eq!(item.prev_at_or_before(2028), Some(2026));
        assert_eq!(item.prev_at_or_before(3000), Some(2197));
    }

    struct Weekdays(u8);
    impl fmt::Display for Weekdays {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write_weekdays(f, self.0)
        }
    }

    #[test]
    fn weekdays() {
        let norm = |t: &str| Weekdays(parse_weekdays(t).unwrap()).to_string();
        assert_eq!(norm("Mon..Fri"), "Mon..Fri");
        assert_eq!(norm("monday,TUESDAY,wed"), "Mon..Wed");
        assert_eq!(norm("Sat,Sun"), "Sat,Sun");
        assert_eq!(norm("Fri..Mon"), "Mon,Fri..Sun");
        assert_eq!(norm("Sun,Mon..Tue,Thu"), "Mon,Tue,Thu,Sun");
        assert_eq!(norm("Sun..Sat"), "Mon..Sun");
        assert_eq!(
            parse_weekdays("Mon-Fri").unwrap_err(),
            "unknown weekday \"Mon-Fri\" (ranges are written Mon..Fri)"
        );
        assert!(parse_weekdays("Mon,").is_err());
        assert!(parse_weekdays("Mo").is_err());
    }
}
