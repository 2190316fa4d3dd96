//! Small builders for detector unit tests.

use std::net::{IpAddr, Ipv4Addr};

use kwire_flow::{Endpoint, Timestamp};

use crate::analysis::timeline::{Obs, Source};
use crate::model::ConnCtx;

pub fn client_ep() -> Endpoint {
    Endpoint::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 40000)
}

pub fn broker_ep() -> Endpoint {
    Endpoint::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 9092)
}

pub fn ctx() -> ConnCtx {
    ConnCtx {
        id: 1,
        client: client_ep(),
        broker: broker_ep(),
        client_owner: None,
        broker_owner: None,
        community_id: std::sync::Arc::from(""),
    }
}

/// Seconds → timestamp.
pub fn t(secs: i64) -> Timestamp {
    Timestamp(secs * 1_000_000_000)
}

pub fn obs(offset: i64, secs: i64, source: Source) -> Obs {
    Obs {
        offset,
        ts: t(secs),
        source,
        broker: broker_ep(),
        conn: 1,
        epoch: None,
        xref: crate::model::XRef::default(),
    }
}

/// An alert as its JSON line (what the output contract promises), for assertions on its fields.
pub fn alert_json(a: &crate::output::alert::Alert) -> serde_json::Value {
    serde_json::to_value(a).expect("alert serialises")
}
