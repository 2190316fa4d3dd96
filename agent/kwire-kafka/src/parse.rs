//! [`Parse`]: the one result of incremental parsing in this crate (probes, the streaming walk of big
//! frames, record-set headers, varints), after Suricata's `AppLayerResult` and Retina's `ParseResult`.
//!
//! A parser is handed the bytes it has so far, from a position it was told, and answers one of three:
//! - [`Parse::Done`]`(value, consumed)`: the unit parsed; it spans exactly `consumed` bytes from where the
//!   parser started (`consumed <= input length`, and 0 only for units that are empty on the wire). A probe,
//!   which only looks, says how many bytes it looked at.
//! - [`Parse::NeedMore`]`(n)`: the input ends before the unit can be judged. Nothing is consumed and no
//!   state changed: call again from the same position with more bytes. `Some(n)`: at least `n` more bytes
//!   are needed (a lower bound, never more than the unit could need); `None`: unknown until more arrive.
//! - [`Parse::Broken`]`{ at, why }`: these bytes can never be this unit, however many follow. `at` is the
//!   offset (from where the parser started) of the byte that proved it, `why` a fixed phrase for notices
//!   and tests. Nothing is consumed. A parser that runs another on a sub-slice shifts its answer with
//!   [`Parse::after`]; `parse_try!` passes answers on unchanged, so it joins parsers that count from the
//!   same origin (the skeleton's cursor does).
//!
//! Easy to get wrong: `NeedMore` is not `Broken` — a caller that treats a short input as garbage drops
//! frames split across packets, and one that treats garbage as short waits forever (every caller that
//! waits bounds what it holds). `Done` of a probe is a plausibility, not a decode: callers that must not
//! invent confirm it with a whole-frame decode where the whole frame is at hand.

/// Outcome of parsing one unit from the bytes at hand (see the module doc for the invariants).
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parse<T> {
    /// Parsed: the value and the number of bytes it spans.
    Done(T, usize),
    /// More bytes are needed: at least this many when known.
    NeedMore(Option<usize>),
    /// Never this unit: the offset of the byte that proved it and why.
    Broken { at: usize, why: &'static str },
}

impl<T> Parse<T> {
    /// Short input, amount unknown.
    pub const MORE: Parse<T> = Parse::NeedMore(None);

    /// Broken at `at` because `why`.
    pub fn broken(at: usize, why: &'static str) -> Self {
        Parse::Broken { at, why }
    }

    /// The same outcome with the value mapped.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Parse<U> {
        match self {
            Parse::Done(v, n) => Parse::Done(f(v), n),
            Parse::NeedMore(n) => Parse::NeedMore(n),
            Parse::Broken { at, why } => Parse::Broken { at, why },
        }
    }

    /// The same outcome for a unit that starts `k` bytes into the caller's input (the parser was given
    /// `&input[k..]`): `consumed` and `at` counted from the caller's start.
    pub fn after(self, k: usize) -> Self {
        match self {
            Parse::Done(v, n) => Parse::Done(v, n + k),
            Parse::NeedMore(n) => Parse::NeedMore(n),
            Parse::Broken { at, why } => Parse::Broken { at: at + k, why },
        }
    }

    /// True for [`Parse::Done`].
    pub fn is_done(&self) -> bool {
        matches!(self, Parse::Done(..))
    }

    /// True for [`Parse::NeedMore`].
    pub fn is_need_more(&self) -> bool {
        matches!(self, Parse::NeedMore(_))
    }
}

/// Unwraps a [`Parse::Done`] value inside a function returning `Parse<_>`; returns any other outcome
/// (need more, broken) to the caller unchanged, like `?`.
macro_rules! parse_try {
    ($e:expr) => {
        match $e {
            $crate::parse::Parse::Done(v, _) => v,
            $crate::parse::Parse::NeedMore(n) => return $crate::parse::Parse::NeedMore(n),
            $crate::parse::Parse::Broken { at, why } => {
                return $crate::parse::Parse::Broken { at, why }
            }
        }
    };
}
pub(crate) use parse_try;

#[cfg(test)]
mod tests {
    use super::*;

    fn two(b: &[u8]) -> Parse<u16> {
        match b {
            [0xFF, ..] => Parse::broken(0, "0xFF is never a first byte"),
            [x, y, ..] => Parse::Done(u16::from_be_bytes([*x, *y]), 2),
            _ => Parse::NeedMore(Some(2 - b.len())),
        }
    }

    fn sum(b: &[u8]) -> Parse<u32> {
        let a = parse_try!(two(b));
        let c = parse_try!(two(b.get(2..).unwrap_or(&[])));
        Parse::Done(u32::from(a) + u32::from(c), 4)
    }

    #[test]
    fn outcomes_and_propagation() {
        assert_eq!(sum(&[0, 1, 0, 2]), Parse::Done(3, 4));
        assert_eq!(sum(&[0, 1, 0]), Parse::NeedMore(Some(1)));
        assert_eq!(sum(&[0]), Parse::NeedMore(Some(1)));
        assert_eq!(
            sum(&[0, 1, 0xFF, 0]),
            Parse::broken(0, "0xFF is never a first byte")
        );
        assert_eq!(two(&[1, 2]).map(|v| v * 2), Parse::Done(0x0204, 2));
        assert!(two(&[]).is_need_more() && two(&[1, 1]).is_done());
    }
}
