//! `listoffsets_regression`: a client is told an end of log (ListOffsets latest, or a Fetch high watermark /
//! last stable offset) lower than one it was told, served or committed before. Causes: a leader hand-off to a
//! lagging replica, follower fetching from a lagging replica, a broker that lost unflushed data, a topic
//! deleted and re-created. `critical` when the new end is below what the client consumed or committed (a
//! Spark `failOnDataLoss` consumer aborts exactly then), `warning` otherwise.
//!
//! Like is compared with like: the read_uncommitted series (HWM, ListOffsets isolation 0) and the
//! read_committed series (LSO, ListOffsets isolation 1) are separate. A Fetch answered OFFSET_OUT_OF_RANGE
//! still tells its high watermark when it carries one (librdkafka keeps it and reverts to the leader).
//!
//! One drop is one incident ([`crate::incident`]). The first value below what the client knew opens it and
//! freezes what every line compares with (`previous_*`: the highest of the end told in the series, the
//! end of what it was served, its committed offset; `compared_with` says which). While the drop lasts,
//! each value below that is an occurrence, and an alert line of its own only when it is lower than every
//! value told in the drop, or lower than the last value the same broker told in it (a new lower value);
//! a worse severity is a line too (the incident decides). A client bouncing between a leader and a lagging
//! follower (told 12, 4, 12, 4, ...) is one line and a count. The drop ends when every broker that told
//! less has told at least the compared value again (`recovered`), or `quiet_s` after its last value below.
//!
//! Easy to get wrong: the leader telling the true end in between is not a recovery (only the brokers that
//! told less can recover); the frozen "before" must not move with the bounce (it once read 5, the end of
//! what was served, on one line and 10, the end told, on forty others).

use kwire_flow::{Endpoint, Timestamp};

use crate::analysis::detectors::Threshold;
use crate::analysis::incident::{Harm, IncidentKey};
use crate::analysis::timeline::{Obs, PartState, Series, Source};
use crate::model::ConnCtx;
use crate::model::{ClientKey, Tp};
use crate::output::alert::{Alert, AlertKind, Evidence, Severity};

/// Brokers tracked per drop (each one that told less than the compared value, with the last value it
/// told). A partition has a handful of replicas; a broker beyond this bound is not tracked: it keeps no
/// floor of its own and does not hold the drop open (it still ends after `quiet_s`).
pub const MAX_LOW_BROKERS: usize = 8;

/// An open drop of one client's end of log in one series.
#[derive(Debug, Clone)]
pub struct EndDrop {
    /// What the values are compared with, frozen at the first one below it.
    pub before: Obs,
    /// The highest end told in this series before the drop, when any.
    pub told_before: Option<Obs>,
    /// The lowest end told during the drop.
    pub lowest: i64,
    /// Brokers that told less than `before`, with the last value each told (bounded, see
    /// [`MAX_LOW_BROKERS`]).
    pub low: Vec<(Endpoint, i64)>,
    /// The last value below `before`.
    pub last_ts: Timestamp,
}

/// What one told end of log means.
#[derive(Debug)]
pub enum Outcome {
    Quiet,
    /// A value below what the client knew: the alert, and whether it is a new harm.
    Alert(Box<Alert>, Harm),
    /// Every broker that told less told at least the compared value again: the drop is over.
    Recovered,
}

/// The condition: one client's end of log of one partition in one series.
pub fn key(client: &ClientKey, tp: &Tp, series: Series) -> IncidentKey {
    IncidentKey::new(
        AlertKind::ListOffsetsRegression,
        format!(
            "client={:?}@{} topic={:?} partition={} end_of_log={}",
            client.client_id,
            client.host,
            tp.topic,
            tp.partition,
            end_of_log(series)
        ),
    )
}

fn end_of_log(series: Series) -> &'static str {
    match series {
        Series::Committed => "last_stable_offset",
        Series::Uncommitted => "high_watermark",
    }
}

