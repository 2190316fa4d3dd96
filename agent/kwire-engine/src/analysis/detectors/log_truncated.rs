//! `log_truncated`: the consumer itself found the log truncated under it (KIP-320). After a leader change a
//! consumer asks OffsetForLeaderEpoch where the epoch of the last record it fetched ends; an end offset
//! below what it had been served means the records between were read by it and no longer exist on the
//! leader. A Fetch response with a diverging epoch (Fetch v12+) says the same: the epoch the fetch position
//! belongs to ends at `end_offset`, before the fetch offset. The alert says what the client had read that
//! no longer exists (first..last offset, count): those records were processed downstream but are gone
//! from the log (an unclean election, or a replica that lost what it had not flushed). `critical`.
//!
//! Easy to get wrong: an end offset of -1 means "unknown epoch", not a truncation; an answer with an error
//! tells nothing; followers (replica_id >= 0) truncating their own logs is replication, not a client's
//! loss; "what it had read" is the end of what Fetch responses served it (the timeline), or, for a
//! diverging epoch, the fetch offset it asked from.

use kwire_flow::Timestamp;

use crate::analysis::incident::{Condition, Harm, IncidentKey};
use crate::model::{ClientKey, ConnCtx, Tp};
use crate::output::alert::{Alert, AlertKind, Severity};

/// How the client learnt the truncation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    OffsetForLeaderEpoch,
    DivergingEpoch,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::OffsetForLeaderEpoch => "offset_for_leader_epoch",
            Via::DivergingEpoch => "fetch_diverging_epoch",
        }
    }
}

/// The check: `read_to` (one past the last offset the client had read) against the `end_offset` the
/// leader gives for `epoch`. Some(alert) when records it read are gone.
#[allow(clippy::too_many_arguments)]
pub fn check(
    via: Via,
    read_to: Option<i64>,
    epoch: i32,
    end_offset: i64,
    tp: &Tp,
    ctx: &ConnCtx,
    client_id: Option<&str>,
    ts: Timestamp,
) -> Option<Alert> {
    let read_to = read_to?;
    if end_offset < 0 || read_to <= end_offset {
        return None;
    }
    let gone = read_to - end_offset;
    let how = match via {
        Via::OffsetForLeaderEpoch => "OffsetForLeaderEpoch answered",
        Via::DivergingEpoch => "a Fetch response gave the diverging epoch",
    };
    let text = format!(
        "{tp}: {how}: epoch {epoch} ends at {end_offset} on the leader {}, but the client had read up to \
         offset {}: {gone} record(s) at {end_offset}..{} it read no longer exist (the log was truncated)",
        ctx.broker,
        read_to - 1,
        read_to - 1
    );
    Some(
        Alert::new(AlertKind::LogTruncated, Severity::Critical, ts, text)
            .on(ctx, client_id)
            .tp(tp)
            .field("detected_by", via.as_str())
            .field("leader_epoch", epoch)
            .field("end_offset", end_offset)
            .field("read_to_offset", read_to)
            .field("first_gone_offset", end_offset)
            .field("last_gone_offset", read_to - 1)
            .field("gone_records", gone),
    )
}

/// The incident: one client's partition truncated at one end offset.
pub fn condition(client: &ClientKey, tp: &Tp, end_offset: i64) -> Condition {
    Condition {
        key: IncidentKey::new(
            AlertKind::LogTruncated,
            format!(
                "client={:?}@{} topic={:?} partition={} end_offset={end_offset}",
                client.client_id, client.host, tp.topic, tp.partition
            ),
        ),
        harm: Harm::New,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{alert_json, ctx, t};

    #[test]
    fn fires_when_the_epoch_ends_before_what_was_read() {
        let tp = Tp::new("orders", 2);
        let a = check(
            Via::OffsetForLeaderEpoch,
            Some(12),
            4,
            9,
            &tp,
            &ctx(),
            Some("c"),
            t(1),
        )
        .expect("fires");
        let j = alert_json(&a);
        assert_eq!(j["severity"], "critical");
        assert_eq!(j["client_id"], "c");
        assert_eq!(
            (
                &j["first_gone_offset"],
                &j["last_gone_offset"],
                &j["gone_records"]
            ),
            (&9.into(), &11.into(), &3.into())
        );
        assert_eq!(j["detected_by"], "offset_for_leader_epoch");
    }

    #[test]
    fn quiet_when_nothing_read_is_gone_or_the_epoch_is_unknown() {
        let tp = Tp::new("orders", 2);
        let c = ctx();
        let run = |read, end| check(Via::DivergingEpoch, read, 4, end, &tp, &c, None, t(1));
        assert!(
            run(Some(9), 9).is_none(),
            "read up to the end: nothing gone"
        );
        assert!(run(Some(12), -1).is_none(), "unknown epoch");
        assert!(run(None, 3).is_none(), "nothing read");
    }
}
