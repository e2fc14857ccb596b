//! UTC calendar arithmetic on Unix milliseconds, just enough for quota resets: "00:00 UTC
//! on the 1st of next month" when upstream did not say when an exhausted quota comes back.
//! Written out here (proleptic Gregorian, years ≥ 1970) to keep the pool free of a
//! date-time dependency for one function.

const MS_PER_DAY: u64 = 86_400_000;

fn is_leap(year: u64) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

/// Leap years in `1..=year`.
fn leap_years_through(year: u64) -> u64 {
    year / 4 - year / 100 + year / 400
}

/// Days from 1970-01-01 to January 1st of `year` (`year >= 1970`).
fn days_before_year(year: u64) -> u64 {
    365 * (year - 1970) + leap_years_through(year - 1) - leap_years_through(1969)
}

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `(year, month 1..=12)` of the day `days` after 1970-01-01.
fn year_month(days: u64) -> (u64, u64) {
    // A year has at most 366 days, so this estimate is never late; walk forward from it.
    let mut year = 1970 + days / 366;
    while days_before_year(year + 1) <= days {
        year += 1;
    }
    let mut day_of_year = days - days_before_year(year);
    let mut month = 1;
    while day_of_year >= days_in_month(year, month) {
        day_of_year -= days_in_month(year, month);
        month += 1;
    }
    (year, month)
}

/// 00:00:00.000 UTC on the first day of the month after the one containing `now_ms`.
pub fn first_of_next_month_ms(now_ms: u64) -> u64 {
    let (year, month) = year_month(now_ms / MS_PER_DAY);
    let (next_year, next_month) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    let mut days = days_before_year(next_year);
    for m in 1..next_month {
        days += days_in_month(next_year, m);
    }
    days * MS_PER_DAY
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1000;

    #[test]
    fn mid_month_goes_to_the_first_of_next_month() {
        // 2024-05-15T12:00:00Z -> 2024-06-01T00:00:00Z
        assert_eq!(first_of_next_month_ms(1_715_774_400 * S), 1_717_200_000 * S);
    }

    #[test]
    fn december_rolls_into_january_of_next_year() {
        // 2024-12-15T00:00:00Z -> 2025-01-01T00:00:00Z
        assert_eq!(first_of_next_month_ms(1_734_220_800 * S), 1_735_689_600 * S);
        // last millisecond of 2024
        assert_eq!(
            first_of_next_month_ms(1_735_689_600 * S - 1),
            1_735_689_600 * S
        );
    }

    #[test]
    fn leap_february_has_29_days() {
        // 2024-02-29T23:59:59Z -> 2024-03-01
        assert_eq!(first_of_next_month_ms(1_709_251_199 * S), 1_709_251_200 * S);
        // 2024-01-31T23:59:59.999Z -> 2024-02-01
        assert_eq!(
            first_of_next_month_ms(1_706_745_600 * S - 1),
            1_706_745_600 * S
        );
        // 2000 is a leap year (divisible by 400): 2000-02-29 -> 2000-03-01
        assert_eq!(first_of_next_month_ms(951_782_400 * S), 951_868_800 * S);
    }

    #[test]
    fn century_years_are_not_leap_unless_divisible_by_400() {
        // 2100-02-28T00:00:00Z -> 2100-03-01 (2100 has no Feb 29)
        assert_eq!(first_of_next_month_ms(4_107_456_000 * S), 4_107_542_400 * S);
        // 2023-02-28T12:00:00Z -> 2023-03-01
        assert_eq!(first_of_next_month_ms(1_677_585_600 * S), 1_677_628_800 * S);
    }

    #[test]
    fn the_reset_instant_itself_points_at_the_following_month() {
        // exactly 2024-03-01T00:00:00Z -> 2024-04-01T00:00:00Z
        assert_eq!(first_of_next_month_ms(1_709_251_200 * S), 1_711_929_600 * S);
        assert_eq!(first_of_next_month_ms(0), 31 * MS_PER_DAY);
    }

    #[test]
    fn every_month_boundary_of_four_centuries_is_found() {
        // Walk month starts from 1970 to 2370 and check each maps to the next.
        let mut start = 0;
        for _ in 0..(400 * 12) {
            let next = first_of_next_month_ms(start);
            let days = (next - start) / MS_PER_DAY;
            assert!((28..=31).contains(&days), "{start} -> {next}");
            assert_eq!(first_of_next_month_ms(next - 1), next);
            start = next;
        }
        // 400 Gregorian years are exactly 146 097 days.
        assert_eq!(start, 146_097 * MS_PER_DAY);
    }
}