/// What an observation is, by its source: told, served or committed.
fn kind_of(s: Source) -> &'static str {
    match s {
        Source::Fetched => "served",
        Source::Committed => "committed",
        Source::Listoffsets | Source::FetchHwm | Source::FetchLso => "told",
    }
}

/// Checks a newly told end of log `new` against what the client knew; keeps the baselines and the drop.
#[allow(clippy::too_many_arguments)]
pub fn observe(
    cfg: &Threshold,
    quiet_ns: i64,
    st: &mut PartState,
    series: Series,
    new: Obs,
    tp: &Tp,
    ctx: &ConnCtx,
    client_id: Option<&str>,
) -> Outcome {
    let i = series as usize;
    if st.drop[i]
        .as_ref()
        .is_some_and(|d| new.ts.nanos_since(d.last_ts) > quiet_ns)
    {
        st.drop[i] = None;
    }
    // Offsets first, whole observations (about 100 bytes each) only when a drop is found: this runs for
    // every Fetch partition.
    let told_before_at = st.told[i].as_ref().map(|t| t.offset);
    let (served, committed) = (
        st.served.as_ref().map(|o| o.offset),
        st.committed.as_ref().map(|o| o.offset),
    );
    // The highest reference point: told in the same series, served, committed (the first one wins a tie).
    let mut prev_at = told_before_at;
    for o in [served, committed].into_iter().flatten() {
        if prev_at.is_none_or(|p| o > p) {
            prev_at = Some(o);
        }
    }
    let no_drop = st.drop[i].is_none();
    if no_drop
        && !prev_at
            .is_some_and(|p| cfg.enabled && p.saturating_sub(new.offset) >= cfg.min_delta.max(1))
    {
        // The usual case: no drop open and none starting.
        if told_before_at.is_none_or(|t| new.offset >= t) {
            st.told[i] = Some(new);
        }
        return Outcome::Quiet;
    }
    let told_before = st.told[i];
    if told_before.is_none_or(|t| new.offset >= t.offset) {
        st.told[i] = Some(new);
    }
    let consumed = [served, committed].into_iter().flatten().max();
    let critical = consumed.is_some_and(|c| new.offset < c);
    let Some(d) = st.drop[i].as_mut() else {
        // The highest reference point: told in the same series, served, committed.
        let mut prev = told_before;
        for o in [st.served, st.committed].into_iter().flatten() {
            if prev.is_none_or(|p| o.offset > p.offset) {
                prev = Some(o);
            }
        }
        return match prev {
            Some(p)
                if cfg.enabled && p.offset.saturating_sub(new.offset) >= cfg.min_delta.max(1) =>
            {
                let d = EndDrop {
                    before: p,
                    told_before,
                    lowest: new.offset,
                    low: vec![(new.broker, new.offset)],
                    last_ts: new.ts,
                };
                let a = alert(
                    &d,
                    None,
                    new,
                    series,
                    critical,
                    (served, committed),
                    tp,
                    ctx,
                    client_id,
                );
                st.drop[i] = Some(Box::new(d));
                Outcome::Alert(Box::new(a), Harm::New)
            }
            _ => Outcome::Quiet,
        };
    };
    if new.offset >= d.before.offset {
        // The leader telling the true end is no recovery; a broker that told less catching up is.
        let Some(k) = d.low.iter().position(|(b, _)| *b == new.broker) else {
            return Outcome::Quiet;
        };
        d.low.swap_remove(k);
        if !d.low.is_empty() {
            return Outcome::Quiet;
        }
        st.drop[i] = None;
        return Outcome::Recovered;
    }
    let at = d.low.iter().position(|(b, _)| *b == new.broker);
    let floor = at.map(|k| d.low[k].1);
    let lower_than = if new.offset < d.lowest {
        Some(d.lowest)
    } else {
        floor.filter(|f| new.offset < *f)
    };
    match at {
        Some(k) => d.low[k].1 = new.offset,
        None if d.low.len() < MAX_LOW_BROKERS => d.low.push((new.broker, new.offset)),
        None => {}
    }
    d.lowest = d.lowest.min(new.offset);
    if new.ts > d.last_ts {
        d.last_ts = new.ts;
    }
    let a = alert(
        d,
        lower_than,
        new,
        series,
        critical,
        (served, committed),
        tp,
        ctx,
        client_id,
    );
    Outcome::Alert(
        Box::new(a),
        if lower_than.is_some() {
            Harm::New
        } else {
            Harm::Same
        },
    )
}

