//! Hand-built logs for the edge cases real logs do not cover: truncation, absurd counts and
//! sizes, unknown algorithms, padding, the legacy format, findings, and replay speed. Errors are
//! pinned by their exact one-line message.

use std::time::Instant;

use cvmkit_tcg_log::{
    Digest, ErrorKind, EventLog, EventType, Finding, HashAlg, LogFormat, LogKind, Padding,
    Register, Replay, ReplayError,
};

const SHA1: u16 = 0x0004;
const SHA256: u16 = 0x000B;
const SHA384: u16 = 0x000C;

/// The first record: a TCG_PCR_EVENT carrying TCG_EfiSpecIDEvent with `algs` (id, size).
fn spec_id(algs: &[(u16, u16)]) -> Vec<u8> {
    spec_id_raw(algs.len() as u32, algs, &[0])
}

fn spec_id_raw(count: u32, algs: &[(u16, u16)], tail: &[u8]) -> Vec<u8> {
    let mut data = b"Spec ID Event03\0".to_vec();
    data.extend([0, 0, 0, 0, 0, 2, 0, 2]);
    data.extend(count.to_le_bytes());
    for (id, size) in algs {
        data.extend(id.to_le_bytes());
        data.extend(size.to_le_bytes());
    }
    data.extend(tail); // vendorInfoSize (+ vendorInfo)
    pcr_event(0, 3, [0; 20], &data)
}

/// A SHA-1 TCG_PCR_EVENT record.
fn pcr_event(pcr: u32, event_type: u32, digest: [u8; 20], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(pcr.to_le_bytes());
    out.extend(event_type.to_le_bytes());
    out.extend(digest);
    out.extend((data.len() as u32).to_le_bytes());
    out.extend(data);
    out
}

/// A TCG_PCR_EVENT2 record.
fn event2(pcr: u32, event_type: u32, digests: &[(u16, Vec<u8>)], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(pcr.to_le_bytes());
    out.extend(event_type.to_le_bytes());
    out.extend((digests.len() as u32).to_le_bytes());
    for (alg, digest) in digests {
        out.extend(alg.to_le_bytes());
        out.extend(digest);
    }
    out.extend((data.len() as u32).to_le_bytes());
    out.extend(data);
    out
}

/// An event whose digests are the hashes of its data, in the given supported banks.
fn measured(pcr: u32, event_type: u32, banks: &[u16], data: &[u8]) -> Vec<u8> {
    let digests: Vec<(u16, Vec<u8>)> = banks
        .iter()
        .map(|&id| (id, HashAlg(id).hash(data).unwrap().as_bytes().to_vec()))
        .collect();
    event2(pcr, event_type, &digests, data)
}

fn concat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

fn error(bytes: &[u8]) -> String {
    EventLog::parse(bytes).map(|_| ()).unwrap_err().to_string()
}

#[test]
fn empty_and_all_padding() {
    assert_eq!(
        error(&[]),
        "event 0 at offset 0x0: the log is empty (no event before the end of the data or the padding)"
    );
    assert_eq!(
        EventLog::parse(&[0xFF; 4096]).unwrap_err().kind,
        ErrorKind::Empty
    );
    assert_eq!(
        EventLog::parse(&[0x00; 4096]).unwrap_err().kind,
        ErrorKind::Empty
    );
}

