//! Checking and normalising what callers send for a participant (names, NDIS number, date of birth,
//! phone, notes). Every failure names its field and uses the contract's wording.

use functions::{FnResult, FunctionError};
use store::Patch;
use values::Value;

pub const SUPPORT_LEVELS: [&str; 3] = ["high", "medium", "low"];
pub const STATUSES: [&str; 3] = ["active", "inactive", "discharged"];
pub const DISCHARGED: &str = "discharged";

const MAX_CARE_NOTES: usize = 500;
const MAX_EMERGENCY_CONTACT: usize = 200;
pub const MAX_REASON: usize = 500;
const DAY_MS: f64 = 86_400_000.0;

/// The participant fields a caller sends (each optional here; creation's validator requires some).
#[derive(Clone, Debug, Default)]
pub struct ParticipantFields {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub date_of_birth: Option<String>,
    pub ndis_number: Option<String>,
    pub contact_phone: Option<String>,
    pub emergency_contact: Option<String>,
    pub care_notes: Option<String>,
    pub support_level: Option<String>,
    pub status: Option<String>,
}

/// The fields a caller may set on a participant, checked and trimmed. Optional text that trims to
/// nothing becomes `None` (in a patch: remove the field). `site_id` and `status` are checked
/// elsewhere (the site needs the database; statuses by the args validator).
pub fn checked(args: &ParticipantFields, now_ms: f64) -> FnResult<Patch> {
    let mut out = Patch::new();
    let mut put = |field: &str, value: Option<String>| {
        out.insert(field.to_string(), value.map(Value::from));
    };
    if let Some(raw) = args.first_name.as_deref() {
        put("first_name", Some(name("first_name", "First name", raw)?));
    }
    if let Some(raw) = args.last_name.as_deref() {
        put("last_name", Some(name("last_name", "Last name", raw)?));
    }
    if let Some(raw) = args.date_of_birth.as_deref() {
        put("date_of_birth", Some(date_of_birth(raw, now_ms)?));
    }
    if let Some(raw) = args.ndis_number.as_deref() {
        put("ndis_number", Some(ndis_number(raw)?));
    }
    if let Some(raw) = args.contact_phone.as_deref() {
        put("contact_phone", phone(raw)?);
    }
    if let Some(raw) = args.emergency_contact.as_deref() {
        let text = bounded(
            "emergency_contact",
            raw,
            MAX_EMERGENCY_CONTACT,
            "Emergency contact",
        )?;
        put("emergency_contact", text);
    }
    if let Some(raw) = args.care_notes.as_deref() {
        put(
            "care_notes",
            bounded("care_notes", raw, MAX_CARE_NOTES, "Care notes")?,
        );
    }
    for (field, value) in [
        ("support_level", &args.support_level),
        ("status", &args.status),
    ] {
        if let Some(raw) = value {
            put(field, Some(raw.clone()));
        }
    }
    Ok(out)
}

fn name(field: &str, label: &str, raw: &str) -> FnResult<String> {
    let name = raw.trim();
    if !(2..=50).contains(&name.chars().count()) {
        return Err(FunctionError::validation(
            field,
            format!("{label} must be between 2 and 50 characters"),
        ));
    }
    // Control characters would also break the sort key, whose separator is one.
    if name.chars().any(char::is_control) {
        return Err(FunctionError::validation(
            field,
            format!("{label} must not contain control characters"),
        ));
    }
    Ok(name.to_string())
}

fn ndis_number(raw: &str) -> FnResult<String> {
    let number = raw.trim();
    if number.len() == 9 && number.bytes().all(|b| b.is_ascii_digit()) {
        Ok(number.to_string())
    } else {
        Err(FunctionError::validation(
            "ndis_number",
            "NDIS number must be exactly 9 digits",
        ))
    }
}

/// A real `YYYY-MM-DD` date, not in the future and not before 1900.
fn date_of_birth(raw: &str, now_ms: f64) -> FnResult<String> {
    let invalid = || {
        FunctionError::validation(
            "date_of_birth",
            "Invalid date of birth or future date not allowed (use YYYY-MM-DD)",
        )
    };
    let date = raw.trim();
    let days = parse_date(date).map(|(y, m, d)| days_from_civil(y, m, d));
    let days = days.ok_or_else(invalid)?;
    // "Today" is taken in UTC; one day of slack lets someone born today east of UTC be entered.
    let today = (now_ms / DAY_MS).floor() as i64;
    if days > today + 1 || days < days_from_civil(1900, 1, 1) {
        return Err(invalid());
    }
    Ok(date.to_string())
}

