//! The names the CLI, the image spec and the measurement document use for this crate's knobs,
//! both ways: one spelling per value, parsed and printed here only.

use std::fmt;
use std::str::FromStr;

use crate::{LinuxStubMeasurement, OvmfProfile, PageOrder, QemuProfile};

/// A name that is not one of a knob's values; the message lists them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{given:?}: expected {expected}")]
pub struct UnknownName {
    /// The text given.
    pub given: String,
    /// The accepted names, for the message.
    pub expected: &'static str,
}

macro_rules! named {
    ($ty:ty, $expected:literal, $($value:expr => $name:literal),+ $(,)?) => {
        impl $ty {
            /// The name, as the CLI and the measurement document spell it.
            pub fn name(&self) -> &'static str {
                $(if *self == $value { return $name; })+
                "custom"
            }
        }
        impl FromStr for $ty {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, UnknownName> {
                match s {
                    $($name => Ok($value),)+
                    _ => Err(UnknownName { given: s.to_string(), expected: $expected }),
                }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

named!(PageOrder, "two-pass or interleaved",
    PageOrder::TwoPass => "two-pass",
    PageOrder::Interleaved => "interleaved",
);
named!(OvmfProfile, "edk2-202411, edk2-before-202411 or no-cc",
    OvmfProfile::EDK2_202411 => "edk2-202411",
    OvmfProfile::EDK2_BEFORE_202411 => "edk2-before-202411",
    OvmfProfile::NO_CC_MEASUREMENT => "no-cc",
);
named!(LinuxStubMeasurement, "cc or none",
    LinuxStubMeasurement::CcMeasurement => "cc",
    LinuxStubMeasurement::None => "none",
);

/// A QEMU version, `MAJOR.MINOR`: what decides a [`QemuProfile`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QemuVersion {
    /// Major version.
    pub major: u32,
    /// Minor version.
    pub minor: u32,
}

impl QemuVersion {
    /// The behaviour of this version.
    pub fn profile(self) -> QemuProfile {
        QemuProfile::for_version(self.major, self.minor)
    }
}

impl Default for QemuVersion {
    /// 10.2, the first version that leaves a confidential guest's kernel header alone.
    fn default() -> QemuVersion {
        QemuVersion { major: 10, minor: 2 }
    }
}

impl FromStr for QemuVersion {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<QemuVersion, UnknownName> {
        s.split_once('.')
            .and_then(|(x, y)| Some(QemuVersion { major: x.parse().ok()?, minor: y.parse().ok()? }))
            .ok_or_else(|| UnknownName { given: s.to_string(), expected: "MAJOR.MINOR such as 9.2" })
    }
}

impl fmt::Display for QemuVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in [OvmfProfile::EDK2_202411, OvmfProfile::EDK2_BEFORE_202411, OvmfProfile::NO_CC_MEASUREMENT] {
            assert_eq!(p.name().parse::<OvmfProfile>().unwrap(), p);
        }
        for o in [PageOrder::TwoPass, PageOrder::Interleaved] {
            assert_eq!(o.to_string().parse::<PageOrder>().unwrap(), o);
        }
        assert_eq!("none".parse::<LinuxStubMeasurement>().unwrap(), LinuxStubMeasurement::None);
        assert_eq!(
            "x".parse::<PageOrder>().unwrap_err().to_string(),
            "\"x\": expected two-pass or interleaved"
        );
        assert_eq!("9.2".parse::<QemuVersion>().unwrap(), QemuVersion { major: 9, minor: 2 });
        assert_eq!(
            "9".parse::<QemuVersion>().unwrap_err(),
            UnknownName { given: "9".into(), expected: "MAJOR.MINOR such as 9.2" }
        );
    }
}
