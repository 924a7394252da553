//! Parsing a whole log: the first (`TCG_PCR_EVENT`) record, the Spec ID event, the
//! `TCG_PCR_EVENT2` records that follow, padding, the log kind and the findings.

use crate::{Digest, HashAlg};
use crate::error::{Error, ErrorKind};
use crate::event::{Event, RecordFormat, Register};
use crate::EventType;
use crate::finding::Finding;
use cvmkit_measure::Reader;
use crate::replay::Replay;
use crate::spec_id::{SpecIdEvent, SPEC_ID_EVENT03};

/// What produced the log, which decides how record indexes map to registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LogKind {
    /// A TCG PC-Client log for a TPM (`/sys/kernel/security/tpm0/binary_bios_measurements`):
    /// PCRIndex is a PCR, 0–23, replayed in every bank the log declares.
    Tpm,
    /// A confidential-computing event log (the ACPI CCEL table's log area, Intel TDX): the index
    /// is an MR index, 0 = MRTD, *n* = RTMR *n*−1, replayed in SHA-384.
    Ccel,
}

impl LogKind {
    /// The register a record's index designates in a log of this kind.
    pub fn register(self, pcr_index: u32) -> Register {
        match self {
            LogKind::Tpm => Register::Pcr(pcr_index),
            LogKind::Ccel => match pcr_index {
                0 => Register::Mrtd,
                n => Register::Rtmr(n - 1),
            },
        }
    }
}

/// Which record layout the log uses after its first record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LogFormat {
    /// The first record is a Spec ID event ("Spec ID Event03"); `TCG_PCR_EVENT2` records follow.
    CryptoAgile,
    /// Every record is a SHA-1 `TCG_PCR_EVENT` (TPM 1.2 style; no Spec ID event).
    Sha1,
}

/// Fill bytes found where the next record would start.
///
/// CCEL log areas are the size the ACPI table declares, filled with 0xFF (or 0x00) after the last
/// event; go-eventlog treats a record starting with PCRIndex 0xFFFFFFFF as the end of the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Padding {
    /// Offset of the first fill byte (= [`EventLog::bytes_used`]).
    pub offset: usize,
    /// Number of bytes from `offset` to the end of the input.
    pub len: usize,
    /// The fill byte (0xFF or 0x00).
    pub fill: u8,
    /// Whether every byte from `offset` on is `fill`. When `false`, the log ended at a PCRIndex of
    /// 0xFFFFFFFF that does not start a valid record, and other bytes follow (reported as a
    /// [`Finding`](crate::Finding)).
    pub uniform: bool,
}

/// A parsed event log.
///
/// Parsing checks structure only; nothing in the log is trusted until its replay matches
/// registers the hardware reports.
#[derive(Clone, Debug)]
pub struct EventLog {
    kind: LogKind,
    detected_kind: LogKind,
    format: LogFormat,
    spec_id: Option<SpecIdEvent>,
    events: Vec<Event>,
    bytes_used: usize,
    padding: Option<Padding>,
    findings: Vec<Finding>,
}

/// Positions of the last byte that is not 0xFF and not 0x00, so "is the rest fill?" is O(1).
struct FillMarks {
    last_not_ff: Option<usize>,
    last_not_zero: Option<usize>,
    len: usize,
}

impl FillMarks {
    fn new(bytes: &[u8]) -> FillMarks {
        FillMarks {
            last_not_ff: bytes.iter().rposition(|&b| b != 0xFF),
            last_not_zero: bytes.iter().rposition(|&b| b != 0x00),
            len: bytes.len(),
        }
    }

