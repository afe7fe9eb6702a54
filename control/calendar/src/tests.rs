use std::time::{Duration, Instant};

use super::*;

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn schedule(s: &str) -> Schedule {
    match s.parse() {
        Ok(schedule) => schedule,
        Err(e) => panic!("{e}"),
    }
}

/// 2026-11-22T10:00:00Z, a Sunday.
const T: &str = "2026-11-22T10:00:00Z";

#[test]
fn intervals() {
    for (input, secs, normalized, next, last) in [
        ("every 5s", 5, "every 5s", "2026-11-22T10:00:05Z", T),
        ("every 15m", 900, "every 15m", "2026-11-22T10:15:00Z", T),
        ("every 2h", 7200, "every 2h", "2026-11-22T12:00:00Z", T),
        (
            "every 1d",
            86_400,
            "every 1d",
            "2026-11-23T00:00:00Z",
            "2026-11-22T00:00:00Z",
        ),
        ("every 90s", 90, "every 1m30s", "2026-11-22T10:01:30Z", T),
        (
            "every 1h30m",
            5400,
            "every 1h30m",
            "2026-11-22T10:30:00Z",
            "2026-11-22T09:00:00Z",
        ),
        (
            "EVERY 1 hour 30 minutes",
            5400,
            "every 1h30m",
            "2026-11-22T10:30:00Z",
            "2026-11-22T09:00:00Z",
        ),
        (
            "every 1w",
            604_800,
            "every 7d",
            "2026-11-26T00:00:00Z",
            "2026-11-19T00:00:00Z",
        ),
        (
            "  every   36h  ",
            129_600,
            "every 1d12h",
            "2026-11-22T12:00:00Z",
            "2026-11-21T00:00:00Z",
        ),
        (
            "every 366d",
            366 * 86_400,
            "every 366d",
            "2027-02-13T00:00:00Z",
            "2026-02-12T00:00:00Z",
        ),
        ("every 1s", 1, "every 1s", "2026-11-22T10:00:01Z", T),
        (
            "every 30m1d",
            88_200,
            "every 1d30m",
            "2026-11-23T02:00:00Z",
            "2026-11-22T01:30:00Z",
        ),
    ] {
        let s = schedule(input);
        assert_eq!(s, Schedule::Interval(Duration::from_secs(secs)), "{input}");
        assert_eq!(s.to_string(), normalized, "{input}");
        assert_eq!(schedule(normalized), s, "{input}");
        assert_eq!(s.next_after(at(T)), Some(at(next)), "{input}");
        assert_eq!(s.last_at_or_before(at(T)), Some(at(last)), "{input}");
        assert!(s.matches(at(next)));
        assert!(!s.matches(at(next) + chrono::Duration::nanoseconds(1)));
    }
}

#[test]
fn interval_slots_are_multiples_since_the_epoch() {
    let s = schedule("every 90s");
    assert_eq!(
        s.next_after(DateTime::UNIX_EPOCH),
        Some(at("1970-01-01T00:01:30Z"))
    );
    assert_eq!(
        s.next_after(at("1969-12-31T23:59:00Z")),
        Some(DateTime::UNIX_EPOCH)
    );
    assert_eq!(
        s.last_at_or_before(at("1969-12-31T23:59:00Z")),
        Some(at("1969-12-31T23:58:30Z"))
    );
    assert_eq!(
        s.next_after(at("2026-11-22T10:01:29.999Z")),
        Some(at("2026-11-22T10:01:30Z"))
    );
    assert_eq!(
        s.last_at_or_before(at("2026-11-22T10:01:29.999Z")),
        Some(at(T))
    );
}

#[test]
fn odd_intervals_built_by_hand() {
    let zero = Schedule::Interval(Duration::ZERO);
    assert_eq!(zero.next_after(at(T)), None);
    assert_eq!(zero.last_at_or_before(at(T)), None);
    assert!(!zero.matches(at(T)));
    assert_eq!(zero.to_string(), "every 0s");

    let half = Schedule::Interval(Duration::from_millis(1500));
    assert_eq!(half.to_string(), "every 1.5s");
    assert_eq!(half.next_after(at(T)), Some(at("2026-11-22T10:00:01.5Z")));

    let huge = Schedule::Interval(Duration::MAX);
    assert_eq!(huge.next_after(at(T)), None);
    assert_eq!(huge.last_at_or_before(at(T)), Some(DateTime::UNIX_EPOCH));
    for t in [DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC] {
        for s in [&zero, &half, &huge, &schedule("every 1s")] {
            let _ = s.next_after(t);
            let _ = s.last_at_or_before(t);
            let _ = s.matches(t);
        }
    }
    assert_eq!(
        schedule("every 1s").next_after(DateTime::<Utc>::MAX_UTC),
        None
    );
}

