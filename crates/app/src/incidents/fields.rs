//! Checking what a caller sends for an incident's details: names, location and the event time,
//! with the contract's wording. Site and participant need the database and are checked in `write`.

use chrono::{DateTime, NaiveDateTime};
use functions::{FnResult, FunctionError};
use serde::Deserialize;
use values::Typed;

pub const MAX_NAME: usize = 100;
pub const MAX_LOCATION: usize = 200;
const HOUR_MS: f64 = 3_600_000.0;
/// How far ahead of now an event may be (clock differences and zone-less local times).
pub const MAX_AHEAD_MS: f64 = 24.0 * HOUR_MS;
/// How far back an event may be when it is first recorded.
pub const MAX_BACK_MS: f64 = 30.0 * 24.0 * HOUR_MS;

/// The checked details of an incident.
#[derive(Clone, Debug, PartialEq)]
pub struct Details {
    pub reporter_name: String,
    pub participant_name: String,
    pub location: String,
    /// As sent (trimmed), which is what the contract stores and clients show.
    pub event_date_time: String,
    /// The same instant in ms since the epoch.
    pub event_at: f64,
}

/// The details as a caller sends them, before they are checked.
#[derive(Clone, Debug, Default, Deserialize, Typed)]
pub struct Given {
    pub reporter_name: String,
    pub participant_name: String,
    pub location: String,
    pub event_date_time: String,
}

/// Whether the event time must fall inside the recording window (new and edited incidents), or
/// only be well-formed (imports of records captured long ago).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    Enforced,
    Ignored,
}

/// Checks `reporter_name`, `participant_name`, `location` and `event_date_time`.
pub fn details(given: &Given, now_ms: f64, window: Window) -> FnResult<Details> {
    let reporter_name = bounded(
        &given.reporter_name,
        "reporter_name",
        "Reporter name",
        MAX_NAME,
    )?;
    let participant_name = bounded(
        &given.participant_name,
        "participant_name",
        "Participant name",
        MAX_NAME,
    )?;
    let location = bounded(&given.location, "location", "Location", MAX_LOCATION)?;
    let event_date_time = given.event_date_time.trim().to_string();
    let event_at = parse_event_time(&event_date_time).ok_or_else(|| {
        FunctionError::validation(
            "event_date_time",
            "Validation failed: Event date and time must look like 2025-06-01T14:30 (ISO 8601)",
        )
    })?;
    if window == Window::Enforced {
        if event_at > now_ms + MAX_AHEAD_MS {
            return Err(FunctionError::validation(
                "event_date_time",
                "Incident date cannot be more than 24 hours in the future",
            ));
        }
        if event_at < now_ms - MAX_BACK_MS {
            return Err(FunctionError::validation(
                "event_date_time",
                "Incident date cannot be more than 30 days in the past",
            ));
        }
    }
    Ok(Details {
        reporter_name,
        participant_name,
        location,
        event_date_time,
        event_at,
    })
}

