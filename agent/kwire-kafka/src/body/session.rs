//! Connection-setup APIs: ApiVersions (18, v0-4), SaslHandshake (17, v0-1), SaslAuthenticate (36, v0-2).
//!
//! Easy to get wrong:
//! - an ApiVersions request with a version the broker does not know is answered with a v0 response body
//!   (error UNSUPPORTED_VERSION and the broker's ranges), and its response header is always v0: the
//!   dispatcher retries a failed decode at v0;
//! - ApiVersions request v3+ is flexible and names the client software;
//! - SASL tokens (SaslAuthenticate auth_bytes) are secrets: only their LENGTH is kept, never the bytes;
//! - after SaslHandshake v0 the client sends raw SASL tokens without Kafka framing (the stream layer's
//!   problem, noted here because the decoder sees the handshake).

use super::common::*;
use crate::wire::{Reader, WireResult};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiVersionsRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_software_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_software_version: Option<String>,
}

pub(crate) fn decode_api_versions_request(
    r: &mut Reader<'_>,
    v: i16,
) -> WireResult<ApiVersionsRequest> {
    let flex = v >= 3;
    let (client_software_name, client_software_version) = if v >= 3 {
        (Some(r.string(flex)?), Some(r.string(flex)?))
    } else {
        (None, None)
    };
    r.skip_tagged(flex)?;
    Ok(ApiVersionsRequest {
        client_software_name,
        client_software_version,
    })
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiVersionsResponse {
    pub error_code: i16,
    pub api_keys: Vec<ApiVersionRange>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttle_time_ms: Option<i32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ApiVersionRange {
    pub api_key: i16,
    pub min_version: i16,
    pub max_version: i16,
}

pub(crate) fn decode_api_versions_response(
    r: &mut Reader<'_>,
    v: i16,
) -> WireResult<ApiVersionsResponse> {
    let flex = v >= 3;
    let error_code = r.i16()?;
    let api_keys = read_vec(r, flex, |r| {
        let api_key = r.i16()?;
        let min_version = r.i16()?;
        let max_version = r.i16()?;
        r.skip_tagged(flex)?;
        Ok(ApiVersionRange {
            api_key,
            min_version,
            max_version,
        })
    })?;
    let throttle_time_ms = if v >= 1 { Some(r.i32()?) } else { None };
    r.skip_tagged(flex)?; // supported_features, finalized_features(_epoch), zk_migration_ready
    Ok(ApiVersionsResponse {
        error_code,
        api_keys,
        throttle_time_ms,
    })
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SaslHandshakeRequest {
    pub mechanism: String,
}

pub(crate) fn decode_sasl_handshake_request(
    r: &mut Reader<'_>,
    _v: i16,
) -> WireResult<SaslHandshakeRequest> {
    Ok(SaslHandshakeRequest {
        mechanism: r.string(false)?,
    })
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SaslHandshakeResponse {
    pub error_code: i16,
    pub mechanisms: Vec<String>,
}

pub(crate) fn decode_sasl_handshake_response(
    r: &mut Reader<'_>,
    _v: i16,
) -> WireResult<SaslHandshakeResponse> {
    let error_code = r.i16()?;
    let mechanisms = r.string_array(false, 64)?;
    Ok(SaslHandshakeResponse {
        error_code,
        mechanisms,
    })
}

/// SaslAuthenticate request: the token LENGTH only.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SaslAuthenticateRequest {
    pub auth_bytes_len: usize,
}

pub(crate) fn decode_sasl_authenticate_request(
    r: &mut Reader<'_>,
    v: i16,
) -> WireResult<SaslAuthenticateRequest> {
    let flex = v >= 2;
    let auth_bytes_len = r.bytes(flex)?.map_or(0, |b| b.len());
    r.skip_tagged(flex)?;
    Ok(SaslAuthenticateRequest { auth_bytes_len })
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SaslAuthenticateResponse {
    pub error_code: i16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    pub auth_bytes_len: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_lifetime_ms: Option<i64>,
}

pub(crate) fn decode_sasl_authenticate_response(
    r: &mut Reader<'_>,
    v: i16,
) -> WireResult<SaslAuthenticateResponse> {
    let flex = v >= 2;
    let error_code = r.i16()?;
    let error_message = r.opt_string(flex)?;
    let auth_bytes_len = r.bytes(flex)?.map_or(0, |b| b.len());
    let session_lifetime_ms = if v >= 1 { Some(r.i64()?) } else { None };
    r.skip_tagged(flex)?;
    Ok(SaslAuthenticateResponse {
        error_code,
        error_message,
        auth_bytes_len,
        session_lifetime_ms,
    })
}
