//! API keys: names, header versions and plausible version ranges, for every key of Apache Kafka 4.1 plus the
//! inter-broker keys it removed (LeaderAndIsr 4, StopReplica 5, UpdateMetadata 6, ControlledShutdown 7) that
//! captures from older clusters still contain.
//!
//! Easy to get wrong: the response header version follows the API key and version (ApiVersions responses
//! always use header v0 so that a client can parse them whatever it asked), and ControlledShutdown v0 is the
//! one request that uses request header v0 (no client id). kafka-protocol knows the keys it still supports;
//! the removed ones are described here by hand because the crate dropped them.

use kafka_protocol::messages::ApiKey;

/// Highest API key number we know of (DeleteShareGroupOffsets = 92 in Kafka 4.1).
pub const MAX_KNOWN_API_KEY: i16 = 92;

/// How many versions beyond the newest we know we still accept as "plausible" (a newer broker/client):
/// such frames are reported by header and skipped by length.
const FUTURE_VERSION_SLACK: i16 = 3;

/// Name of an API key, e.g. `Produce`; `Unknown` for keys no Kafka release defines.
pub fn api_name(key: i16) -> &'static str {
    match key {
        4 => "LeaderAndIsr",
        5 => "StopReplica",
        6 => "UpdateMetadata",
        7 => "ControlledShutdown",
        _ => match ApiKey::try_from(key) {
            Ok(k) => crate_api_name(k),
            Err(()) => "Unknown",
        },
    }
}

fn crate_api_name(k: ApiKey) -> &'static str {
    // `ApiKey` has no name accessor in kafka-protocol 0.18; its Debug text is the variant name, which is the
    // Kafka API name. Cache the strings once so this stays allocation-free on the hot path.
    use std::sync::OnceLock;
    static NAMES: OnceLock<Vec<&'static str>> = OnceLock::new();
    let names = NAMES.get_or_init(|| {
        (0..=MAX_KNOWN_API_KEY)
            .map(|i| match ApiKey::try_from(i) {
                Ok(k) => &*Box::leak(format!("{k:?}").into_boxed_str()),
                Err(()) => "Unknown",
            })
            .collect()
    });
    names.get(k as i16 as usize).copied().unwrap_or("Unknown")
}

/// Is `key` an API key some Kafka release defined?
pub fn is_known_key(key: i16) -> bool {
    matches!(key, 4..=7) || ApiKey::try_from(key).is_ok()
}

/// Highest version of `key` known to us (None for unknown keys).
pub fn max_known_version(key: i16) -> Option<i16> {
    match key {
        4 => Some(7),
        5 => Some(4),
        6 => Some(8),
        7 => Some(3),
        _ => ApiKey::try_from(key).ok().map(|k| k.valid_versions().max),
    }
}

/// Is (`key`, `version`) something a real client or broker could plausibly send? Used by the probe.
pub fn is_plausible(key: i16, version: i16) -> bool {
    match max_known_version(key) {
        Some(max) => version >= 0 && version <= max + FUTURE_VERSION_SLACK,
        None => false,
    }
}

/// Is `version` within what we know for `key` (beyond it, the body layout is unknown and is skipped)?
pub fn is_known_version(key: i16, version: i16) -> bool {
    max_known_version(key).is_some_and(|max| (0..=max).contains(&version))
}

/// Request header version (0, 1 or 2) for this key and version.
pub fn request_header_version(key: i16, version: i16) -> i16 {
    match key {
        4 => flex(version, 4),
        5 => flex(version, 2),
        6 => flex(version, 6),
        7 if version == 0 => 0,
        7 => flex(version, 3),
        _ => match ApiKey::try_from(key) {
            Ok(k) => k.request_header_version(version),
            Err(()) => 1,
        },
    }
}

/// Response header version (0 or 1) for this key and version.
pub fn response_header_version(key: i16, version: i16) -> i16 {
    match key {
        4 => flex(version, 4) - 1,
        5 => flex(version, 2) - 1,
        6 => flex(version, 6) - 1,
        7 => (flex(version, 3) - 1).max(0),
        _ => match ApiKey::try_from(key) {
            Ok(k) => k.response_header_version(version),
            Err(()) => 0,
        },
    }
}

fn flex(version: i16, first_flexible: i16) -> i16 {
    if version >= first_flexible {
        2
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(api_name(0), "Produce");
        assert_eq!(api_name(7), "ControlledShutdown");
        assert_eq!(api_name(18), "ApiVersions");
        assert_eq!(api_name(68), "ConsumerGroupHeartbeat");
        assert_eq!(api_name(10000), "Unknown");
        assert_eq!(api_name(-1), "Unknown");
    }

    #[test]
    fn header_versions() {
        assert_eq!(request_header_version(0, 8), 1);
        assert_eq!(request_header_version(0, 9), 2);
        assert_eq!(response_header_version(0, 9), 1);
        // ApiVersions: flexible request header from v3, response header always v0.
        assert_eq!(request_header_version(18, 3), 2);
        assert_eq!(response_header_version(18, 3), 0);
        assert_eq!(request_header_version(7, 0), 0);
        assert_eq!(request_header_version(7, 1), 1);
        assert_eq!(request_header_version(1, 12), 2);
        assert_eq!(response_header_version(1, 11), 0);
    }

    #[test]
    fn plausibility() {
        assert!(is_plausible(0, 0));
        assert!(is_plausible(1, 18));
        assert!(!is_plausible(1, 40));
        assert!(!is_plausible(10000, 0));
        assert!(is_plausible(7, 1000) == false);
    }
}