/// Trimmed text of 1 to `max` characters without control characters.
fn bounded(value: &str, field: &str, label: &str, max: usize) -> FnResult<String> {
    let value = value.trim();
    if !(1..=max).contains(&value.chars().count()) {
        return Err(FunctionError::validation(
            field,
            format!("Validation failed: {label} must be between 1 and {max} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(FunctionError::validation(
            field,
            format!("Validation failed: {label} must not contain control characters"),
        ));
    }
    Ok(value.to_string())
}

/// Milliseconds since the epoch of `YYYY-MM-DDTHH:mm` (what the web form sends), with optional
/// seconds and fraction, and an optional `Z` or `±HH:MM` offset. Without an offset the time is
/// taken as UTC: the server cannot know the reporter's zone, and the 24-hour window absorbs it.
pub fn parse_event_time(text: &str) -> Option<f64> {
    let text = text.trim();
    if !text.is_ascii() || text.len() < 16 || text.as_bytes().get(10) != Some(&b'T') {
        return None;
    }
    let (local, offset) = split_offset(text);
    let naive = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S%.f"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(local, format).ok())?;
    let utc_ms = naive.and_utc().timestamp_millis();
    let offset_ms = match offset {
        None => 0,
        Some("Z") | Some("z") => 0,
        Some(offset) => {
            let parsed =
                DateTime::parse_from_str(&format!("2000-01-01T00:00{offset}"), "%Y-%m-%dT%H:%M%:z")
                    .ok()?;
            i64::from(parsed.offset().local_minus_utc()) * 1000
        }
    };
    Some((utc_ms - offset_ms) as f64)
}

/// `YYYY-MM-DDTHH:mm` (UTC) of an instant, the form the web app sends.
pub fn format_event_time(ms: f64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .map(|t| t.format("%Y-%m-%dT%H:%M").to_string())
        .unwrap_or_default()
}

/// Splits `…T14:30+10:00` into the local part and the offset, if there is one.
fn split_offset(text: &str) -> (&str, Option<&str>) {
    if let Some(local) = text.strip_suffix(['Z', 'z']) {
        return (local, Some("Z"));
    }
    // An offset sign can only appear after the time's start (index 11 onwards); the date's
    // dashes come before it.
    match text[11..].rfind(['+', '-']) {
        Some(i) => (&text[..11 + i], Some(&text[11 + i..])),
        None => (text, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JUNE_1_1430_UTC: f64 = 1_748_788_200_000.0;

    #[test]
    fn reads_the_web_form_and_iso_forms() {
        for (text, want) in [
            ("2025-06-01T14:30", JUNE_1_1430_UTC),
            ("2025-06-01T14:30:00", JUNE_1_1430_UTC),
            ("2025-06-01T14:30:00.000Z", JUNE_1_1430_UTC),
            ("2025-06-01T14:30Z", JUNE_1_1430_UTC),
            ("2025-06-02T00:30:00+10:00", JUNE_1_1430_UTC),
            ("2025-06-01T09:30-05:00", JUNE_1_1430_UTC),
            ("2025-06-01T14:30:05.5", JUNE_1_1430_UTC + 5_500.0),
        ] {
            assert_eq!(parse_event_time(text), Some(want), "{text}");
        }
        assert_eq!(format_event_time(JUNE_1_1430_UTC), "2025-06-01T14:30");
        for bad in [
            "",
            "2025-06-01",
            "2025-06-01 14:30",
            "2025-02-30T10:00",
            "2025-06-01T25:00",
            "yesterday at noon",
            "2025-06-01T14:30+99:00",
        ] {
            assert_eq!(parse_event_time(bad), None, "{bad}");
        }
    }

    fn args(pairs: &[(&str, &str)]) -> Given {
        let mut given = Given::default();
        for (k, v) in pairs {
            let field = match *k {
                "reporter_name" => &mut given.reporter_name,
                "participant_name" => &mut given.participant_name,
                "location" => &mut given.location,
                "event_date_time" => &mut given.event_date_time,
                other => panic!("{other}"),
            };
            *field = v.to_string();
        }
        given
    }

    #[test]
    fn enforces_lengths_and_the_window() {
        let now = JUNE_1_1430_UTC;
        let good = [
            ("reporter_name", " Kim Lee "),
            ("participant_name", "Sarah Williams"),
            ("location", "Kitchen"),
            ("event_date_time", "2025-06-01T12:30"),
        ];
        let ok = details(&args(&good), now, Window::Enforced).unwrap();
        assert_eq!(ok.reporter_name, "Kim Lee");
        assert_eq!(ok.event_at, now - 2.0 * HOUR_MS);
        let long = "x".repeat(101);
        let message = |pairs: &[(&str, &str)], window| {
            let mut all = good.to_vec();
            all.extend_from_slice(pairs);
            match details(&args(&all), now, window).unwrap_err() {
                FunctionError::User { message, .. } => message,
                other => panic!("{other}"),
            }
        };
        assert_eq!(
            message(&[("reporter_name", &long)], Window::Enforced),
            "Validation failed: Reporter name must be between 1 and 100 characters"
        );
        assert_eq!(
            message(&[("location", "  ")], Window::Enforced),
            "Validation failed: Location must be between 1 and 200 characters"
        );
        assert_eq!(
            message(&[("event_date_time", "2025-05-01T14:29")], Window::Enforced),
            "Incident date cannot be more than 30 days in the past"
        );
        assert_eq!(
            message(&[("event_date_time", "2025-06-02T14:31")], Window::Enforced),
            "Incident date cannot be more than 24 hours in the future"
        );
        let old = [("event_date_time", "2020-01-01T00:00")];
        let mut all = good.to_vec();
        all.extend_from_slice(&old);
        assert!(details(&args(&all), now, Window::Ignored).is_ok());
    }
}
