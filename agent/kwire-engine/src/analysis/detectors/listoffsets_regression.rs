//! `listoffsets_regression`: a client is told an end of log (ListOffsets latest, or a Fetch high watermark /
//! last stable offset) lower than one it was told, served or committed before. Causes: a leader hand-off to a
//! lagging replica, follower fetching from a lagging replica, a broker that lost unflushed data, a topic
//! deleted and re-created. `critical` when the new end is below what the client consumed or committed (a
//! Spark `failOnDataLoss` consumer aborts exactly then), `warning` otherwise.
//!
//! Like is compared with like: the read_uncommitted series (HWM, ListOffsets isolation 0) and the
//! read_committed series (LSO, ListOffsets isolation 1) are separate. After an alert the baselines drop to
//! the new value, so one regression alerts once, and a further drop alerts again.

use crate::analysis::detectors::Threshold;
use crate::analysis::timeline::{Obs, PartState, Series};
use crate::model::ConnCtx;
use crate::model::Tp;
use crate::output::alert::{Alert, AlertKind, Severity};

/// Checks a newly told end of log `new` against what the client knew; updates the baselines either way.
pub fn observe(
    cfg: &Threshold,
    st: &mut PartState,
    series: Series,
    new: Obs,
    tp: &Tp,
    ctx: &ConnCtx,
    client_id: Option<&str>,
) -> Option<Alert> {
    let i = series as usize;
    // The highest previous reference point: told in the same series, served, committed.
    let mut prev: Option<Obs> = st.told[i];
    for o in [st.served_cmp, st.committed_cmp].into_iter().flatten() {
        if prev.is_none_or(|p| o.offset > p.offset) {
            prev = Some(o);
        }
    }
    let alert = match prev {
        Some(p) if cfg.enabled && p.offset - new.offset >= cfg.min_delta.max(1) => {
            let consumed = [st.served_cmp, st.committed_cmp]
                .into_iter()
                .flatten()
                .map(|o| o.offset)
                .max();
            let critical = consumed.is_some_and(|c| new.offset < c);
            let sev = if critical {
                Severity::Critical
            } else {
                Severity::Warning
            };
            let what = match new.source {
                crate::analysis::timeline::Source::Listoffsets => "ListOffsets(latest) answered",
                crate::analysis::timeline::Source::FetchLso => {
                    "a Fetch response gave last stable offset"
                }
                _ => "a Fetch response gave high watermark",
            };
            let tail = if critical {
                format!("below the {} offset {} the client already had: records it saw are gone from this broker's view", p.source.as_str(), consumed.unwrap_or(p.offset))
            } else {
                format!(
                    "lower than the {} {} it saw before",
                    p.source.as_str(),
                    p.offset
                )
            };
            let mut a = Alert::new(
                AlertKind::ListOffsetsRegression,
                sev,
                new.ts,
                format!(
                    "{tp}: {what} {} from broker {}, {tail} (end of log went backwards by {})",
                    new.offset,
                    new.broker,
                    p.offset - new.offset
                ),
            )
            .on(ctx, client_id)
            .tp(tp)
            .field("previous_offset", p.offset)
            .field("previous_source", p.source.as_str())
            .field("previous_ts", p.ts.to_rfc3339())
            .field("previous_broker", p.broker.to_string())
            .field("new_offset", new.offset)
            .field("new_source", new.source.as_str())
            .field("delta", p.offset - new.offset)
            // Which end of log was compared: the high watermark (what read_uncommitted consumers see) or the
            // last stable offset (read_committed).
            .field(
                "end_of_log",
                if series == Series::Committed {
                    "last_stable_offset"
                } else {
                    "high_watermark"
                },
            );
            if let Some(e) = p.epoch {
                a = a.field("previous_leader_epoch", e);
            }
            if let Some(e) = new.epoch {
                a = a.field("new_leader_epoch", e);
            }
            if let Some(c) = st.committed {
                a = a.field("committed_offset", c.offset);
            }
            if let Some(s) = st.served {
                a = a.field("consumed_offset", s.offset);
            }
            Some(a)
        }
        _ => None,
    };
    if alert.is_some() {
        // Re-baseline at the new value: this drop is reported; a further drop will be too.
        st.told[i] = Some(new);
        let lower = |o: &mut Option<Obs>| {
            if let Some(x) = o.as_mut() {
                if x.offset > new.offset {
                    x.offset = new.offset;
                }
            }
        };
        lower(&mut st.served_cmp);
        lower(&mut st.committed_cmp);
        let other = 1 - i;
        lower(&mut st.told[other]);
    } else if st.told[i].is_none_or(|t| new.offset >= t.offset) {
        st.told[i] = Some(new);
    }
    alert
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::timeline::Source;
    use crate::testutil::{ctx, obs};

    #[test]
    fn fires_when_hwm_drops_below_consumed_and_is_critical() {
        let mut st = PartState::default();
        let tp = Tp::new("orders", 0);
        let c = ctx();
        assert!(observe(
            &Threshold::default(),
            &mut st,
            Series::Uncommitted,
            obs(10, 1, Source::FetchHwm),
            &tp,
            &c,
            Some("app")
        )
        .is_none());
        st.raise_served(obs(10, 2, Source::Fetched));
        let a = observe(
            &Threshold::default(),
            &mut st,
            Series::Uncommitted,
            obs(5, 3, Source::FetchHwm),
            &tp,
            &c,
            Some("app"),
        )
        .unwrap();
        assert_eq!(a.severity, Severity::Critical);
        assert_eq!(a.fields["previous_offset"], 10);
        assert_eq!(a.fields["new_offset"], 5);
        assert_eq!(a.fields["delta"], 5);
        // The same lower value again: no second alert.
        assert!(observe(
            &Threshold::default(),
            &mut st,
            Series::Uncommitted,
            obs(5, 4, Source::FetchHwm),
            &tp,
            &c,
            Some("app")
        )
        .is_none());
        // A further drop: alerts again.
        assert!(observe(
            &Threshold::default(),
            &mut st,
            Series::Uncommitted,
            obs(3, 5, Source::Listoffsets),
            &tp,
            &c,
            Some("app")
        )
        .is_some());
    }

    #[test]
    fn warning_when_only_told_and_quiet_when_growing_or_other_series() {
        let mut st = PartState::default();
        let tp = Tp::new("orders", 0);
        let c = ctx();
        assert!(observe(
            &Threshold::default(),
            &mut st,
            Series::Uncommitted,
            obs(10, 1, Source::Listoffsets),
            &tp,
            &c,
            None
        )
        .is_none());
        assert!(observe(
            &Threshold::default(),
            &mut st,
            Series::Uncommitted,
            obs(12, 2, Source::FetchHwm),
            &tp,
            &c,
            None
        )
        .is_none());
        // LSO below HWM is normal: a different series.
        assert!(observe(
            &Threshold::default(),
            &mut st,
            Series::Committed,
            obs(8, 3, Source::FetchLso),
            &tp,
            &c,
            None
        )
        .is_none());
        let a = observe(
            &Threshold::default(),
            &mut st,
            Series::Uncommitted,
            obs(0, 4, Source::Listoffsets),
            &tp,
            &c,
            None,
        )
        .unwrap();
        assert_eq!(a.severity, Severity::Warning);
        assert_eq!(a.fields["previous_source"], "fetch_hwm");
    }
}
