//! Small summary types shared by several APIs (leader/epoch pairs, node endpoints, topic references) and
//! the serde helpers for them.
//!
//! Easy to get wrong: the nested structs here are themselves flexible in flexible versions (each ends
//! with its own tagged-field section), so their readers take the `flex` flag.

use crate::wire::{Reader, Uuid, WireResult};
use serde::Serialize;

pub(crate) fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}
pub(crate) fn is_false(v: &bool) -> bool {
    !*v
}
pub(crate) fn is_empty<T>(v: &[T]) -> bool {
    v.is_empty()
}

/// Leader id and epoch (Produce / Fetch `current_leader`, KIP-951).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LeaderAndEpoch {
    pub leader_id: i32,
    pub leader_epoch: i32,
}

impl LeaderAndEpoch {
    pub(crate) fn read(r: &mut Reader<'_>, flex: bool) -> WireResult<Self> {
        let leader_id = r.i32()?;
        let leader_epoch = r.i32()?;
        r.skip_tagged(flex)?;
        Ok(LeaderAndEpoch {
            leader_id,
            leader_epoch,
        })
    }
}

/// A broker as a response names it (Metadata brokers, Produce / Fetch node_endpoints).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeEndpoint {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rack: Option<String>,
}

impl NodeEndpoint {
    /// node_id, host, port, rack (nullable), tagged fields: the Produce/Fetch v10+/v16+ layout.
    pub(crate) fn read_compact(r: &mut Reader<'_>) -> WireResult<Self> {
        let node_id = r.i32()?;
        let host = r.string(true)?;
        let port = r.i32()?;
        let rack = r.opt_string(true)?;
        r.skip_tagged(true)?;
        Ok(NodeEndpoint {
            node_id,
            host,
            port,
            rack,
        })
    }

    /// A compact array of endpoints (tagged field content).
    pub(crate) fn read_compact_array(r: &mut Reader<'_>) -> WireResult<Vec<Self>> {
        let n = r.array_len(true)?;
        let mut v = Vec::with_capacity(n.min(64));
        for _ in 0..n {
            v.push(Self::read_compact(r)?);
        }
        Ok(v)
    }
}

/// A topic named by name (older versions) or by id (newer versions), with partition ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopicPartitionIds {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic_id: Option<Uuid>,
    pub partitions: Vec<i32>,
}

/// A topic named by name or by id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopicRef {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic_id: Option<Uuid>,
}

/// Most entries kept for lists that are not the point of a summary (partition ids in a list, ...).
pub(crate) const MAX_IDS: usize = 100_000;

/// Read `n`-element arrays of structs with a per-element reader; allocation grows with the bytes read,
/// never with the claimed count.
pub(crate) fn read_vec<'a, T, L: List<T>>(
    r: &mut Reader<'a>,
    flex: bool,
    mut f: impl FnMut(&mut Reader<'a>) -> WireResult<T>,
) -> WireResult<L> {
    let n = r.array_len(flex)?;
    let mut v = L::with_capacity(n.min(64));
    for _ in 0..n {
        v.push(f(r)?);
    }
    Ok(v)
}

/// A decoded list that nearly always holds one element (a producer's topics and partitions in one
/// request, with a linger): kept inline, so decoding it allocates nothing.
pub type Inline<T> = smallvec::SmallVec<[T; 1]>;

/// What [`read_vec`] fills: a `Vec`, or an [`Inline`] list.
pub(crate) trait List<T> {
    fn with_capacity(n: usize) -> Self;
    fn push(&mut self, t: T);
}

impl<T> List<T> for Vec<T> {
    fn with_capacity(n: usize) -> Self {
        Vec::with_capacity(n)
    }
    fn push(&mut self, t: T) {
        Vec::push(self, t)
    }
}

impl<T> List<T> for Inline<T> {
    fn with_capacity(n: usize) -> Self {
        Inline::with_capacity(n)
    }
    fn push(&mut self, t: T) {
        Inline::push(self, t)
    }
}

/// Same as `read_vec` but a null array stays `None`.
pub(crate) fn read_opt_vec<'a, T>(
    r: &mut Reader<'a>,
    flex: bool,
    mut f: impl FnMut(&mut Reader<'a>) -> WireResult<T>,
) -> WireResult<Option<Vec<T>>> {
    let Some(n) = r.opt_array_len(flex)? else {
        return Ok(None);
    };
    let mut v = Vec::with_capacity(n.min(64));
    for _ in 0..n {
        v.push(f(r)?);
    }
    Ok(Some(v))
}

/// Push a non-zero error code.
#[inline]
pub(crate) fn push_err(out: &mut Vec<i16>, code: i16) {
    if code != 0 {
        out.push(code);
    }
}