    /// Padding starting at `offset`, if the bytes from there look like fill.
    fn padding_at(&self, bytes: &[u8], offset: usize) -> Option<Padding> {
        let rest_is = |last: Option<usize>| last.is_none_or(|p| p < offset);
        let len = self.len.saturating_sub(offset);
        if len == 0 {
            return None;
        }
        if rest_is(self.last_not_ff) {
            return Some(Padding {
                offset,
                len,
                fill: 0xFF,
                uniform: true,
            });
        }
        if rest_is(self.last_not_zero) {
            return Some(Padding {
                offset,
                len,
                fill: 0x00,
                uniform: true,
            });
        }
        if bytes.get(offset..offset.saturating_add(4)) == Some(&[0xFF; 4]) {
            return Some(Padding {
                offset,
                len,
                fill: 0xFF,
                uniform: false,
            });
        }
        None
    }
}

impl EventLog {
    /// Parses a TPM or CCEL log, detecting its [kind](LogKind) (see [`EventLog::detected_kind`]).
    ///
    /// Trailing 0xFF / 0x00 padding ends the log without error; see [`EventLog::padding`].
    pub fn parse(bytes: &[u8]) -> Result<EventLog, Error> {
        let mut log = parse_records(bytes)?;
        log.set_kind(log.detected_kind);
        Ok(log)
    }

    /// Parses a log whose kind the caller knows (for example because it came from the CCEL ACPI
    /// table, or from the TPM's securityfs file).
    pub fn parse_as(bytes: &[u8], kind: LogKind) -> Result<EventLog, Error> {
        let mut log = parse_records(bytes)?;
        log.set_kind(kind);
        Ok(log)
    }

    /// Reinterprets the log as `kind`: recomputes every event's [`Register`] and the findings.
    pub fn set_kind(&mut self, kind: LogKind) {
        self.kind = kind;
        for event in &mut self.events {
            event.register = kind.register(event.pcr_index);
        }
        self.findings = crate::finding::analyze(self);
    }

    /// The kind the log is interpreted as.
    pub fn kind(&self) -> LogKind {
        self.kind
    }

    /// The kind auto-detection chose: [`LogKind::Ccel`] when the log is crypto-agile, declares
    /// SHA-384 as its only algorithm and extends only MR indexes 1–4 (RTMR0–3); otherwise
    /// [`LogKind::Tpm`]. (TPM logs always extend PCR0; a TDX log never extends MR index 0.)
    pub fn detected_kind(&self) -> LogKind {
        self.detected_kind
    }

    /// The record layout.
    pub fn format(&self) -> LogFormat {
        self.format
    }

    /// The Spec ID event of a crypto-agile log.
    pub fn spec_id(&self) -> Option<&SpecIdEvent> {
        self.spec_id.as_ref()
    }

    /// The algorithms records may carry: those of the Spec ID event, or SHA-1 for a SHA-1 log.
    pub fn algorithms(&self) -> Vec<HashAlg> {
        match &self.spec_id {
            Some(spec) => spec.algorithms().collect(),
            None => vec![HashAlg::SHA1],
        }
    }

    /// Every record in file order, including the first (Spec ID) record.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Bytes consumed by records; the rest of the input, if any, is [padding](EventLog::padding).
    pub fn bytes_used(&self) -> usize {
        self.bytes_used
    }

    /// The trailing fill, if the input did not end right after the last record.
    pub fn padding(&self) -> Option<Padding> {
        self.padding
    }

    /// Problems that do not stop parsing or replay but that a verifier may want to reject, such as
    /// a duplicate separator. See [`Finding::severity`].
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// The banks [`EventLog::replay`] computes: for a TPM log every declared algorithm this crate
    /// can hash (SHA-1, SHA-256, SHA-384, SHA-512); for a CCEL log SHA-384 if declared.
    pub fn replay_banks(&self) -> Vec<HashAlg> {
        self.algorithms()
            .into_iter()
            .filter(|alg| alg.is_supported())
            .filter(|alg| self.kind != LogKind::Ccel || *alg == HashAlg::SHA384)
            .collect()
    }

