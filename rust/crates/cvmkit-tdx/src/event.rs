//! Events, registers and the extend operation shared by every register.

use std::fmt;

use cvmkit_measure::Bank;
pub use cvmkit_measure::{hex, EventType};
use sha2::{Digest, Sha384};

/// Size of a SHA-384 digest and of a TDX measurement register.
pub const DIGEST_LEN: usize = 48;

/// A SHA-384 digest or register value.
pub type Digest384 = [u8; DIGEST_LEN];

/// SHA-384 of `data`.
pub fn sha384(data: &[u8]) -> Digest384 {
    Sha384::digest(data).into()
}

/// Folds `digests` into a register that starts as 48 zero bytes: the value an RTMR holds after
/// these events were extended in order.
pub fn fold<'a>(digests: impl IntoIterator<Item = &'a Digest384>) -> Digest384 {
    let v = Bank::Sha384.fold(digests);
    v.try_into().expect("SHA-384 digests are 48 bytes")
}

/// One predicted event: what the firmware or a boot component extends into a register.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Event {
    /// What was measured, for people: `"TD HOB"`, `"Boot0000"`, `"kernel (Authenticode)"`.
    pub label: String,
    /// The type the event log records.
    pub event_type: EventType,
    /// The SHA-384 digest extended.
    pub digest: Digest384,
}

impl Event {
    /// An event with a precomputed digest.
    pub fn new(label: impl Into<String>, event_type: EventType, digest: Digest384) -> Event {
        Event {
            label: label.into(),
            event_type,
            digest,
        }
    }

    /// An event whose digest is the SHA-384 of `data`.
    pub fn hashed(label: impl Into<String>, event_type: EventType, data: &[u8]) -> Event {
        Event::new(label, event_type, sha384(data))
    }

    /// `EV_SEPARATOR` with the value 0 (4 zero bytes), as edk2 measures it.
    pub fn separator() -> Event {
        Event::hashed("separator", EventType::EV_SEPARATOR, &[0; 4])
    }

    /// `EV_EFI_ACTION` whose digest is the SHA-384 of the ASCII `action` (no NUL).
    pub fn action(action: &str) -> Event {
        Event::hashed(action, EventType::EV_EFI_ACTION, action.as_bytes())
    }
}

impl fmt::Display for Event {
    /// `LABEL (TYPE) DIGEST`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}) {}",
            self.label,
            self.event_type,
            hex(&self.digest)
        )
    }
}

/// A register's predicted value and the ordered events that produce it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Register {
    /// The final value.
    pub value: Digest384,
    /// The events, in extend order. Empty when the value was given (captured) without events.
    pub events: Vec<Event>,
}

impl Register {
    /// The register that results from extending `events` in order, starting from zero.
    pub fn from_events(events: Vec<Event>) -> Register {
        Register {
            value: fold(events.iter().map(|e| &e.digest)),
            events,
        }
    }

    /// A register known only by its value (e.g. captured on a real VM).
    pub fn from_value(value: Digest384) -> Register {
        Register {
            value,
            events: Vec::new(),
        }
    }

    /// Whether the value is the fold of the events (always true for [`Register::from_events`];
    /// false for a captured value whose events were not given or do not replay).
    pub fn events_replay(&self) -> bool {
        fold(self.events.iter().map(|e| &e.digest)) == self.value
    }
}

impl Default for Register {
    /// The reset value: 48 zero bytes, no events.
    fn default() -> Register {
        Register::from_events(Vec::new())
    }
}

/// The 48 bytes of a 96-digit hex string (an optional `0x` prefix and surrounding white space
/// are accepted), `None` otherwise.
pub fn parse_digest(text: &str) -> Option<Digest384> {
    let t = text.trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    if t.len() != 2 * DIGEST_LEN || !t.is_ascii() {
        return None;
    }
    let mut out = [0u8; DIGEST_LEN];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(t.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold_of_nothing_is_zero_and_extend_chains() {
        assert_eq!(fold([]), [0u8; 48]);
        let a = sha384(b"a");
        let b = sha384(b"b");
        let mut input = [0u8; 96];
        input[48..].copy_from_slice(&a);
        let once = sha384(&input);
        input[..48].copy_from_slice(&once);
        input[48..].copy_from_slice(&b);
        assert_eq!(fold([&a, &b]), sha384(&input));
    }

    #[test]
    fn digests_round_trip_through_hex() {
        let d = sha384(b"x");
        assert_eq!(parse_digest(&hex(&d)), Some(d));
        assert_eq!(
            parse_digest(&format!(" 0x{} ", hex(&d).to_uppercase())),
            Some(d)
        );
        assert_eq!(parse_digest("abc"), None);
        assert_eq!(parse_digest(&"é".repeat(48)), None);
        assert_eq!(parse_digest(&"zz".repeat(48)), None);
    }

    #[test]
    fn separator_and_actions_have_the_well_known_digests() {
        // sha384 of 4 zero bytes: the separator in every CCEL log of the fixtures.
        assert!(hex(&Event::separator().digest).starts_with("394341b7182cd227"));
        assert!(
            hex(&Event::action("Calling EFI Application from Boot Option").digest)
                .starts_with("77a0dab2312b4e1e")
        );
        assert_eq!(
            EventType(0x8000_0003).to_string(),
            "EV_EFI_BOOT_SERVICES_APPLICATION"
        );
        assert_eq!(EventType(0x1234).to_string(), "0x00001234");
    }
}
