use super::*;
use crate::MAX_INPUT_LEN;

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn event(s: &str) -> CalendarEvent {
    match s.parse() {
        Ok(e) => e,
        Err(e) => panic!("{e}"),
    }
}

/// 2026-11-22T10:00:00Z, a Sunday.
const T: &str = "2026-11-22T10:00:00Z";

/// Checks `next_after(from)` and `last_at_or_before(from)` of `expr`.
#[track_caller]
fn check(expr: &str, from: &str, next: Option<&str>, last: Option<&str>) {
    let e = event(expr);
    let from = at(from);
    assert_eq!(e.next_after(from), next.map(at), "next_after of {expr:?}");
    assert_eq!(
        e.last_at_or_before(from),
        last.map(at),
        "last_at_or_before of {expr:?}"
    );
    for slot in [e.next_after(from), e.last_at_or_before(from)]
        .into_iter()
        .flatten()
    {
        assert!(e.matches(slot), "{expr:?} should match {slot}");
    }
}

#[test]
fn brief_examples() {
    check(
        "Mon..Fri 22:00",
        T,
        Some("2026-11-23T22:00:00Z"),
        Some("2026-11-20T22:00:00Z"),
    );
    check(
        "*-*-* 02:30",
        T,
        Some("2026-11-23T02:30:00Z"),
        Some("2026-11-22T02:30:00Z"),
    );
    check(
        "Sat,Sun 03:30:15",
        T,
        Some("2026-11-28T03:30:15Z"),
        Some("2026-11-22T03:30:15Z"),
    );
    check(
        "*:0/15",
        T,
        Some("2026-11-22T10:15:00Z"),
        Some("2026-11-22T10:00:00Z"),
    );
    check(
        "*:0/15",
        "2026-11-22T23:59:59Z",
        Some("2026-11-23T00:00:00Z"),
        Some("2026-11-22T23:45:00Z"),
    );
    check(
        "*-*-01 04:00",
        T,
        Some("2026-12-01T04:00:00Z"),
        Some("2026-11-01T04:00:00Z"),
    );
    check("2027-01-01 00:00", T, Some("2027-01-01T00:00:00Z"), None);
    check(
        "2027-01-01 00:00",
        "2027-01-01T00:00:00Z",
        None,
        Some("2027-01-01T00:00:00Z"),
    );
    check(
        "Mon *-*-* 0/6:00",
        T,
        Some("2026-11-23T00:00:00Z"),
        Some("2026-11-16T18:00:00Z"),
    );
    check(
        "Mon *-*-* 0/6:00",
        "2026-11-23T00:00:00Z",
        Some("2026-11-23T06:00:00Z"),
        Some("2026-11-23T00:00:00Z"),
    );
    check(
        "*-*-1/7",
        T,
        Some("2026-11-29T00:00:00Z"),
        Some("2026-11-22T00:00:00Z"),
    );
    check(
        "*-*-1/7",
        "2026-11-29T00:00:00Z",
        Some("2026-12-01T00:00:00Z"),
        Some("2026-11-29T00:00:00Z"),
    );
}

#[test]
fn strictly_after_and_at_or_before() {
    check(
        "*-*-* 10:00",
        T,
        Some("2026-11-23T10:00:00Z"),
        Some("2026-11-22T10:00:00Z"),
    );
    // Fractions of a second: slots are whole seconds.
    check(
        "*:*:*",
        "2026-11-22T10:00:00.5Z",
        Some("2026-11-22T10:00:01Z"),
        Some("2026-11-22T10:00:00Z"),
    );
    check(
        "*-*-* 10:00",
        "2026-11-22T09:59:59.999999999Z",
        Some("2026-11-22T10:00:00Z"),
        Some("2026-11-21T10:00:00Z"),
    );
    assert!(!event("*:*:*").matches(at("2026-11-22T10:00:00.5Z")));
}