    /// Replays the log from the registers' reset values.
    ///
    /// * TPM: PCR0–23 start at zero in every bank; an `EV_NO_ACTION` "StartupLocality" event seen
    ///   before any PCR0 extension sets PCR0's last byte to the locality (as the TPM does when
    ///   TPM2_Startup runs at locality 3 or 4).
    /// * CCEL: RTMR0–3 start at zero and MR index *n* extends RTMR *n*−1. Events for MR index 0
    ///   (MRTD) are not extended: MRTD is measured by the TDX module when the TD is built and can
    ///   only be predicted from the firmware image, not replayed (a [`Finding`] reports them).
    /// * `EV_NO_ACTION` events are never extended. Events for registers outside those ranges
    ///   are skipped (and reported). An event without a digest for a bank leaves that bank's
    ///   register as it was (and is reported).
    pub fn replay(&self) -> Replay {
        let mut replay = Replay::new(self.kind, &self.replay_banks());
        for event in &self.events {
            if !event.is_extended() {
                if let (LogKind::Tpm, 0, Some(locality)) =
                    (self.kind, event.pcr_index, event.startup_locality())
                {
                    // Ignored (and reported) once PCR0 has been extended.
                    let _ = replay.set_startup_locality(locality);
                }
                continue;
            }
            replay.extend_event(event);
        }
        replay
    }
}

/// Reads the records; `kind` is left as detected and the findings empty.
fn parse_records(bytes: &[u8]) -> Result<EventLog, Error> {
    let marks = FillMarks::new(bytes);
    if bytes.is_empty() || marks.padding_at(bytes, 0).is_some_and(|p| p.uniform) {
        return Err(Error::new(0, 0, ErrorKind::Empty));
    }
    let mut r = Reader::new(bytes);
    let first = read_pcr_event(&mut r, 0)?;
    let spec_id =
        if first.event_type == EventType::EV_NO_ACTION && first.data.starts_with(SPEC_ID_EVENT03) {
            // The data starts after the 32-byte TCG_PCR_EVENT header.
            Some(SpecIdEvent::parse(&first.data, 0, first.offset + 32)?)
        } else {
            None
        };
    let format = if spec_id.is_some() {
        LogFormat::CryptoAgile
    } else {
        LogFormat::Sha1
    };
    let mut events = vec![first];
    let mut padding = None;
    while r.remaining() > 0 {
        let fill = marks.padding_at(bytes, r.pos());
        if let Some(p) = fill.filter(|p| p.uniform) {
            padding = Some(p);
            break;
        }
        let index = events.len();
        let mut next = r;
        let event = match &spec_id {
            Some(spec) => read_pcr_event2(&mut next, index, spec),
            None => read_pcr_event(&mut next, index),
        };
        match (event, fill) {
            (Ok(event), _) => {
                events.push(event);
                r = next;
            }
            // PCRIndex 0xFFFFFFFF followed by something that is not a record: the end-of-log
            // marker go-eventlog accepts. (Windows logs have real records with PCRIndex -1.)
            (Err(_), Some(p)) => {
                padding = Some(p);
                break;
            }
            (Err(error), None) => return Err(error),
        }
    }
    let bytes_used = padding.map_or(bytes.len(), |p| p.offset);
    let detected_kind = detect_kind(spec_id.as_ref(), &events);
    Ok(EventLog {
        kind: detected_kind,
        detected_kind,
        format,
        spec_id,
        events,
        bytes_used,
        padding,
        findings: Vec::new(),
    })
}

fn detect_kind(spec_id: Option<&SpecIdEvent>, events: &[Event]) -> LogKind {
    let Some(spec) = spec_id else {
        return LogKind::Tpm;
    };
    let only_sha384 = spec.algorithms().eq([HashAlg::SHA384]);
    let rtmr_indexes = events
        .iter()
        .filter(|e| e.is_extended())
        .all(|e| (1..=4).contains(&e.pcr_index));
    if only_sha384 && rtmr_indexes {
        LogKind::Ccel
    } else {
        LogKind::Tpm
    }
}

