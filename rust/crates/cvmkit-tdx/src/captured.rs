//! Register values and event digests captured on a real VM, read from JSON.
//!
//! Where a cloud's firmware and ACPI tables are not public (GCP), RTMR0 (and MRTD) cannot be
//! derived offline: pin the values a VM of the same machine type reported. Accepted shapes:
//!
//! - values: `{"mrtd": "HEX", "rtmr0": "HEX", "rtmr1": …, "rtmr2": …}` (keys in any case;
//!   `rt_mr0` and `mr_td` as in a parsed TD report also work), the output of dstack-mr
//!   `--json` and tinfoil tdx-measure `--json`;
//! - events: `{"rtmr0": {"value": "HEX" (optional), "events": [{"label": "…" (optional),
//!   "event_type": 2147483659 | "0x8000000b" | "EV_EFI_HANDOFF_TABLES2", "digest": "HEX"}, …]}}`;
//! - an event log as dstack serves it: `[{"imr": 0, "event_type": …, "digest": "HEX", "event":
//!   "…"}, …]` (imr = RTMR index), bare or under `"event_log"` (as a list or a JSON string).
//!
//! When both a value and events are given, the events must fold to the value.

use serde_json::Value;

use crate::error::TdxError;
use crate::event::{parse_digest, Digest384, Event, EventType, Register};

/// Captured measurements; each register is optional.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Captured {
    /// MRTD.
    pub mrtd: Option<Digest384>,
    /// RTMR0–RTMR3.
    pub rtmr: [Option<Register>; 4],
}

fn bad(reason: impl Into<String>) -> TdxError {
    TdxError::Captured {
        reason: reason.into(),
    }
}

const KNOWN_TYPES: [EventType; 12] = [
    EventType::EV_SEPARATOR,
    EventType::EV_EVENT_TAG,
    EventType::EV_PLATFORM_CONFIG_FLAGS,
    EventType::EV_IPL,
    EventType::EV_EFI_VARIABLE_DRIVER_CONFIG,
    EventType::EV_EFI_VARIABLE_BOOT,
    EventType::EV_EFI_BOOT_SERVICES_APPLICATION,
    EventType::EV_EFI_GPT_EVENT,
    EventType::EV_EFI_ACTION,
    EventType::EV_EFI_PLATFORM_FIRMWARE_BLOB2,
    EventType::EV_EFI_HANDOFF_TABLES2,
    EventType::EV_EFI_VARIABLE_AUTHORITY,
];

fn event_type(v: &Value, path: &str) -> Result<EventType, TdxError> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(EventType)
            .ok_or_else(|| bad(format!("{path}: event type {n} is not a u32"))),
        Value::String(s) => {
            let t = s.trim();
            if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                u32::from_str_radix(hex, 16)
                    .map(EventType)
                    .map_err(|_| bad(format!("{path}: bad event type {s:?}")))
            } else if let Ok(n) = t.parse::<u32>() {
                Ok(EventType(n))
            } else {
                KNOWN_TYPES
                    .into_iter()
                    .find(|k| k.name() == Some(t))
                    .ok_or_else(|| bad(format!("{path}: unknown event type {s:?}")))
            }
        }
        _ => Err(bad(format!(
            "{path}: event type must be a number or a string"
        ))),
    }
}

fn digest(v: &Value, path: &str) -> Result<Digest384, TdxError> {
    v.as_str()
        .and_then(parse_digest)
        .ok_or_else(|| bad(format!("{path}: expected 96 hex digits (a SHA-384 value)")))
}

