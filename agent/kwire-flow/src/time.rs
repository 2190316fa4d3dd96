//! Packet time: [`Timestamp`], nanoseconds since the Unix epoch, taken from the capture, never the clock.
//!
//! Easy to get wrong: timestamps before 1970 are negative, so splitting into seconds and fractions must use
//! Euclidean division (`div_euclid`/`rem_euclid`), otherwise 1969 prints with a negative fraction. The
//! RFC 3339 form is written by hand (civil-from-days, Howard Hinnant's algorithm) to avoid a date crate,
//! truncates to microseconds (no rounding, so it never rolls into the next second) and is always UTC (`Z`).

use std::cell::Cell;

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

thread_local! {
    /// The last second formatted and its `YYYY-MM-DDTHH:MM:SS` (JSON lines write two timestamps per
    /// exchange, nearly all within the second before): pure, a cache of a pure function.
    static LAST_SECOND: Cell<(i64, [u8; 19])> = const { Cell::new((i64::MIN, [0; 19])) };
}

/// "00" to "99": two decimal digits per lookup.
const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// The two decimal digits of `v % 100`.
pub(crate) fn two_digits(v: u32) -> [u8; 2] {
    let i = (v % 100) as usize * 2;
    [PAIRS[i], PAIRS[i + 1]]
}

impl Timestamp {
    /// The RFC 3339 form as fixed-width ASCII bytes, for years 0 to 9999 (None outside: `Display`
    /// writes those). What encoders use to write a timestamp without the formatting machinery.
    pub fn rfc3339_bytes(&self) -> Option<[u8; 27]> {
        let secs = self.secs();
        let mut b = *b"0000-00-00T00:00:00.000000Z";
        let (last, prefix) = LAST_SECOND.with(Cell::get);
        if last == secs {
            b[..19].copy_from_slice(&prefix);
        } else {
            let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
            if !(0..=9999).contains(&y) {
                return None;
            }
            let sod = secs.rem_euclid(86_400) as u32;
            let y = y as u32;
            for (at, v) in [
                (0, y / 100),
                (2, y),
                (5, m),
                (8, d),
                (11, sod / 3600),
                (14, (sod % 3600) / 60),
                (17, sod % 60),
            ] {
                b[at..at + 2].copy_from_slice(&two_digits(v));
            }
            let mut p = [0u8; 19];
            p.copy_from_slice(&b[..19]);
            LAST_SECOND.with(|c| c.set((secs, p)));
        }
        let micros = self.subsec_nanos() / 1_000;
        b[20..22].copy_from_slice(&two_digits(micros / 10_000));
        b[22..24].copy_from_slice(&two_digits(micros / 100));
        b[24..26].copy_from_slice(&two_digits(micros));
        Some(b)
    }
}

impl std::fmt::Display for Timestamp {
    /// RFC 3339 (see [`Timestamp::to_rfc3339`]), written in one piece without an intermediate string.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(b) = self.rfc3339_bytes() {
            return f.write_str(std::str::from_utf8(&b).unwrap_or_default());
        }
        let secs = self.secs();
        let micros = self.subsec_nanos() / 1_000;
        let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
        let sod = secs.rem_euclid(86_400);
        let (hh, mm, ss) = (sod / 3600, (sod % 3600) / 60, sod % 60);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{micros:06}Z"
        )
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

    /// The one-second cache never serves a neighbour's prefix: each result equals the uncached
    /// civil-date arithmetic, whatever order the seconds come in (same second, next, back, far).
    #[test]
    fn rfc3339_cache_follows_every_second() {
        let base = 1_704_067_199; // 2023-12-31T23:59:59
        for (secs, nanos, want) in [
            (base, 1_000, "2023-12-31T23:59:59.000001Z"),
            (base, 999_999_999, "2023-12-31T23:59:59.999999Z"),
            (base + 1, 0, "2024-01-01T00:00:00.000000Z"),
            (base, 5_000, "2023-12-31T23:59:59.000005Z"),
            (0, 0, "1970-01-01T00:00:00.000000Z"),
            (-1, 0, "1969-12-31T23:59:59.000000Z"),
            (4_102_444_800, 120_000, "2100-01-01T00:00:00.000120Z"),
            (-2_208_988_800, 0, "1900-01-01T00:00:00.000000Z"),
            (4_102_444_800, 7_000, "2100-01-01T00:00:00.000007Z"),
        ] {
            let t = Timestamp::from_secs_nanos(secs, nanos);
            assert_eq!(t.to_rfc3339(), want, "{secs}.{nanos}");
        }
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