fn truncated(index: usize, r: &Reader<'_>, field: &'static str, needed: usize) -> Error {
    Error::new(
        index,
        r.pos(),
        ErrorKind::Truncated {
            field,
            needed,
            available: r.remaining(),
        },
    )
}

/// Reads `EventSize` and `Event[EventSize]`.
fn read_event_data(r: &mut Reader<'_>, index: usize) -> Result<Vec<u8>, Error> {
    let size_at = r.pos();
    let size = r.u32().ok_or_else(|| truncated(index, r, "EventSize", 4))?;
    let data = r.bytes_claimed(u64::from(size)).ok_or_else(|| {
        Error::new(
            index,
            size_at,
            ErrorKind::EventSizeTooLarge {
                size,
                available: r.remaining(),
            },
        )
    })?;
    Ok(data.to_vec())
}

/// `TCG_PCR_EVENT`: PCRIndex, EventType, Digest (SHA-1), EventSize, Event.
fn read_pcr_event(r: &mut Reader<'_>, index: usize) -> Result<Event, Error> {
    const HEADER: usize = 4 + 4 + 20;
    let offset = r.pos();
    if r.remaining() < HEADER + 4 {
        return Err(truncated(index, r, "TCG_PCR_EVENT header", HEADER + 4));
    }
    let pcr_index = r.u32().unwrap_or_default();
    let event_type = EventType(r.u32().unwrap_or_default());
    let digest = r.array::<20>().unwrap_or_default();
    let data = read_event_data(r, index)?;
    Ok(Event {
        index,
        offset,
        size: r.pos() - offset,
        format: RecordFormat::PcrEvent,
        pcr_index,
        register: Register::Pcr(pcr_index),
        event_type,
        digests: vec![Digest::new(HashAlg::SHA1, digest)],
        data,
    })
}

/// `TCG_PCR_EVENT2`: PCRIndex, EventType, TPML_DIGEST_VALUES, EventSize, Event.
fn read_pcr_event2(r: &mut Reader<'_>, index: usize, spec: &SpecIdEvent) -> Result<Event, Error> {
    const HEADER: usize = 4 + 4 + 4;
    let offset = r.pos();
    if r.remaining() < HEADER {
        return Err(truncated(index, r, "TCG_PCR_EVENT2 header", HEADER));
    }
    let pcr_index = r.u32().unwrap_or_default();
    let event_type = EventType(r.u32().unwrap_or_default());
    let count_at = r.pos();
    let count = r.u32().unwrap_or_default();
    let declared = spec.digest_sizes.len();
    if count as usize > declared {
        return Err(Error::new(
            index,
            count_at,
            ErrorKind::DigestCountTooLarge { count, declared },
        ));
    }
    // Bounded by the Spec ID event's algorithm list, itself bounded by the input length.
    let mut digests: Vec<Digest> = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let alg_at = r.pos();
        let alg = HashAlg(
            r.u16()
                .ok_or_else(|| truncated(index, r, "TPMT_HA.hashAlg", 2))?,
        );
        let size = spec
            .digest_size(alg)
            .ok_or_else(|| Error::new(index, alg_at, ErrorKind::UndeclaredAlgorithm { alg }))?;
        if digests.iter().any(|d| d.alg() == alg) {
            return Err(Error::new(
                index,
                alg_at,
                ErrorKind::DuplicateDigest { alg },
            ));
        }
        let bytes = r
            .bytes(size)
            .ok_or_else(|| truncated(index, r, "TPMT_HA.digest", size))?;
        digests.push(Digest::new(alg, bytes));
    }
    let data = read_event_data(r, index)?;
    Ok(Event {
        index,
        offset,
        size: r.pos() - offset,
        format: RecordFormat::PcrEvent2,
        pcr_index,
        register: Register::Pcr(pcr_index),
        event_type,
        digests,
        data,
    })
}
