//! Schedules and backup windows (`arca-calendar`): parsing of arbitrary
//! UTF-8 as `Schedule`, `CalendarEvent` and `Window`, and, on success, the
//! searches from a fixed time, with their basic invariants and the display
//! round trip.
#![no_main]

use arca_calendar::{CalendarEvent, Schedule, Window};
use chrono::{DateTime, Utc};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // 2026-11-22T10:00:00Z, and the epoch's neighbourhood for negative
    // timestamps.
    let times = [
        DateTime::<Utc>::from_timestamp(1_795_341_600, 0),
        DateTime::<Utc>::from_timestamp(-1, 500_000_000),
    ];

    if let Ok(schedule) = text.parse::<Schedule>() {
        for t in times.into_iter().flatten() {
            let next = schedule.next_after(t);
            let last = schedule.last_at_or_before(t);
            if let Some(next) = next {
                assert!(next > t, "{schedule}: next_after({t}) = {next}");
                assert!(schedule.matches(next), "{schedule}: {next}");
                assert_eq!(schedule.last_at_or_before(next), Some(next), "{schedule}");
            }
            if let Some(last) = last {
                assert!(last <= t, "{schedule}: last_at_or_before({t}) = {last}");
                assert!(schedule.matches(last), "{schedule}: {last}");
                assert_eq!(schedule.next_after(last), next, "{schedule}");
            }
        }
        let normalized = schedule.to_string();
        assert_eq!(
            normalized.parse::<Schedule>().ok(),
            Some(schedule),
            "{normalized}"
        );
    }

    if let Ok(event) = text.parse::<CalendarEvent>() {
        let normalized = event.to_string();
        assert_eq!(
            normalized.parse::<CalendarEvent>().ok(),
            Some(event),
            "{normalized}"
        );
    }

    if let Ok(window) = text.parse::<Window>() {
        for t in times.into_iter().flatten() {
            let open = window.next_open(t);
            assert!(
                open.is_some_and(|open| open >= t && window.contains(open)),
                "{window}"
            );
            assert_eq!(open == Some(t), window.contains(t), "{window}");
        }
        let normalized = window.to_string();
        assert_eq!(
            normalized.parse::<Window>().ok(),
            Some(window),
            "{normalized}"
        );
    }
});