#[test]
fn truncated_records() {
    // The first record's header.
    assert_eq!(
        error(&[1, 0, 0]),
        "event 0 at offset 0x0: TCG_PCR_EVENT header needs 32 bytes but only 3 are left; the log is truncated"
    );
    // A TCG_PCR_EVENT2 header cut short.
    let log = concat(&[spec_id(&[(SHA256, 32)]), vec![1, 2, 3]]);
    assert_eq!(
        error(&log),
        "event 1 at offset 0x41: TCG_PCR_EVENT2 header needs 12 bytes but only 3 are left; the log is truncated"
    );
    // A digest cut short.
    let mut event = measured(0, 1, &[SHA256], b"x");
    event.truncate(12 + 2 + 10);
    let log = concat(&[spec_id(&[(SHA256, 32)]), event]);
    assert_eq!(
        error(&log),
        "event 1 at offset 0x4f: TPMT_HA.digest needs 32 bytes but only 10 are left; the log is truncated"
    );
    // EventSize missing.
    let mut event = measured(0, 1, &[SHA256], b"");
    event.truncate(event.len() - 2);
    let log = concat(&[spec_id(&[(SHA256, 32)]), event]);
    assert_eq!(
        error(&log),
        "event 1 at offset 0x6f: EventSize needs 4 bytes but only 2 are left; the log is truncated"
    );
    // Event data cut short; the offset names the EventSize field.
    let mut event = measured(
        4,
        0x8000_0007,
        &[SHA256],
        b"Calling EFI Application from Boot Option",
    );
    event.truncate(event.len() - 1);
    let log = concat(&[spec_id(&[(SHA256, 32)]), event]);
    let err = EventLog::parse(&log).unwrap_err();
    assert_eq!(
        err.kind,
        ErrorKind::EventSizeTooLarge {
            size: 40,
            available: 39
        }
    );
    assert_eq!(
        err.to_string(),
        "event 1 at offset 0x6f: EventSize 40 exceeds the 39 bytes left in the log"
    );
}