#[allow(clippy::too_many_arguments)]
fn alert(
    d: &EndDrop,
    lower_than: Option<i64>,
    new: Obs,
    series: Series,
    critical: bool,
    (served, committed): (Option<i64>, Option<i64>),
    tp: &Tp,
    ctx: &ConnCtx,
    client_id: Option<&str>,
) -> Alert {
    let p = d.before;
    let sev = if critical {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let what = match new.source {
        Source::Listoffsets => "ListOffsets(latest) answered",
        Source::FetchLso => "a Fetch response gave last stable offset",
        _ => "a Fetch response gave high watermark",
    };
    let before = match p.source {
        Source::Fetched => "end of what it was served",
        Source::Committed => "offset it committed",
        _ => "end of log it was told",
    };
    let mut text = format!(
        "{tp}: {what} {} from broker {}, {} below the {before} ({}, {} from broker {})",
        new.offset,
        new.broker,
        p.offset.saturating_sub(new.offset),
        p.offset,
        p.source.as_str(),
        p.broker
    );
    if critical {
        let consumed = served.max(committed).unwrap_or(p.offset);
        text.push_str(&format!(
            ": records up to {consumed} it already consumed or committed are gone from this broker's view"
        ));
    }
    if let Some(l) = lower_than {
        text.push_str(&format!("; lower than the {l} told earlier in this drop"));
    }
    let mut a = Alert::new(AlertKind::ListOffsetsRegression, sev, new.ts, text)
        .on(ctx, client_id)
        .tp(tp)
        .field("previous_offset", p.offset)
        .field("previous_source", p.source.as_str())
        .field("previous_ts", p.ts.to_rfc3339())
        .field("previous_broker", p.broker.to_string())
        .field("new_offset", new.offset)
        .field("new_source", new.source.as_str())
        .field("delta", p.offset.saturating_sub(new.offset))
        // Which end of log was compared: the high watermark (what read_uncommitted consumers see) or the
        // last stable offset (read_committed).
        .field("end_of_log", end_of_log(series))
        // What previous_offset is: an end of log the client was told, the end of what it was served, or
        // its committed offset. Frozen for the whole drop: every line of an incident compares with it.
        .field("compared_with", kind_of(p.source))
        // The exchange that told (served, committed) the value compared with, and the one that told less.
        .evidence(Evidence::of_obs("before", &p))
        .evidence(Evidence::of_obs("trigger", &new));
    if let Some(t) = d.told_before {
        a = a.field("previous_told_offset", t.offset);
    }
    if let Some(e) = p.epoch {
        a = a.field("previous_leader_epoch", e);
    }
    if let Some(e) = new.epoch {
        a = a.field("new_leader_epoch", e);
    }
    if let Some(c) = committed {
        a = a.field("committed_offset", c);
    }
    if let Some(s) = served {
        a = a.field("consumed_offset", s);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{alert_json, ctx, obs};
    use std::net::{IpAddr, Ipv4Addr};

    const QUIET: i64 = 300_000_000_000;

    fn run(st: &mut PartState, series: Series, o: Obs) -> Outcome {
        observe(
            &Threshold::default(),
            QUIET,
            st,
            series,
            o,
            &Tp::new("orders", 0),
            &ctx(),
            Some("app"),
        )
    }

    fn at(o: Obs, broker: u8) -> Obs {
        Obs {
            broker: Endpoint::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, broker)), 9092),
            ..o
        }
    }

    fn line(out: Outcome) -> (serde_json::Value, Harm) {
        match out {
            Outcome::Alert(a, h) => (alert_json(&a), h),
            other => panic!("expected an alert, got {other:?}"),
        }
    }

    #[test]
    fn fires_when_hwm_drops_below_consumed_and_is_critical() {
        let mut st = PartState::default();
        assert!(matches!(
            run(&mut st, Series::Uncommitted, obs(10, 1, Source::FetchHwm)),
            Outcome::Quiet
        ));
        st.raise_served(obs(10, 2, Source::Fetched));
        let (a, h) = line(run(
            &mut st,
            Series::Uncommitted,
            obs(5, 3, Source::FetchHwm),
        ));
        assert_eq!(h, Harm::New);
        assert_eq!(a["severity"], "critical");
        assert_eq!(
            (&a["previous_offset"], &a["new_offset"], &a["delta"]),
            (&10.into(), &5.into(), &5.into())
        );
        assert_eq!(
            (
                &a["compared_with"],
                &a["previous_told_offset"],
                &a["consumed_offset"]
            ),
            (&"told".into(), &10.into(), &10.into())
        );
        // The same lower value again: the same harm (a repeat for the incident).
        let (_, h) = line(run(
            &mut st,
            Series::Uncommitted,
            obs(5, 4, Source::FetchHwm),
        ));
        assert_eq!(h, Harm::Same);
        // A further drop: a new harm, compared with the same "before".
        let (a, h) = line(run(
            &mut st,
            Series::Uncommitted,
            obs(3, 5, Source::Listoffsets),
        ));
        assert_eq!(h, Harm::New);
        assert_eq!(
            (&a["previous_offset"], &a["delta"]),
            (&10.into(), &7.into())
        );
    }

    /// Found by the `engine_packets` fuzzer (`fuzz/regressions/engine_packets/
    /// listoffsets-regression-delta-overflow`): offsets are wire values, their difference overflowed.
    #[test]
    fn extreme_offsets_saturate_the_delta() {
        let mut st = PartState::default();
        assert!(matches!(
            run(
                &mut st,
                Series::Uncommitted,
                obs(i64::MAX, 1, Source::FetchHwm)
            ),
            Outcome::Quiet
        ));
        let (a, _) = line(run(
            &mut st,
            Series::Uncommitted,
            obs(-5, 2, Source::FetchHwm),
        ));
        assert_eq!(
            (&a["previous_offset"], &a["new_offset"], &a["delta"]),
            (&i64::MAX.into(), &(-5).into(), &i64::MAX.into())
        );
        // The other way round is growth: quiet.
        let mut st = PartState::default();
        run(
            &mut st,
            Series::Uncommitted,
            obs(i64::MIN, 1, Source::FetchHwm),
        );
        assert!(matches!(
            run(
                &mut st,
                Series::Uncommitted,
                obs(i64::MAX, 2, Source::FetchHwm)
            ),
            Outcome::Quiet
        ));
    }

    #[test]
    fn warning_when_only_told_and_quiet_when_growing_or_other_series() {
        let mut st = PartState::default();
        assert!(matches!(
            run(
                &mut st,
                Series::Uncommitted,
                obs(10, 1, Source::Listoffsets)
            ),
            Outcome::Quiet
        ));
        assert!(matches!(
            run(&mut st, Series::Uncommitted, obs(12, 2, Source::FetchHwm)),
            Outcome::Quiet
        ));
        // LSO below HWM is normal: a different series.
        assert!(matches!(
            run(&mut st, Series::Committed, obs(8, 3, Source::FetchLso)),
            Outcome::Quiet
        ));
        let (a, _) = line(run(
            &mut st,
            Series::Uncommitted,
            obs(0, 4, Source::Listoffsets),
        ));
        assert_eq!(a["severity"], "warning");
        assert_eq!(a["previous_source"], "fetch_hwm");
        assert!(a.get("consumed_offset").is_none());
    }

    /// The bounce of the issue: told 10 by the leader, 4 by a lagging follower, again and again, once
    /// served 5 by the follower. Every value below is compared with the same 10 (told), one new harm.
    #[test]
    fn a_bounce_is_one_drop_with_a_frozen_before_until_the_follower_recovers() {
        let mut st = PartState::default();
        let (leader, follower) = (1, 3);
        assert!(matches!(
            run(
                &mut st,
                Series::Uncommitted,
                at(obs(10, 1, Source::FetchHwm), leader)
            ),
            Outcome::Quiet
        ));
        st.raise_served(at(obs(3, 1, Source::Fetched), leader));
        let (a, h) = line(run(
            &mut st,
            Series::Uncommitted,
            at(obs(4, 2, Source::FetchHwm), follower),
        ));
        assert_eq!(h, Harm::New);
        assert_eq!(
            (a["severity"].as_str(), a["previous_offset"].as_i64()),
            (Some("warning"), Some(10))
        );
        for s in 3..40 {
            assert!(matches!(
                run(
                    &mut st,
                    Series::Uncommitted,
                    at(obs(10, s, Source::FetchHwm), leader)
                ),
                Outcome::Quiet
            ));
            if s == 20 {
                // The follower served record 4: served 5, still below the frozen 10 told.
                st.raise_served(at(obs(5, s, Source::Fetched), follower));
            }
            let (a, h) = line(run(
                &mut st,
                Series::Uncommitted,
                at(obs(4, s, Source::FetchHwm), follower),
            ));
            assert_eq!(h, Harm::Same, "at {s}");
            assert_eq!(
                (
                    a["previous_offset"].as_i64(),
                    a["previous_source"].as_str(),
                    a["compared_with"].as_str()
                ),
                (Some(10), Some("fetch_hwm"), Some("told"))
            );
            assert_eq!(
                a["previous_broker"],
                at(obs(0, 0, Source::FetchHwm), leader).broker.to_string()
            );
            // Served 5 > told 4: critical from then on (the incident makes that a line of its own).
            assert_eq!(a["severity"], if s >= 20 { "critical" } else { "warning" });
        }
        // The follower catches up: recovered; a later drop is a new one.
        assert!(matches!(
            run(
                &mut st,
                Series::Uncommitted,
                at(obs(10, 41, Source::FetchHwm), follower)
            ),
            Outcome::Recovered
        ));
        assert!(st.drop[0].is_none());
        let (_, h) = line(run(
            &mut st,
            Series::Uncommitted,
            at(obs(6, 42, Source::FetchHwm), follower),
        ));
        assert_eq!(h, Harm::New);
    }

    /// The same broker going lower than it told earlier in the drop is a new harm even above the lowest
    /// (a re-created topic that grew to 3, then told 2).
    #[test]
    fn a_broker_going_back_within_the_drop_is_new_harm_and_quiet_ends_it() {
        let mut st = PartState::default();
        run(&mut st, Series::Committed, obs(5, 1, Source::Listoffsets));
        assert!(matches!(
            run(&mut st, Series::Committed, obs(2, 2, Source::Listoffsets)),
            Outcome::Alert(_, Harm::New)
        ));
        assert!(matches!(
            run(&mut st, Series::Committed, obs(3, 3, Source::Listoffsets)),
            Outcome::Alert(_, Harm::Same)
        ));
        let (a, h) = line(run(
            &mut st,
            Series::Committed,
            obs(2, 4, Source::Listoffsets),
        ));
        assert_eq!(h, Harm::New);
        assert_eq!(a["end_of_log"], "last_stable_offset");
        assert!(a["explanation"]
            .as_str()
            .unwrap()
            .contains("lower than the 3 told earlier"));
        // Quiet for longer than an incident lasts: the next value below opens a new drop.
        let later = obs(2, 4 + QUIET / 1_000_000_000 + 1, Source::Listoffsets);
        assert!(matches!(
            run(&mut st, Series::Committed, later),
            Outcome::Alert(_, Harm::New)
        ));
        assert_eq!(st.drop[1].as_ref().map(|d| d.last_ts), Some(later.ts));
    }
}
