//! DOS dates and times (FAT spec §6.1): local-time fields with two-second resolution, from
//! 1980-01-01 to 2107-12-31. cvmkit treats them as UTC.

/// A DOS date and time as stored in a directory entry, plus the creation "tenths" field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct DosDateTime {
    /// `DIR_WrtDate`-style date: bits 15–9 year − 1980, 8–5 month (1–12), 4–0 day (1–31).
    pub date: u16,
    /// `DIR_WrtTime`-style time: bits 15–11 hours, 10–5 minutes, 4–0 seconds / 2.
    pub time: u16,
    /// `DIR_CrtTimeTenth`: hundredths of a second (0–199) past `time`; only the creation time
    /// has it, 0 elsewhere.
    pub tenths: u8,
}

/// Seconds from 1970-01-01 to 1980-01-01 00:00:00 UTC, the earliest DOS time.
pub const DOS_EPOCH: u64 = 315_532_800;
/// Seconds from 1970-01-01 to 2107-12-31 23:59:59 UTC, the latest DOS time.
pub const DOS_MAX: u64 = 4_354_819_199;

impl DosDateTime {
    /// The DOS time of `unix` seconds (UTC), clamped to 1980-01-01 00:00:00 ..= 2107-12-31
    /// 23:59:59, as `mkfs.fat` and `mtools` do for `SOURCE_DATE_EPOCH`. Odd seconds go to
    /// `tenths` (100).
    ///
    /// ```
    /// use cvmkit_fat::DosDateTime;
    /// let t = DosDateTime::from_unix(1_700_000_001); // 2023-11-14 22:13:21 UTC
    /// assert_eq!(t.ymd_hms(), (2023, 11, 14, 22, 13, 20));
    /// assert_eq!(t.tenths, 100);
    /// assert_eq!(DosDateTime::from_unix(0).ymd_hms(), (1980, 1, 1, 0, 0, 0));
    /// ```
    pub fn from_unix(unix: u64) -> DosDateTime {
        let t = unix.clamp(DOS_EPOCH, DOS_MAX);
        let days = t / 86_400;
        let secs = t % 86_400;
        let (y, m, d) = civil_from_days(days);
        let (hh, mm, ss) = (secs / 3600, (secs / 60) % 60, secs % 60);
        DosDateTime {
            date: (((y - 1980) as u16) << 9) | ((m as u16) << 5) | d as u16,
            time: ((hh as u16) << 11) | ((mm as u16) << 5) | (ss / 2) as u16,
            tenths: ((ss % 2) * 100) as u8,
        }
    }

    /// (year, month, day, hour, minute, second) as stored (seconds even; `tenths` not added).
    pub fn ymd_hms(&self) -> (u32, u32, u32, u32, u32, u32) {
        let d = u32::from(self.date);
        let t = u32::from(self.time);
        (
            1980 + (d >> 9),
            (d >> 5) & 0xF,
            d & 0x1F,
            t >> 11,
            (t >> 5) & 0x3F,
            (t & 0x1F) * 2,
        )
    }
}

/// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamps_and_converts() {
        assert_eq!(
            DosDateTime::from_unix(DOS_EPOCH),
            DosDateTime {
                date: 0x21,
                time: 0,
                tenths: 0
            }
        );
        assert_eq!(
            DosDateTime::from_unix(u64::MAX).ymd_hms(),
            (2107, 12, 31, 23, 59, 58)
        );
        assert_eq!(
            DosDateTime::from_unix(951_782_400).ymd_hms(),
            (2000, 2, 29, 0, 0, 0)
        );
        assert_eq!(
            DosDateTime::from_unix(1_709_164_799).ymd_hms(),
            (2024, 2, 28, 23, 59, 58)
        );
    }
}