#[test]
fn shorthands() {
    check(
        "minutely",
        "2026-11-22T10:00:30Z",
        Some("2026-11-22T10:01:00Z"),
        Some("2026-11-22T10:00:00Z"),
    );
    check(
        "hourly",
        T,
        Some("2026-11-22T11:00:00Z"),
        Some("2026-11-22T10:00:00Z"),
    );
    check(
        "daily",
        T,
        Some("2026-11-23T00:00:00Z"),
        Some("2026-11-22T00:00:00Z"),
    );
    check(
        "weekly",
        T,
        Some("2026-11-23T00:00:00Z"),
        Some("2026-11-16T00:00:00Z"),
    );
    check(
        "monthly",
        T,
        Some("2026-12-01T00:00:00Z"),
        Some("2026-11-01T00:00:00Z"),
    );
    check(
        "quarterly",
        T,
        Some("2027-01-01T00:00:00Z"),
        Some("2026-10-01T00:00:00Z"),
    );
    check(
        "semiannually",
        T,
        Some("2027-01-01T00:00:00Z"),
        Some("2026-07-01T00:00:00Z"),
    );
    for yearly in ["yearly", "annually", "Yearly"] {
        check(
            yearly,
            T,
            Some("2027-01-01T00:00:00Z"),
            Some("2026-01-01T00:00:00Z"),
        );
    }
    assert_eq!(event("daily"), event("*-*-* 00:00:00"));
    assert_eq!(event("weekly"), event("Mon"));
    assert_eq!(event("minutely"), event("*:*"));
    assert_eq!(event("hourly"), event("*:00"));
    assert_eq!(event("monthly"), event("*-*-01"));
    assert_eq!(event("quarterly"), event("*-1,4,7,10-1"));
    assert_eq!(event("yearly"), event("01-01"));
}

#[test]
fn month_ends_and_leap_days() {
    check(
        "*-02-29",
        T,
        Some("2028-02-29T00:00:00Z"),
        Some("2024-02-29T00:00:00Z"),
    );
    // 2100 is not a leap year.
    check(
        "*-02-29 12:00",
        "2096-03-01T00:00:00Z",
        Some("2104-02-29T12:00:00Z"),
        Some("2096-02-29T12:00:00Z"),
    );
    check(
        "*-*-31",
        T,
        Some("2026-12-31T00:00:00Z"),
        Some("2026-10-31T00:00:00Z"),
    );
    check(
        "*-*-31",
        "2027-01-31T00:00:00Z",
        Some("2027-03-31T00:00:00Z"),
        Some("2027-01-31T00:00:00Z"),
    );
    check(
        "*-*-30",
        "2027-01-30T00:00:00Z",
        Some("2027-03-30T00:00:00Z"),
        Some("2027-01-30T00:00:00Z"),
    );
    // Mondays in February 29: 2016, 2044.
    check(
        "Mon *-02-29",
        T,
        Some("2044-02-29T00:00:00Z"),
        Some("2016-02-29T00:00:00Z"),
    );
    check("Fri 2027-01-01", T, Some("2027-01-01T00:00:00Z"), None);
}

#[test]
fn days_from_the_end() {
    check(
        "*-*~01",
        T,
        Some("2026-11-30T00:00:00Z"),
        Some("2026-10-31T00:00:00Z"),
    );
    check(
        "*-*~1 23:00",
        "2028-02-01T00:00:00Z",
        Some("2028-02-29T23:00:00Z"),
        Some("2028-01-31T23:00:00Z"),
    );
    check(
        "*-02~01",
        "2027-01-01T00:00:00Z",
        Some("2027-02-28T00:00:00Z"),
        Some("2026-02-28T00:00:00Z"),
    );
    check(
        "*-02~03",
        "2028-01-01T00:00:00Z",
        Some("2028-02-27T00:00:00Z"),
        Some("2027-02-26T00:00:00Z"),
    );
    // The last Monday of the month.
    check(
        "Mon *-*~07/1",
        T,
        Some("2026-11-30T00:00:00Z"),
        Some("2026-10-26T00:00:00Z"),
    );
    check(
        "Mon *-*~1..7 04:00",
        "2026-11-30T04:00:00Z",
        Some("2026-12-28T04:00:00Z"),
        Some("2026-11-30T04:00:00Z"),
    );
    // ~31 is the 31st-last day: the 1st of 31-day months only.
    check(
        "*-*~31",
        T,
        Some("2026-12-01T00:00:00Z"),
        Some("2026-10-01T00:00:00Z"),
    );
    assert_eq!(event("*-*~1..31"), event("*-*-*"));
}

#[test]
fn years() {
    check("2020-*-* 00:00", T, None, Some("2020-12-31T00:00:00Z"));
    check(
        "2025,2027..2029-06-15",
        T,
        Some("2027-06-15T00:00:00Z"),
        Some("2025-06-15T00:00:00Z"),
    );
    check(
        "2024/4-01-01",
        T,
        Some("2028-01-01T00:00:00Z"),
        Some("2024-01-01T00:00:00Z"),
    );
    check(
        "2199-12-31 23:59:59",
        "2199-12-31T23:59:59Z",
        None,
        Some("2199-12-31T23:59:59Z"),
    );
    check(
        "1970-01-01",
        "1969-12-31T23:59:59Z",
        Some("1970-01-01T00:00:00Z"),
        None,
    );
}