#[test]
fn interval_errors() {
    let err = |s: &str| match s.parse::<Schedule>() {
        Ok(x) => panic!("{s:?} parsed as {x}"),
        Err(e) => e.to_string(),
    };
    assert_eq!(
        err("every 0s"),
        "invalid interval \"every 0s\": the interval must be at least 1 second"
    );
    assert_eq!(
        err("every 367d"),
        "invalid interval \"every 367d\": 367d is longer than the maximum of 366 days"
    );
    assert_eq!(
        err("every 366d1s"),
        "invalid interval \"every 366d1s\": 366d1s is longer than the maximum of 366 days"
    );
    assert_eq!(
        err("every 99999999999999999999999s"),
        "invalid interval \"every 99999999999999999999999s\": 99999999999999999999999s is \
         longer than the maximum of 366 days"
    );
    assert_eq!(
        err("every"),
        "invalid interval \"every\": the length of the interval is missing (for example: \
         every 15m)"
    );
    assert_eq!(
        err("every 5"),
        "invalid interval \"every 5\": the unit after 5 is missing (use s, m, h or d)"
    );
    assert_eq!(
        err("every 5x"),
        "invalid interval \"every 5x\": unknown unit \"x\" (use s, m, h or d)"
    );
    assert_eq!(
        err("every 1h1h"),
        "invalid interval \"every 1h1h\": the unit \"h\" is given twice"
    );
    assert_eq!(
        err("every -5s"),
        "invalid interval \"every -5s\": expected a number at \"-5s\" (for example: every \
         15m, every 1h30m)"
    );
    for bad in [
        "every 1.5h",
        "every 5 s s",
        "every s",
        "every 5sec5",
        "every 0.5s",
        "every ½h",
    ] {
        assert!(bad.parse::<Schedule>().is_err(), "{bad:?}");
    }
    let long = format!("every {}5s", " ".repeat(MAX_INPUT_LEN));
    assert_eq!(
        err(&long),
        "invalid schedule: it is 264 bytes long, the maximum is 256"
    );
}

#[test]
fn calendar_schedules() {
    let s = schedule("Mon..Fri 22:00");
    assert!(matches!(s, Schedule::Calendar(_)));
    assert_eq!(s.to_string(), "Mon..Fri *-*-* 22:00:00");
    assert_eq!(s.next_after(at(T)), Some(at("2026-11-23T22:00:00Z")));
    assert_eq!(s.last_at_or_before(at(T)), Some(at("2026-11-20T22:00:00Z")));
    assert_eq!(
        "Mon..Fri 25:00"
            .parse::<Schedule>()
            .unwrap_err()
            .to_string(),
        "invalid calendar expression \"Mon..Fri 25:00\": hour 25 is out of range 0..=23"
    );
    // "every" must be a word of its own.
    assert!("everyday".parse::<Schedule>().is_err());
    assert_eq!(
        schedule("daily"),
        Schedule::from(schedule("*-*-*").clone_event())
    );
}

impl Schedule {
    fn clone_event(&self) -> CalendarEvent {
        match self {
            Schedule::Calendar(e) => e.clone(),
            Schedule::Interval(_) => panic!("not a calendar event"),
        }
    }
}

/// The scheduler's load: 10,000 sources, each asking for its next slot.
/// The target is under 100 ms in total in release builds; the bound here is
/// loose because the test machine is shared.
#[test]
fn ten_thousand_next_after_calls_are_fast() {
    let exprs = [
        "Mon..Fri 22:00",
        "*-*-* 02:30",
        "Sat,Sun 03:30:15",
        "*:0/15",
        "*-*-01 04:00",
        "Mon *-*-* 0/6:00",
        "*-02-29",
        "Mon *-02-29",
        "Mon *-*~07/1 23:00",
        "every 1h30m",
        "2027-01-01 00:00",
        "weekly",
    ];
    let schedules: Vec<Schedule> = exprs.iter().map(|e| schedule(e)).collect();
    let t = at(T);
    let start = Instant::now();
    let mut found = 0usize;
    for i in 0..10_000 {
        let s = &schedules[i % schedules.len()];
        let t = t + chrono::Duration::seconds(i as i64 * 7919);
        found += usize::from(s.next_after(t).is_some());
        found += usize::from(s.last_at_or_before(t).is_some());
    }
    let elapsed = start.elapsed();
    eprintln!("10,000 next_after + last_at_or_before: {elapsed:?}");
    assert!(found > 19_000);
    if !cfg!(debug_assertions) {
        assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");
    }
}

#[test]
fn slips_of_keywords_get_a_suggestion() {
    for (typed, meant) in [
        ("dialy", "daily"),
        ("weekyl", "weekly"),
        ("hourl", "hourly"),
        ("Montly", "monthly"),
        ("evry 5m", "every"),
    ] {
        let e = typed.parse::<Schedule>().unwrap_err().to_string();
        assert!(
            e.contains(&format!("did you mean `{meant}`?")),
            "{typed}: {e}"
        );
    }
    // Nothing near: no guess.
    let e = "tomorrow".parse::<Schedule>().unwrap_err().to_string();
    assert!(!e.contains("did you mean"), "{e}");
    let e = "Mon..Fri 25:00"
        .parse::<Schedule>()
        .unwrap_err()
        .to_string();
    assert!(!e.contains("did you mean"), "{e}");
}