#[test]
fn absurd_sizes_and_counts() {
    // EventSize 0xFFFFFFFF: checked against the input before anything is allocated.
    let mut event = event2(0, 1, &[], b"");
    let len = event.len();
    event[len - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
    event.extend([0xAB; 16]);
    let log = concat(&[spec_id(&[(SHA256, 32)]), event]);
    assert_eq!(
        error(&log),
        "event 1 at offset 0x4d: EventSize 4294967295 exceeds the 16 bytes left in the log"
    );

    // A digest count larger than the algorithm list.
    let mut event = measured(0, 1, &[SHA1, SHA256, SHA384], b"x");
    event[8..12].copy_from_slice(&9u32.to_le_bytes());
    let log = concat(&[spec_id(&[(SHA1, 20), (SHA256, 32), (SHA384, 48)]), event]);
    assert_eq!(
        error(&log),
        "event 1 at offset 0x51: digest count 9 exceeds the 3 algorithms declared in the Spec ID event"
    );
    let mut event = measured(0, 1, &[SHA256], b"x");
    event[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
    let log = concat(&[spec_id(&[(SHA256, 32)]), event]);
    assert_eq!(
        EventLog::parse(&log).unwrap_err().kind,
        ErrorKind::DigestCountTooLarge {
            count: u32::MAX,
            declared: 1
        }
    );

    // numberOfAlgorithms far beyond the event.
    let log = spec_id_raw(u32::MAX, &[(SHA256, 32)], &[0]);
    assert_eq!(
        error(&log),
        "event 0 at offset 0x38: the Spec ID event declares 4294967295 algorithms, which need 17179869180 bytes, but only 5 are left in it"
    );
    assert_eq!(
        error(&spec_id_raw(0, &[], &[0])),
        "event 0 at offset 0x38: the Spec ID event declares no digest algorithms"
    );
    // vendorInfoSize beyond the event.
    assert_eq!(
        error(&spec_id_raw(1, &[(SHA256, 32)], &[200, 1, 2])),
        "event 0 at offset 0x40: the Spec ID event's vendorInfoSize 200 exceeds the 2 bytes left in it"
    );
    // A Spec ID event too short for its fixed fields.
    let short = pcr_event(0, 3, [0; 20], b"Spec ID Event03\0\0\0");
    assert_eq!(
        error(&short),
        "event 0 at offset 0x20: TCG_EfiSpecIDEvent needs 28 bytes but only 18 are left; the log is truncated"
    );
}

#[test]
fn spec_id_inconsistencies() {
    assert_eq!(
        error(&spec_id(&[(SHA256, 20)])),
        "event 0 at offset 0x3c: the Spec ID event declares sha256 with 20-byte digests, but sha256 digests are 32 bytes"
    );
    assert_eq!(
        error(&spec_id(&[(SHA256, 32), (SHA256, 32)])),
        "event 0 at offset 0x40: the Spec ID event declares sha256 twice"
    );
}

#[test]
fn undeclared_and_duplicate_digests() {
    let log = concat(&[spec_id(&[(SHA256, 32)]), measured(0, 1, &[SHA384], b"x")]);
    assert_eq!(
        error(&log),
        "event 1 at offset 0x4d: digest algorithm sha384 is not declared in the Spec ID event, so its size is unknown"
    );
    let mut event = event2(0, 1, &[(0x1234, vec![0; 4])], b"");
    event.truncate(14);
    let log = concat(&[spec_id(&[(SHA256, 32)]), event]);
    assert_eq!(
        EventLog::parse(&log).unwrap_err().kind,
        ErrorKind::UndeclaredAlgorithm {
            alg: HashAlg(0x1234)
        }
    );
    let d = vec![0u8; 32];
    let log = concat(&[
        spec_id(&[(SHA1, 20), (SHA256, 32)]),
        event2(0, 1, &[(SHA256, d.clone()), (SHA256, d)], b""),
    ]);
    assert_eq!(
        error(&log),
        "event 1 at offset 0x73: two sha256 digests in one TPML_DIGEST_VALUES"
    );
}

/// An algorithm this crate does not know is skipped using the size the Spec ID event declares.
#[test]
fn unknown_algorithm_is_skipped_by_declared_size() {
    const ODD: u16 = 0x0777;
    let event = |data: &[u8]| {
        let sha256 = HashAlg::SHA256.hash(data).unwrap().as_bytes().to_vec();
        event2(0, 0x0D, &[(ODD, vec![0xEE; 7]), (SHA256, sha256)], data)
    };
    let log = concat(&[
        spec_id(&[(ODD, 7), (SHA256, 32)]),
        event(b"one"),
        event(b"two"),
    ]);
    let parsed = EventLog::parse(&log).unwrap();
    assert_eq!(parsed.events().len(), 3);
    assert_eq!(parsed.events()[2].label().as_deref(), Some("two"));
    assert_eq!(
        parsed.events()[1].digest(HashAlg(ODD)).unwrap().to_string(),
        "ee".repeat(7)
    );
    assert_eq!(parsed.replay_banks(), vec![HashAlg::SHA256]);
    assert_eq!(
        parsed.findings(),
        &[Finding::UnsupportedAlgorithm { alg: HashAlg(ODD) }]
    );
    let replay = parsed.replay();
    let mut pcr0 = Digest::zero(HashAlg::SHA256, 32);
    for data in [b"one", b"two"] {
        let d = HashAlg::SHA256.hash(data).unwrap();
        pcr0 = HashAlg::SHA256
            .hash_parts(&[pcr0.as_bytes(), d.as_bytes()])
            .unwrap();
    }
    assert_eq!(replay.get(Register::Pcr(0), HashAlg::SHA256), Some(&pcr0));
    assert_eq!(replay.get(Register::Pcr(0), HashAlg(ODD)), None);
}

#[test]
fn padding_variants() {
    let body = concat(&[spec_id(&[(SHA384, 48)]), measured(1, 4, &[SHA384], &[0; 4])]);
    for fill in [0xFF, 0x00] {
        let mut log = body.clone();
        log.resize(body.len() + 1000, fill);
        let parsed = EventLog::parse(&log).unwrap();
        assert_eq!(parsed.bytes_used(), body.len());
        assert_eq!(
            parsed.padding(),
            Some(Padding {
                offset: body.len(),
                len: 1000,
                fill,
                uniform: true
            })
        );
        assert!(parsed.findings().is_empty());
        assert_eq!(parsed.events().len(), 2);
    }
    // Even a single trailing fill byte is padding, not a truncated record.
    let mut log = body.clone();
    log.push(0xFF);
    assert_eq!(EventLog::parse(&log).unwrap().bytes_used(), body.len());
    // An end marker (PCRIndex 0xFFFFFFFF) that does not start a valid record, then other bytes.
    let mut log = body.clone();
    log.extend([0xFF; 12]);
    log.extend([0x12; 20]);
    let parsed = EventLog::parse(&log).unwrap();
    assert_eq!(parsed.bytes_used(), body.len());
    assert_eq!(
        parsed.findings(),
        &[Finding::IrregularPadding {
            offset: body.len(),
            len: 32
        }]
    );
    // Garbage that is not fill is an error.
    let mut log = body.clone();
    log.extend([0x12; 20]);
    // Read as a record header, its digest count is 0x12121212.
    assert_eq!(
        EventLog::parse(&log).unwrap_err().kind,
        ErrorKind::DigestCountTooLarge {
            count: 0x1212_1212,
            declared: 1
        }
    );
}

#[test]
fn legacy_sha1_log() {
    let separator = |pcr| {
        let digest: [u8; 20] = HashAlg::SHA1
            .hash(&[0; 4])
            .unwrap()
            .as_bytes()
            .try_into()
            .unwrap();
        pcr_event(pcr, 4, digest, &[0; 4])
    };
    let log = concat(&[separator(0), separator(7), separator(7)]);
    let parsed = EventLog::parse(&log).unwrap();
    assert_eq!(parsed.format(), LogFormat::Sha1);
    assert_eq!(parsed.kind(), LogKind::Tpm);
    assert_eq!(parsed.spec_id(), None);
    assert_eq!(parsed.events().len(), 3);
    assert_eq!(parsed.events()[0].label().as_deref(), Some("0x00000000"));
    assert_eq!(
        parsed.findings(),
        &[Finding::DuplicateSeparator {
            event: 2,
            offset: 72,
            register: Register::Pcr(7),
            first_event: 1
        }]
    );
    let replay = parsed.replay();
    assert_eq!(replay.banks(), &[HashAlg::SHA1]);
    assert_eq!(replay.events_extended(Register::Pcr(7)), 2);
    assert_eq!(
        replay
            .get(Register::Pcr(0), HashAlg::SHA1)
            .unwrap()
            .to_string(),
        // sha1(00*20 ‖ sha1(00000000))
        HashAlg::SHA1
            .hash_parts(&[&[0; 20], HashAlg::SHA1.hash(&[0; 4]).unwrap().as_bytes()])
            .unwrap()
            .to_string()
    );
}

#[test]
fn kind_detection_and_ccel_registers() {
    // SHA-384 only, events only in MR indexes 1-4: CCEL.
    let ccel = concat(&[
        spec_id(&[(SHA384, 48)]),
        measured(1, 4, &[SHA384], &[0; 4]),
        measured(4, 0x0800_0001, &[SHA384], b"app-id"),
    ]);
    let parsed = EventLog::parse(&ccel).unwrap();
    assert_eq!(parsed.kind(), LogKind::Ccel);
    assert_eq!(parsed.events()[2].register, Register::Rtmr(3));
    assert_eq!(parsed.events()[2].event_type.to_string(), "0x08000001");
    let replay = parsed.replay();
    assert_eq!(
        replay.registers().collect::<Vec<_>>(),
        (0..4).map(Register::Rtmr).collect::<Vec<_>>()
    );
    assert_eq!(replay.events_extended(Register::Rtmr(3)), 1);

    // An extended event for index 0 means PCR0: TPM. Forced to CCEL it is an MRTD event.
    let mixed = concat(&[
        spec_id(&[(SHA384, 48)]),
        measured(0, 8, &[SHA384], b"v1"),
        measured(5, 1, &[SHA384], b"x"),
    ]);
    let parsed = EventLog::parse(&mixed).unwrap();
    assert_eq!(parsed.kind(), LogKind::Tpm);
    assert_eq!(parsed.detected_kind(), LogKind::Tpm);
    assert!(parsed.findings().is_empty());
    assert_eq!(parsed.replay().events_extended(Register::Pcr(0)), 1);
    let forced = EventLog::parse_as(&mixed, LogKind::Ccel).unwrap();
    assert_eq!(forced.kind(), LogKind::Ccel);
    assert_eq!(forced.detected_kind(), LogKind::Tpm);
    assert_eq!(
        forced.findings(),
        &[
            Finding::MrtdEvent {
                event: 1,
                offset: 0x41,
                event_type: EventType::EV_S_CRTM_VERSION
            },
            Finding::UntrackedRegister {
                event: 2,
                offset: 0x85,
                register: Register::Rtmr(4)
            },
        ]
    );
    assert_eq!(
        forced.findings()[0].to_string(),
        "event 1 at offset 0x41: EV_S_CRTM_VERSION for MR index 0 (MRTD), which cannot be extended; not replayed"
    );
    let replay = forced.replay();
    assert!(replay.registers().all(|r| replay.events_extended(r) == 0));
    // Several algorithms: TPM even when all indexes are 1-4.
    let tpm = concat(&[
        spec_id(&[(SHA256, 32), (SHA384, 48)]),
        measured(4, 4, &[SHA256, SHA384], &[0; 4]),
    ]);
    assert_eq!(EventLog::parse(&tpm).unwrap().kind(), LogKind::Tpm);
}

#[test]
fn missing_digest_and_startup_locality() {
    let locality = |pcr| event2(pcr, 3, &[], b"StartupLocality\0\x03");
    let log = concat(&[
        spec_id(&[(SHA1, 20), (SHA256, 32)]),
        locality(0),
        measured(0, 8, &[SHA256], b"v1"),
        locality(0),
    ]);
    let parsed = EventLog::parse(&log).unwrap();
    assert_eq!(
        parsed.findings(),
        &[
            Finding::MissingDigest {
                event: 2,
                offset: 0x66,
                register: Register::Pcr(0),
                alg: HashAlg::SHA1
            },
            Finding::IgnoredStartupLocality {
                event: 3,
                offset: 0x9a,
                locality: 3
            },
        ]
    );
    let replay = parsed.replay();
    assert_eq!(replay.startup_locality(), Some(3));
    // SHA-1: PCR0 keeps its initial value 00…03, as the event has no SHA-1 digest.
    let mut initial = [0u8; 20];
    initial[19] = 3;
    assert_eq!(
        replay
            .get(Register::Pcr(0), HashAlg::SHA1)
            .unwrap()
            .as_bytes(),
        initial
    );
    let mut initial = [0u8; 32];
    initial[31] = 3;
    let d = HashAlg::SHA256.hash(b"v1").unwrap();
    assert_eq!(
        replay.get(Register::Pcr(0), HashAlg::SHA256),
        Some(
            &HashAlg::SHA256
                .hash_parts(&[&initial, d.as_bytes()])
                .unwrap()
        )
    );
}

#[test]
fn replay_api_errors() {
    let mut replay = Replay::new(
        LogKind::Tpm,
        &[HashAlg::SHA256, HashAlg::SHA256, HashAlg::SM3_256],
    );
    assert_eq!(replay.banks(), &[HashAlg::SHA256]);
    let digest = HashAlg::SHA256.hash(b"x").unwrap();
    assert_eq!(
        replay.extend(Register::Pcr(24), &digest),
        Err(ReplayError::UntrackedRegister {
            register: Register::Pcr(24),
            kind: LogKind::Tpm
        })
    );
    assert_eq!(
        replay
            .extend(Register::Rtmr(0), &digest)
            .unwrap_err()
            .to_string(),
        "RTMR0 is not replayed for a Tpm log"
    );
    assert_eq!(
        replay.extend(Register::Pcr(1), &HashAlg::SHA1.hash(b"x").unwrap()),
        Err(ReplayError::NoBank { alg: HashAlg::SHA1 })
    );
    assert_eq!(
        replay
            .extend(Register::Pcr(1), &Digest::new(HashAlg::SHA256, vec![0; 3]))
            .unwrap_err()
            .to_string(),
        "a sha256 digest must be 32 bytes, not 3"
    );
    replay.extend(Register::Pcr(0), &digest).unwrap();
    assert_eq!(
        replay.set_startup_locality(3),
        Err(ReplayError::Pcr0AlreadyExtended)
    );
    let mut ccel = Replay::new(LogKind::Ccel, &[HashAlg::SHA384]);
    // A CCEL replay has no PCR0 (its registers are MRTD and the RTMRs).
    assert_eq!(
        ccel.set_startup_locality(3),
        Err(ReplayError::UntrackedRegister {
            register: Register::Pcr(0),
            kind: LogKind::Ccel
        })
    );
    ccel.extend_data(Register::Rtmr(2), b"abc").unwrap();
    assert_eq!(ccel.events_extended(Register::Rtmr(2)), 1);
    assert_eq!(ccel.get(Register::Mrtd, HashAlg::SHA384), None);
}

/// A 1 MiB log (about 7,000 events in three banks) parses and replays well under 50 ms in a
/// release build (`cargo test --release`); debug builds only report the time.
#[test]
fn replay_of_a_one_mebibyte_log_is_fast() {
    let banks = [SHA1, SHA256, SHA384];
    let mut log = spec_id(&[(SHA1, 20), (SHA256, 32), (SHA384, 48)]);
    let mut events = 0;
    while log.len() < 1 << 20 {
        let data = format!("grub_cmd: event number {events} with some padding text to look real");
        log.extend(measured(8 + events % 2, 0x0D, &banks, data.as_bytes()));
        events += 1;
    }
    let start = Instant::now();
    let parsed = EventLog::parse(&log).unwrap();
    let replay = parsed.replay();
    let elapsed = start.elapsed();
    assert_eq!(parsed.events().len(), events as usize + 1);
    assert_eq!(
        replay.events_extended(Register::Pcr(8)) + replay.events_extended(Register::Pcr(9)),
        events as usize
    );
    eprintln!(
        "parse + replay of {} bytes, {events} events: {elapsed:?}",
        log.len()
    );
    if !cfg!(debug_assertions) {
        assert!(elapsed.as_millis() < 50, "took {elapsed:?}");
    }
}

/// Random mutations of a valid log: every result is an error or a log, never a panic.
#[test]
fn mutations_never_panic() {
    let base = concat(&[
        spec_id(&[(SHA1, 20), (SHA256, 32)]),
        measured(0, 8, &[SHA1, SHA256], b"v1"),
        measured(7, 0x8000_0001, &[SHA1, SHA256], &[0; 40]),
        measured(4, 0x8000_0003, &[SHA1, SHA256], &[0xFF; 40]),
        measured(5, 0x8000_0006, &[SHA1, SHA256], b"EFI PART"),
        measured(9, 6, &[SHA1, SHA256], &[1, 0, 0, 0, 200, 0, 0, 0]),
    ]);
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..20_000 {
        let mut bytes = base.clone();
        for _ in 0..(next() % 4 + 1) {
            let at = (next() % bytes.len() as u64) as usize;
            bytes[at] = next() as u8;
        }
        if next() % 3 == 0 {
            bytes.truncate((next() % bytes.len() as u64) as usize);
        }
        for kind in [LogKind::Tpm, LogKind::Ccel] {
            if let Ok(log) = EventLog::parse_as(&bytes, kind) {
                let _ = log.replay();
                for e in log.events() {
                    let _ = e.label();
                }
            }
        }
    }
}
