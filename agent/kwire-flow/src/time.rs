//! Packet time: [`Timestamp`], nanoseconds since the Unix epoch, taken from the capture, never the clock.
//!
//! Easy to get wrong: timestamps before 1970 are negative, so splitting into seconds and fractions must use
//! Euclidean division (`div_euclid`/`rem_euclid`), otherwise 1969 prints with a negative fraction. The
//! RFC 3339 form is written by hand (civil-from-days, Howard Hinnant's algorithm) to avoid a date crate,
//! truncates to microseconds (no rounding, so it never rolls into the next second) and is always UTC (`Z`).

use serde::Serialize;

/// Nanoseconds since the Unix epoch (UTC), as given by the capture. Serializes as a bare `i64`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub const NANOS_PER_SEC: i64 = 1_000_000_000;

    /// From whole seconds and nanoseconds (saturating).
    pub fn from_secs_nanos(secs: i64, nanos: u32) -> Timestamp {
        Timestamp(
            secs.saturating_mul(Self::NANOS_PER_SEC)
                .saturating_add(i64::from(nanos)),
        )
    }

    /// Whole seconds (floor) since the epoch.
    pub fn secs(&self) -> i64 {
        self.0.div_euclid(Self::NANOS_PER_SEC)
    }

    /// Nanoseconds within the second, `0..1_000_000_000`.
    pub fn subsec_nanos(&self) -> u32 {
        // rem_euclid of a positive modulus is in 0..1e9, which fits u32.
        self.0.rem_euclid(Self::NANOS_PER_SEC) as u32
    }

    /// `self - earlier` in nanoseconds, saturating (negative if `earlier` is later).
    pub fn nanos_since(&self, earlier: Timestamp) -> i64 {
        self.0.saturating_sub(earlier.0)
    }

    /// `self + nanos`, saturating.
    pub fn add_nanos(&self, nanos: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(nanos))
    }

    /// RFC 3339, UTC, microsecond precision (truncated), e.g. `2016-11-19T10:03:21.123456Z`.
    pub fn to_rfc3339(&self) -> String {
        self.to_string()
    }
}

impl std::fmt::Display for Timestamp {
    /// RFC 3339 (see [`Timestamp::to_rfc3339`]), written in one piece without an intermediate string
    /// (JSON lines write two per exchange).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.secs();
        let micros = self.subsec_nanos() / 1_000;
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        if !(0..=9999).contains(&y) {
            let (hh, mm, ss) = (sod / 3600, (sod % 3600) / 60, sod % 60);
            return write!(
                f,
                "{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{micros:06}Z"
            );
        }
        let mut b = *b"0000-00-00T00:00:00.000000Z";
        let mut put = |at: usize, width: usize, mut v: u64| {
            for k in (0..width).rev() {
                b[at + k] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(0, 4, y as u64);
        put(5, 2, u64::from(m));
        put(8, 2, u64::from(d));
        put(11, 2, (sod / 3600) as u64);
        put(14, 2, ((sod % 3600) / 60) as u64);
        put(17, 2, (sod % 60) as u64);
        put(20, 6, u64::from(micros));
        f.write_str(std::str::from_utf8(&b).unwrap_or_default())
    }
}

/// Days since 1970-01-01 → (year, month 1..=12, day 1..=31), proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365; // [0, 399]
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32; // [1, 12]
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_values() {
        assert_eq!(Timestamp(0).to_rfc3339(), "1970-01-01T00:00:00.000000Z");
        // 2016-11-19T10:03:21.123456789Z = 1479549801 s
        let t = Timestamp::from_secs_nanos(1_479_549_801, 123_456_789);
        assert_eq!(t.to_rfc3339(), "2016-11-19T10:03:21.123456Z");
        // leap day
        let t = Timestamp::from_secs_nanos(951_782_400, 0); // 2000-02-29
        assert_eq!(t.to_rfc3339(), "2000-02-29T00:00:00.000000Z");
        // one microsecond before the epoch
        assert_eq!(
            Timestamp(-1_000).to_rfc3339(),
            "1969-12-31T23:59:59.999999Z"
        );
        // end of a year
        let t = Timestamp::from_secs_nanos(1_704_067_199, 999_999_999); // 2023-12-31T23:59:59
        assert_eq!(t.to_rfc3339(), "2023-12-31T23:59:59.999999Z");
    }

    #[test]
    fn serializes_as_i64() {
        assert_eq!(
            serde_json::to_string(&Timestamp(1_479_549_801_123_456_789)).unwrap(),
            "1479549801123456789"
        );
        assert_eq!(serde_json::to_string(&Timestamp(-5)).unwrap(), "-5");
        assert_eq!(Timestamp(5).secs(), 0);
        assert_eq!(Timestamp(-1).secs(), -1);
        assert_eq!(Timestamp(-1).subsec_nanos(), 999_999_999);
    }
}