#[test]
fn year_rollover() {
    check(
        "*-12-31 23:59:59",
        "2026-12-31T23:59:59Z",
        Some("2027-12-31T23:59:59Z"),
        Some("2026-12-31T23:59:59Z"),
    );
    check(
        "daily",
        "2026-12-31T12:00:00Z",
        Some("2027-01-01T00:00:00Z"),
        Some("2026-12-31T00:00:00Z"),
    );
    check(
        "*-*-* 23:59:59",
        "2027-01-01T00:00:00Z",
        Some("2027-01-01T23:59:59Z"),
        Some("2026-12-31T23:59:59Z"),
    );
    check(
        "Mon..Fri 22:00",
        "2027-01-01T23:00:00Z", // a Friday
        Some("2027-01-04T22:00:00Z"),
        Some("2027-01-01T22:00:00Z"),
    );
}

#[test]
fn time_fields() {
    check(
        "*-*-* 8..18/4:30",
        "2026-11-22T16:31:00Z",
        Some("2026-11-23T08:30:00Z"),
        Some("2026-11-22T16:30:00Z"),
    );
    check(
        "*:5,35:10,50",
        "2026-11-22T10:35:50Z",
        Some("2026-11-22T11:05:10Z"),
        Some("2026-11-22T10:35:50Z"),
    );
    check(
        "*:5,35:10,50",
        "2026-11-22T10:35:49Z",
        Some("2026-11-22T10:35:50Z"),
        Some("2026-11-22T10:35:10Z"),
    );
    check(
        "0..2,22..23:0/20",
        "2026-11-22T03:00:00Z",
        Some("2026-11-22T22:00:00Z"),
        Some("2026-11-22T02:40:00Z"),
    );
}

#[test]
fn utc_suffix() {
    assert_eq!(event("Mon..Fri 22:00 UTC"), event("Mon..Fri 22:00"));
    assert_eq!(event("daily"), event("00:00 utc"));
    assert_eq!(event("daily UTC"), event("daily"));
    assert_eq!(event("*:0/15 Z"), event("*:0/15"));
}

#[test]
fn normalized_form() {
    for (input, normalized) in [
        ("Mon..Fri 22:00", "Mon..Fri *-*-* 22:00:00"),
        ("*-*-* 02:30", "*-*-* 02:30:00"),
        ("Sat,Sun 03:30:15", "Sat,Sun *-*-* 03:30:15"),
        ("*:0/15", "*-*-* *:00/15:00"),
        ("*:*/15", "*-*-* *:00/15:00"),
        ("*:0..59/15", "*-*-* *:00/15:00"),
        ("*-*-01 04:00", "*-*-01 04:00:00"),
        ("2027-01-01 00:00", "2027-01-01 00:00:00"),
        ("Mon *-*-* 0/6:00", "Mon *-*-* 00/6:00:00"),
        ("*-*-1/7", "*-*-01/7 00:00:00"),
        ("daily", "*-*-* 00:00:00"),
        ("weekly", "Mon *-*-* 00:00:00"),
        ("minutely", "*-*-* *:*:00"),
        ("quarterly", "*-01,04,07,10-01 00:00:00"),
        ("12-24 18:00", "*-12-24 18:00:00"),
        ("*-*~1", "*-*~01 00:00:00"),
        ("Mon *-*~7/1", "Mon *-*~01..07 00:00:00"),
        ("Mon *-*~7/2", "Mon *-*~07/2 00:00:00"),
        ("*-*~2..8/3", "*-*~02..08/3 00:00:00"),
        ("monday,TUE,wed  8..18/2:0", "Mon..Wed *-*-* 08..18/2:00:00"),
        ("*:0..59", "*-*-* *:*:00"),
        ("*:*,5", "*-*-* *:*:00"),
        ("1970..2199-1-1", "*-01-01 00:00:00"),
        ("2026/2-1-1", "2026/2-01-01 00:00:00"),
        ("2026..2030/2-1-1", "2026..2030/2-01-01 00:00:00"),
        ("Fri..Mon 1:2:3", "Mon,Fri..Sun *-*-* 01:02:03"),
        ("*-*-5/100", "*-*-05 00:00:00"),
        ("  daily  ", "*-*-* 00:00:00"),
        ("*:45,0/15,5,5", "*-*-* *:00/15,05,45:00"),
        ("2029,2027-1-1", "2027,2029-01-01 00:00:00"),
    ] {
        let e = event(input);
        assert_eq!(e.to_string(), normalized, "{input:?}");
        assert_eq!(event(normalized), e, "{input:?} round trip");
    }
}