/// Digits with spaces, dashes and parentheses, an optional leading `+`, 6 to 15 digits.
fn phone(raw: &str) -> FnResult<Option<String>> {
    let phone = raw.trim();
    if phone.is_empty() {
        return Ok(None);
    }
    let body = phone.strip_prefix('+').unwrap_or(phone);
    let digits = body.chars().filter(char::is_ascii_digit).count();
    let allowed = body
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '(' | ')'));
    if allowed && (6..=15).contains(&digits) && phone.len() <= 30 {
        Ok(Some(phone.to_string()))
    } else {
        Err(FunctionError::validation(
            "contact_phone",
            "Invalid phone number format",
        ))
    }
}

/// Optional free text of at most `max` characters.
pub fn bounded(field: &str, raw: &str, max: usize, label: &str) -> FnResult<Option<String>> {
    let text = raw.trim();
    if text.chars().count() > max {
        return Err(FunctionError::validation(
            field,
            format!("{label} must not exceed {max} characters"),
        ));
    }
    Ok((!text.is_empty()).then(|| text.to_string()))
}

/// The index key that orders participants by last name, then first name, ignoring case. The
/// separator sorts before every character a name may hold, so "Li" comes before "Lim".
pub fn name_key(first: &str, last: &str) -> String {
    format!("{}\u{1}{}", last.to_lowercase(), first.to_lowercase())
}

/// `(year, month, day)` of a strict `YYYY-MM-DD` string naming a real date.
pub fn parse_date(text: &str) -> Option<(i64, u32, u32)> {
    let bytes = text.as_bytes();
    let shape = bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
    if !shape {
        return None;
    }
    let year: i64 = text[0..4].parse().ok()?;
    let month: u32 = text[5..7].parse().ok()?;
    let day: u32 = text[8..10].parse().ok()?;
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    (1..=days_in_month)
        .contains(&day)
        .then_some((year, month, day))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The calendar date (UTC) of an instant in ms.
pub fn civil_from_ms(ms: f64) -> (i64, u32, u32) {
    let z = (ms / DAY_MS).floor() as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Whole years between a date of birth and `today`.
pub fn age(birth: (i64, u32, u32), today: (i64, u32, u32)) -> i64 {
    let had_birthday = (today.1, today.2) >= (birth.1, birth.2);
    today.0 - birth.0 - i64::from(!had_birthday)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_and_ages_count_birthdays() {
        for (y, m, d) in [(1970, 1, 1), (2000, 2, 29), (1999, 12, 31), (2024, 3, 1)] {
            let ms = days_from_civil(y, m, d) as f64 * DAY_MS + 5.0;
            assert_eq!(civil_from_ms(ms), (y, m, d));
        }
        assert_eq!(parse_date("2001-02-29"), None);
        assert_eq!(parse_date("2000-02-29"), Some((2000, 2, 29)));
        assert_eq!(parse_date("2000-2-29"), None);
        assert_eq!(age((1990, 6, 15), (2020, 6, 14)), 29);
        assert_eq!(age((1990, 6, 15), (2020, 6, 15)), 30);
    }

    #[test]
    fn phones_and_ndis_numbers() {
        assert!(phone("+61 (2) 9876-5432").unwrap().is_some());
        assert!(phone("").unwrap().is_none());
        for bad in ["abc", "12345", "0400 000 000 ext 2", "61+400000000"] {
            assert!(phone(bad).is_err(), "{bad}");
        }
        assert!(ndis_number(" 431234567 ").is_ok());
        for bad in ["43123456", "4312345678", "43123456a", "４31234567"] {
            assert!(ndis_number(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn name_keys_sort_case_insensitively_by_last_then_first() {
        let mut keys = [
            name_key("Zoe", "li"),
            name_key("amy", "Lim"),
            name_key("Bob", "Li"),
            name_key("al", "de Vries"),
        ];
        keys.sort();
        assert_eq!(
            keys,
            [
                name_key("al", "de Vries"),
                name_key("Bob", "Li"),
                name_key("Zoe", "li"),
                name_key("amy", "Lim"),
            ]
        );
    }
}
