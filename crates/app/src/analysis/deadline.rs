//! The NDIS Commission's notification deadline and the reminder points before it.
//!
//! Every reportable category must be notified within 24 hours of the provider becoming aware,
//! except the use of an unauthorised restrictive practice that caused no harm, alone: 5 business
//! days. Business days are Monday to Friday counted in UTC; public holidays are not known here and
//! are ignored, so the deadline may come a day earlier than the Commission's, never later.

use super::model::ReportableCategory;

pub const HOUR_MS: f64 = 3_600_000.0;
pub const DAY_MS: f64 = 24.0 * HOUR_MS;

/// When the immediate notification is due, for a reportable decision.
pub fn due_at(aware_at: f64, categories: &[ReportableCategory], harm_caused: bool) -> f64 {
    let restrictive_only = !categories.is_empty()
        && categories
            .iter()
            .all(|c| *c == ReportableCategory::UnauthorisedRestrictivePractice);
    if restrictive_only && !harm_caused {
        add_business_days(aware_at, 5)
    } else {
        aware_at + DAY_MS
    }
}

/// Days since 1970-01-01 (a Thursday) → 0 = Monday … 6 = Sunday.
fn weekday(ms: f64) -> i64 {
    let days = (ms / DAY_MS).floor() as i64;
    (days + 3).rem_euclid(7)
}

/// `ms` moved forward by `n` days that fall on Monday to Friday (UTC).
pub fn add_business_days(ms: f64, n: u32) -> f64 {
    let mut at = ms;
    let mut left = n;
    while left > 0 {
        at += DAY_MS;
        if weekday(at) < 5 {
            left -= 1;
        }
    }
    at
}

/// The reminder points: their names and the share of the window after which each fires.
pub const POINTS: [(&str, f64); 4] = [("50", 0.5), ("75", 0.75), ("90", 0.9), ("overdue", 1.0)];

/// When each reminder point falls, for a clock from `aware_at` to `due_at`.
pub fn reminder_times(aware_at: f64, due_at: f64) -> Vec<(&'static str, f64)> {
    let window = (due_at - aware_at).max(0.0);
    POINTS
        .iter()
        .map(|(name, share)| (*name, aware_at + window * share))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ReportableCategory::*;

    // 2024-05-02 was a Thursday.
    const THURSDAY_NOON: f64 = 1_714_651_200_000.0;

    #[test]
    fn the_window_is_a_day_except_for_a_harmless_restrictive_practice() {
        assert_eq!(
            due_at(THURSDAY_NOON, &[SeriousInjury], true),
            THURSDAY_NOON + DAY_MS
        );
        assert_eq!(
            due_at(
                THURSDAY_NOON,
                &[UnauthorisedRestrictivePractice, Death],
                false
            ),
            THURSDAY_NOON + DAY_MS
        );
        assert_eq!(
            due_at(THURSDAY_NOON, &[UnauthorisedRestrictivePractice], true),
            THURSDAY_NOON + DAY_MS
        );
        // Thursday + 5 business days = the next Thursday (the weekend is skipped).
        assert_eq!(
            due_at(THURSDAY_NOON, &[UnauthorisedRestrictivePractice], false),
            THURSDAY_NOON + 7.0 * DAY_MS
        );
    }

    #[test]
    fn business_days_skip_weekends() {
        assert_eq!(weekday(THURSDAY_NOON), 3);
        let saturday = THURSDAY_NOON + 2.0 * DAY_MS;
        // From Saturday, the first business day is Monday.
        assert_eq!(add_business_days(saturday, 1), saturday + 2.0 * DAY_MS);
        assert_eq!(add_business_days(saturday, 5), saturday + 6.0 * DAY_MS);
    }

    #[test]
    fn reminders_fall_at_half_three_quarters_nine_tenths_and_the_deadline() {
        let times = reminder_times(0.0, DAY_MS);
        assert_eq!(
            times,
            vec![
                ("50", 12.0 * HOUR_MS),
                ("75", 18.0 * HOUR_MS),
                ("90", 0.9 * DAY_MS),
                ("overdue", DAY_MS)
            ]
        );
    }
}