#[track_caller]
fn error(input: &str) -> String {
    match input.parse::<CalendarEvent>() {
        Ok(e) => panic!("{input:?} parsed as {e}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn error_messages() {
    for (input, message) in [
        (
            "Mon..Fri 25:00",
            "invalid calendar expression \"Mon..Fri 25:00\": hour 25 is out of range 0..=23",
        ),
        (
            "*-13-01",
            "invalid calendar expression \"*-13-01\": month 13 is out of range 1..=12",
        ),
        (
            "*-02-30",
            "invalid calendar expression \"*-02-30\": it never matches: none of its days \
             exists in its months",
        ),
        (
            "2100-02-29",
            "invalid calendar expression \"2100-02-29\": it never matches: none of its days \
             exists in its years",
        ),
        (
            "Mon 2027-01-01",
            "invalid calendar expression \"Mon 2027-01-01\": it never matches: its days never \
             fall on its weekdays in its years",
        ),
        (
            "Mon-Fri 22:00",
            "invalid calendar expression \"Mon-Fri 22:00\": unknown weekday \"Mon-Fri\" \
             (ranges are written Mon..Fri)",
        ),
        (
            "22:00 Mon",
            "invalid calendar expression \"22:00 Mon\": the weekdays \"Mon\" must come before \
             the time \"22:00\" (the order is [WEEKDAYS] [DATE] [TIME])",
        ),
        (
            "22:00 Europe/Berlin",
            "invalid calendar expression \"22:00 Europe/Berlin\": unexpected \"Europe/Berlin\" \
             at the end: all times are UTC, other time zones are not supported (unknown \
             weekday \"Europe/Berlin\" (expected Mon, Tue, Wed, Thu, Fri, Sat, Sun or the \
             full names))",
        ),
        (
            "10:00 12:00",
            "invalid calendar expression \"10:00 12:00\": two times given: \"10:00\" and \
             \"12:00\"",
        ),
        (
            "",
            "invalid calendar expression \"\": the expression is empty",
        ),
        (
            "12:00:00.5",
            "invalid calendar expression \"12:00:00.5\": invalid time \"12:00:00.5\": \
             fractional seconds are not supported",
        ),
        (
            "5",
            "invalid calendar expression \"5\": cannot tell what \"5\" is: write weekdays like \
             Mon..Fri, dates like 2027-01-31 or *-*-01, and times like 04:00 or *:0/15",
        ),
    ] {
        assert_eq!(error(input), message);
    }
}

#[test]
fn rejected() {
    for input in [
        "*",
        "   ",
        "Mon Tue",
        "Mon 1-1 1:1 1:1",
        "1-1-1-1",
        "1~1~1",
        "1~1-1",
        "2026-1~1-1",
        "*-*-0",
        "*-*-32",
        "1:2:3:4",
        "24:00",
        "*:60",
        "*:*:60",
        "1..",
        "..1",
        "*:1..2..3",
        "*:1/2/3",
        "*:/5",
        "*:5/",
        "*:5/0",
        "*:-5",
        "*:+5",
        "*:٣",
        "1969-01-01",
        "2200-01-01",
        "Mon,,Tue",
        "Mo",
        "everyday",
        "*-*-* 10:00 +01:00",
        "10:00 CET",
        "12:00 Z Z",
        "*:99999999999999999999",
        "*:0/99999999999999999999",
        "2026-01-01T00:00:00",
    ] {
        let _ = error(input);
    }
    // Duplicates go away, but ranges get padded and defaults spelled out:
    // 226 bytes, but 325 once normalized.
    let dups = format!("*:0:{}1", "1,".repeat(120));
    assert_eq!(event(&dups).to_string(), "*-*-* *:00:01");
    let pairs: Vec<String> = (0..10)
        .flat_map(|a| (a + 1..10).map(move |b| format!("{a}..{b}")))
        .collect();
    let list = format!("*:{}", pairs.join(","));
    assert_eq!(list.len(), 226);
    assert_eq!(
        error(&list),
        format!(
            "invalid calendar expression {list:?}: its normalized form would be 325 bytes \
             long, the maximum is 256"
        )
    );
    let long = format!("{}00:00", " ".repeat(MAX_INPUT_LEN));
    assert_eq!(
        error(&long),
        "invalid calendar expression: it is 261 bytes long, the maximum is 256"
    );
}

#[test]
fn extreme_times_do_not_panic() {
    let all = [
        "*:*:*",
        "daily",
        "Mon *-02-29",
        "2027-01-01",
        "*-*~1",
        "Tue 2199-12-31 23:59:59",
    ];
    for expr in all {
        let e = event(expr);
        for t in [
            DateTime::<Utc>::MIN_UTC,
            DateTime::<Utc>::MAX_UTC,
            DateTime::UNIX_EPOCH,
        ] {
            let _ = e.next_after(t);
            let _ = e.last_at_or_before(t);
            let _ = e.matches(t);
        }
    }
}
