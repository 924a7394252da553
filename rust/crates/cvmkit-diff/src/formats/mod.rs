//! One comparer per format. Each returns `Ok(false)` when a side could not be parsed (after
//! reporting why), so that the engine compares bytes instead.

pub(crate) mod compress;
pub(crate) mod cpio;
pub(crate) mod dir;
pub(crate) mod fat;
pub(crate) mod gpt;
pub(crate) mod nar;
pub(crate) mod pe;
pub(crate) mod tar;
pub(crate) mod vhd;

use crate::data::Data;
use crate::engine::Engine;
use crate::DiffKind;

/// Loads both sides into memory for a parser that needs whole bytes, or reports the size
/// limit and returns `None`.
pub(crate) fn load_both(
    e: &mut Engine<'_>,
    path: &[String],
    what: &str,
    a: &Data,
    b: &Data,
) -> std::io::Result<Option<(Data, Data)>> {
    let limit = e.opts.max_decompressed;
    if a.len() > limit || b.len() > limit {
        e.push(
            path,
            DiffKind::Limit {
                reason: format!(
                    "{what} larger than the {limit}-byte limit for data held in memory; compared as bytes"
                ),
            },
        );
        return Ok(None);
    }
    Ok(Some((a.load(limit)?, b.load(limit)?)))
}

/// Offset of `inner` within `outer` (a subslice of it).
pub(crate) fn offset_in(outer: &[u8], inner: &[u8]) -> usize {
    (inner.as_ptr() as usize).saturating_sub(outer.as_ptr() as usize)
}

/// Seconds since the epoch as `2024-01-31 12:00:00 UTC (1706702400)`.
pub(crate) fn time(secs: i64) -> String {
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    // Civil from days, Howard Hinnant's algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC ({secs})",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_are_shown_in_utc() {
        assert_eq!(super::time(0), "1970-01-01 00:00:00 UTC (0)");
        assert_eq!(
            super::time(1_706_702_400),
            "2024-01-31 12:00:00 UTC (1706702400)"
        );
    }
}