fn event(v: &Value, path: &str) -> Result<Event, TdxError> {
    let label = v
        .get("label")
        .or_else(|| v.get("event"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let t = event_type(
        v.get("event_type")
            .ok_or_else(|| bad(format!("{path}: no \"event_type\"")))?,
        path,
    )?;
    let d = digest(
        v.get("digest")
            .ok_or_else(|| bad(format!("{path}: no \"digest\"")))?,
        &format!("{path}.digest"),
    )?;
    Ok(Event::new(label.unwrap_or_else(|| t.to_string()), t, d))
}

fn register(v: &Value, path: &str) -> Result<Register, TdxError> {
    match v {
        Value::String(_) => Ok(Register::from_value(digest(v, path)?)),
        Value::Object(o) => {
            let events = match o.get("events") {
                Some(Value::Array(list)) => list
                    .iter()
                    .enumerate()
                    .map(|(i, e)| event(e, &format!("{path}.events[{i}]")))
                    .collect::<Result<Vec<_>, _>>()?,
                Some(_) => return Err(bad(format!("{path}.events must be a list"))),
                None => Vec::new(),
            };
            let r = Register::from_events(events);
            match o.get("value") {
                Some(value) => {
                    let value = digest(value, &format!("{path}.value"))?;
                    if !r.events.is_empty() && r.value != value {
                        return Err(bad(format!("{path}: the events do not fold to the value")));
                    }
                    Ok(Register {
                        value,
                        events: r.events,
                    })
                }
                None if r.events.is_empty() => {
                    Err(bad(format!("{path}: neither \"value\" nor \"events\"")))
                }
                None => Ok(r),
            }
        }
        _ => Err(bad(format!("{path}: expected a hex string or an object"))),
    }
}

fn from_event_log(list: &[Value], path: &str) -> Result<Captured, TdxError> {
    let mut per: [Vec<Event>; 4] = Default::default();
    for (i, e) in list.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let imr = e
            .get("imr")
            .and_then(Value::as_u64)
            .ok_or_else(|| bad(format!("{p}: no numeric \"imr\"")))?;
        let slot = per
            .get_mut(imr as usize)
            .ok_or_else(|| bad(format!("{p}: imr {imr} is not 0-3")))?;
        // dstack's "lite" logs leave runtime (RTMR3) digests empty: those registers are skipped.
        if e.get("digest").and_then(Value::as_str) == Some("") {
            continue;
        }
        slot.push(event(e, &p)?);
    }
    let mut c = Captured::default();
    for (i, events) in per.into_iter().enumerate() {
        if !events.is_empty() {
            c.rtmr[i] = Some(Register::from_events(events));
        }
    }
    Ok(c)
}

impl Captured {
    /// Parses any of the accepted shapes (see the module documentation).
    pub fn from_json(text: &str) -> Result<Captured, TdxError> {
        let v: Value = serde_json::from_str(text).map_err(|e| bad(format!("not JSON: {e}")))?;
        Captured::from_value(&v)
    }

    fn from_value(v: &Value) -> Result<Captured, TdxError> {
        if let Value::Array(list) = v {
            return from_event_log(list, "$");
        }
        let Value::Object(o) = v else {
            return Err(bad("expected a JSON object or an event-log list"));
        };
        if let Some(log) = o.get("event_log") {
            let parsed;
            let list = match log {
                Value::Array(list) => list,
                Value::String(s) => {
                    parsed = serde_json::from_str::<Value>(s)
                        .map_err(|e| bad(format!("$.event_log: {e}")))?;
                    parsed
                        .as_array()
                        .ok_or_else(|| bad("$.event_log: expected a list"))?
                }
                _ => return Err(bad("$.event_log: expected a list")),
            };
            return from_event_log(list, "$.event_log");
        }
        let mut c = Captured::default();
        let mut seen = false;
        for (key, value) in o {
            let k = key.to_ascii_lowercase().replace('_', "");
            let path = format!("$.{key}");
            if k == "mrtd" {
                c.mrtd = Some(digest(value, &path)?);
                seen = true;
            } else if let Some(i) = k
                .strip_prefix("rtmr")
                .and_then(|n| n.parse::<usize>().ok())
                .filter(|&i| i < 4)
            {
                c.rtmr[i] = Some(register(value, &path)?);
                seen = true;
            }
        }
        if !seen {
            return Err(bad("no \"mrtd\", \"rtmr0\"…\"rtmr3\" or \"event_log\" key"));
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{hex, sha384};

    #[test]
    fn reads_values_events_and_event_logs() {
        let d = sha384(b"x");
        let folded = crate::event::fold([&d]);
        let json = format!(
            r#"{{"MRTD": "{0}", "rt_mr1": "{0}", "rtmr0": {{"value": "{1}", "events": [{{"event_type": "EV_SEPARATOR", "digest": "{0}"}}]}}}}"#,
            hex(&d),
            hex(&folded)
        );
        let c = Captured::from_json(&json).unwrap();
        assert_eq!(c.mrtd, Some(d));
        assert_eq!(c.rtmr[1].as_ref().unwrap().value, d);
        assert_eq!(
            c.rtmr[0].as_ref().unwrap().events[0].event_type,
            EventType::EV_SEPARATOR
        );

        let log = format!(
            r#"[{{"imr": 0, "event_type": 4, "digest": "{0}", "event": ""}}, {{"imr": 3, "event_type": 134217729, "digest": ""}}]"#,
            hex(&d)
        );
        let c = Captured::from_json(&log).unwrap();
        assert_eq!(c.rtmr[0].as_ref().unwrap().value, folded);
        assert!(c.rtmr[3].is_none());
    }

    #[test]
    fn errors_name_the_json_path() {
        let e = Captured::from_json(r#"{"rtmr0": {"value": "00"}}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("$.rtmr0.value"), "{e}");
        let d = hex(&sha384(b"x"));
        let e = Captured::from_json(&format!(
            r#"{{"rtmr0": {{"value": "{d}", "events": [{{"event_type": 4, "digest": "{d}"}}]}}}}"#
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("do not fold"), "{e}");
        let captured = |reason: &str| TdxError::Captured {
            reason: reason.into(),
        };
        assert_eq!(
            Captured::from_json("{}").unwrap_err(),
            captured("no \"mrtd\", \"rtmr0\"…\"rtmr3\" or \"event_log\" key")
        );
        assert_eq!(
            Captured::from_json("[1]").unwrap_err(),
            captured("$[0]: no numeric \"imr\"")
        );
        // The rest of the message is serde_json's.
        let e = Captured::from_json("nope");
        assert!(
            matches!(&e, Err(TdxError::Captured { reason }) if reason.starts_with("not JSON: ")),
            "{e:?}"
        );
    }
}
