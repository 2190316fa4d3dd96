//! Responses of the APIs we do not summarise: read only the top-level throttle_time_ms / error_code when
//! the API's layout puts them at a fixed place, so `error_codes()` still sees e.g. a DescribeCluster
//! failure. Never an error: anything unexpected just leaves the fields `None`.
//!
//! Why a layout table and not kafka-protocol's `Decodable`: the crate pre-allocates arrays from wire
//! counts (see `body/mod.rs`). The table was derived from the crate's generated decoders (first fields
//! of each response) and we use the crate's `ApiKey::valid_versions()` to apply it only to versions
//! the crate knows, plus the removed inter-broker APIs 4-7 (their responses start with error_code).
//!
//! Easy to get wrong: several responses put error_code first (KRaft quorum APIs, delegation tokens,
//! OffsetDelete), ElectLeaders / DescribeLogDirs gained a top-level error_code only in later versions, and
//! AlterPartitionReassignments v1+ has a boolean between throttle_time_ms and error_code.

use super::OtherResponse;
use crate::wire::Reader;
use kafka_protocol::messages::ApiKey;

#[derive(Clone, Copy)]
enum Layout {
    /// throttle_time_ms i32, error_code i16
    ThrottleError,
    /// throttle_time_ms i32, error_code i16 from version `n`
    ThrottleErrorFrom(i16),
    /// throttle_time_ms i32 from version `n` (first field), nothing else generic
    ThrottleFrom(i16),
    /// error_code i16 first, no throttle at a fixed place
    Error,
    /// error_code i16, throttle_time_ms i32
    ErrorThrottle,
    /// error_code i16, i64, throttle_time_ms i32 (Renew/ExpireDelegationToken)
    ErrorI64Throttle,
    /// throttle_time_ms i32, [bool from v1], error_code i16 (AlterPartitionReassignments)
    ThrottleBoolError,
}

fn layout(api_key: i16) -> Option<Layout> {
    use Layout::*;
    Some(match api_key {
        4..=7 => Error, // LeaderAndIsr, StopReplica, UpdateMetadata, ControlledShutdown (removed in Kafka 4)
        21 | 30 | 31 | 32 | 33 | 34 | 37 | 42 | 44 | 49 | 51 | 61 | 65 | 69 | 75 | 77 | 90 => {
            ThrottleFrom(0)
        }
        23 => ThrottleFrom(2), // OffsetForLeaderEpoch
        29 | 46 | 48 | 50 | 56 | 57 | 59 | 60 | 62 | 63 | 64 | 66 | 67 | 70 | 71 | 72 | 73 | 74
        | 76 | 78 | 79 | 80 | 81 | 82 | 91 | 92 => ThrottleError,
        35 => ThrottleErrorFrom(3), // DescribeLogDirs
        43 => ThrottleErrorFrom(1), // ElectLeaders
        38 | 41 | 52 | 53 | 54 | 55 => Error,
        39 | 40 => ErrorI64Throttle,
        45 => ThrottleBoolError,
        47 => ErrorThrottle, // OffsetDelete
        _ => return None,
    })
}

fn known_version(api_key: i16, v: i16) -> bool {
    if (4..=7).contains(&api_key) {
        return (0..=7).contains(&v);
    }
    match ApiKey::try_from(api_key) {
        Ok(k) => {
            let range = k.valid_versions();
            // Older versions than the crate knows share the same leading fields for these APIs.
            v >= 0 && v <= range.max
        }
        Err(_) => false,
    }
}

/// Best-effort generic fields of a response we do not summarise.
pub(crate) fn decode_other_response(api_key: i16, v: i16, body: &[u8]) -> OtherResponse {
    let mut out = OtherResponse::default();
    let Some(l) = layout(api_key) else { return out };
    if !known_version(api_key, v) {
        return out;
    }
    let mut r = Reader::new(body);
    let _ = (|| -> Result<(), super::BodyError> {
        match l {
            Layout::ThrottleError => {
                out.throttle_time_ms = Some(r.i32()?);
                out.error_code = Some(r.i16()?);
            }
            Layout::ThrottleErrorFrom(n) => {
                out.throttle_time_ms = Some(r.i32()?);
                if v >= n {
                    out.error_code = Some(r.i16()?);
                }
            }
            Layout::ThrottleFrom(n) => {
                if v >= n {
                    out.throttle_time_ms = Some(r.i32()?);
                }
            }
            Layout::Error => out.error_code = Some(r.i16()?),
            Layout::ErrorThrottle => {
                out.error_code = Some(r.i16()?);
                out.throttle_time_ms = Some(r.i32()?);
            }
            Layout::ErrorI64Throttle => {
                out.error_code = Some(r.i16()?);
                r.i64()?;
                out.throttle_time_ms = Some(r.i32()?);
            }
            Layout::ThrottleBoolError => {
                out.throttle_time_ms = Some(r.i32()?);
                if v >= 1 {
                    r.bool()?;
                }
                out.error_code = Some(r.i16()?);
            }
        }
        Ok(())
    })();
    out
}
