//! GitLab's times (`2016-01-04T15:31:51.081Z`, or with an offset) as
//! [`Timestamp`]s.

use scrum_core::Timestamp;

/// Milliseconds since the epoch of an ISO 8601 time as GitLab writes them; `None`
/// when it is not one.
pub(crate) fn parse_time(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    let digits = |from: usize, len: usize| -> Option<i64> {
        let part = s.get(from..from + len)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (y, mo, d) = (digits(0, 4)?, digits(5, 2)?, digits(8, 2)?);
    let (h, mi, sec) = (digits(11, 2)?, digits(14, 2)?, digits(17, 2)?);
    let seps = (s.get(4..5)?, s.get(7..8)?, s.get(10..11)?, s.get(13..14)?);
    if seps.0 != "-" || seps.1 != "-" || !matches!(seps.2, "T" | " ") || seps.3 != ":" {
        return None;
    }
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = s.get(19..)?;
    let mut ms = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        let first3: String = frac[..n].chars().chain("000".chars()).take(3).collect();
        ms = first3.parse().ok()?;
        rest = &frac[n..];
    }
    let offset = match rest {
        "Z" | "z" | "" | " UTC" => 0,
        _ => {
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            let hh: i64 = rest.get(1..3)?.parse().ok()?;
            let mm: i64 = rest.get(rest.len() - 2..)?.parse().ok()?;
            sign * (hh * 3600 + mm * 60)
        }
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset;
    Some(Timestamp(secs * 1000 + ms))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's method).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_back_as_written() {
        for t in [0, 1_800_000_000_123, 951_782_400_000] {
            let t = Timestamp(t);
            assert_eq!(parse_time(&t.to_rfc3339()), Some(t));
        }
        assert_eq!(
            parse_time("1970-01-01T01:00:00.000+01:00"),
            Some(Timestamp(0))
        );
        assert_eq!(parse_time("yesterday"), None);
    }
}
