//! vCPU types and their CPUID signatures, and VMM types.

use std::fmt;
use std::str::FromStr;

/// The CPUID Fn0000_0001 EAX signature of `family`/`model`/`stepping` (AMD CPUID Specification
/// #25481): family above 0xF is split into base 0xF plus extended family.
pub const fn cpu_sig(family: u32, model: u32, stepping: u32) -> u32 {
    let (family_low, family_high) = if family > 0xf {
        (0xf, (family - 0xf) & 0xff)
    } else {
        (family, 0)
    };
    let model_low = model & 0xf;
    let model_high = (model >> 4) & 0xf;
    let stepping_low = stepping & 0xf;
    (family_high << 20) | (model_high << 16) | (family_low << 8) | (model_low << 4) | stepping_low
}

macro_rules! vcpu_types {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal => ($f:expr, $m:expr, $s:expr), )*) => {
        /// The named QEMU AMD CPU models (`builtin_x86_defs`) sev-snp-measure 0.0.13 accepts as
        /// `--vcpu-type`, each with its CPUID signature.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum VcpuType {
            $( $(#[$doc])* $variant, )*
        }

        impl VcpuType {
            /// Every type, in sev-snp-measure's order.
            pub const ALL: &'static [VcpuType] = &[$( VcpuType::$variant, )*];

            /// The QEMU model name, e.g. `EPYC-v4`.
            pub const fn name(self) -> &'static str {
                match self { $( VcpuType::$variant => $name, )* }
            }

            /// The CPUID signature (Fn0000_0001 EAX) QEMU gives this model.
            pub const fn signature(self) -> u32 {
                match self { $( VcpuType::$variant => cpu_sig($f, $m, $s), )* }
            }
        }
    };
}

vcpu_types! {
    /// `EPYC`: family 23 model 1 stepping 2 (Naples).
    Epyc = "EPYC" => (23, 1, 2),
    /// `EPYC-v1`.
    EpycV1 = "EPYC-v1" => (23, 1, 2),
    /// `EPYC-v2`.
    EpycV2 = "EPYC-v2" => (23, 1, 2),
    /// `EPYC-IBPB`.
    EpycIbpb = "EPYC-IBPB" => (23, 1, 2),
    /// `EPYC-v3`.
    EpycV3 = "EPYC-v3" => (23, 1, 2),
    /// `EPYC-v4`: signature 0x00800f12.
    EpycV4 = "EPYC-v4" => (23, 1, 2),
    /// `EPYC-Rome`: family 23 model 49 stepping 0.
    EpycRome = "EPYC-Rome" => (23, 49, 0),
    /// `EPYC-Rome-v1`.
    EpycRomeV1 = "EPYC-Rome-v1" => (23, 49, 0),
    /// `EPYC-Rome-v2`.
    EpycRomeV2 = "EPYC-Rome-v2" => (23, 49, 0),
    /// `EPYC-Rome-v3`.
    EpycRomeV3 = "EPYC-Rome-v3" => (23, 49, 0),
    /// `EPYC-Milan`: family 25 model 1 stepping 1.
    EpycMilan = "EPYC-Milan" => (25, 1, 1),
    /// `EPYC-Milan-v1`.
    EpycMilanV1 = "EPYC-Milan-v1" => (25, 1, 1),
    /// `EPYC-Milan-v2`.
    EpycMilanV2 = "EPYC-Milan-v2" => (25, 1, 1),
    /// `EPYC-Genoa`: family 25 model 17 stepping 0.
    EpycGenoa = "EPYC-Genoa" => (25, 17, 0),
    /// `EPYC-Genoa-v1`.
    EpycGenoaV1 = "EPYC-Genoa-v1" => (25, 17, 0),
    /// `EPYC-Turin`: family 26 model 0 stepping 0.
    EpycTurin = "EPYC-Turin" => (26, 0, 0),
}

impl fmt::Display for VcpuType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The name is not one of [`VcpuType::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown vCPU type '{name}': expected one of {}", VcpuType::ALL.iter().map(|t| t.name()).collect::<Vec<_>>().join(", "))]
pub struct UnknownVcpuType {
    name: String,
}

impl FromStr for VcpuType {
    type Err = UnknownVcpuType;

    /// Exact QEMU model names, as sev-snp-measure (`EPYC-v4`, `EPYC-Milan`, …).
    fn from_str(s: &str) -> Result<VcpuType, UnknownVcpuType> {
        VcpuType::ALL
            .iter()
            .copied()
            .find(|t| t.name() == s)
            .ok_or_else(|| UnknownVcpuType { name: s.to_owned() })
    }
}

/// The guest vCPU, as far as the VMSA records it: a named type or a raw signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Vcpu {
    /// A named QEMU model.
    Type(VcpuType),
    /// A CPUID Fn0000_0001 EAX value (see [`cpu_sig`]).
    Signature(u32),
}

impl Vcpu {
    /// A vCPU from family/model/stepping.
    pub const fn from_family_model_stepping(family: u32, model: u32, stepping: u32) -> Vcpu {
        Vcpu::Signature(cpu_sig(family, model, stepping))
    }

    /// The CPUID signature that QEMU puts in RDX of each VMSA.
    pub const fn signature(self) -> u32 {
        match self {
            Vcpu::Type(t) => t.signature(),
            Vcpu::Signature(s) => s,
        }
    }
}

impl From<VcpuType> for Vcpu {
    fn from(t: VcpuType) -> Vcpu {
        Vcpu::Type(t)
    }
}

impl FromStr for Vcpu {
    type Err = UnknownVcpuType;

    /// A model name (`EPYC-Milan`) or a signature in hex (`0x00a00f11`) or decimal.
    fn from_str(s: &str) -> Result<Vcpu, UnknownVcpuType> {
        let number = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            Some(hex) => u32::from_str_radix(hex, 16).ok(),
            None => s.parse::<u32>().ok(),
        };
        match number {
            Some(sig) => Ok(Vcpu::Signature(sig)),
            None => s.parse().map(Vcpu::Type),
        }
    }
}

/// The VMM launching the guest: the initial register state in the VMSA (and, for EC2 and GCE,
/// the order and types of some pages) differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum VmmType {
    /// QEMU/KVM (sev-snp-measure `QEMU`).
    #[default]
    Qemu,
    /// Amazon EC2 (sev-snp-measure `ec2`).
    Ec2,
    /// Google Compute Engine (sev-snp-measure `gce`).
    Gce,
}

impl VmmType {
    /// Every VMM type.
    pub const ALL: &'static [VmmType] = &[VmmType::Qemu, VmmType::Ec2, VmmType::Gce];

    /// The name sev-snp-measure uses: `QEMU`, `ec2`, `gce`.
    pub const fn name(self) -> &'static str {
        match self {
            VmmType::Qemu => "QEMU",
            VmmType::Ec2 => "ec2",
            VmmType::Gce => "gce",
        }
    }
}

impl fmt::Display for VmmType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The name is not a VMM type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown VMM type '{0}': expected QEMU, ec2 or gce")]
pub struct UnknownVmmType(String);

impl FromStr for VmmType {
    type Err = UnknownVmmType;

    /// `QEMU`, `ec2`, `gce`, in any case.
    fn from_str(s: &str) -> Result<VmmType, UnknownVmmType> {
        match s.to_ascii_lowercase().as_str() {
            "qemu" => Ok(VmmType::Qemu),
            "ec2" => Ok(VmmType::Ec2),
            "gce" => Ok(VmmType::Gce),
            _ => Err(UnknownVmmType(s.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures() {
        assert_eq!(VcpuType::EpycV4.signature(), 0x00800f12);
        assert_eq!(VcpuType::EpycRome.signature(), 0x00830f10);
        assert_eq!(VcpuType::EpycMilan.signature(), 0x00a00f11);
        assert_eq!(VcpuType::EpycGenoa.signature(), 0x00a10f10);
        assert_eq!(VcpuType::EpycTurin.signature(), 0x00b00f00);
        assert_eq!(VcpuType::ALL.len(), 16);
        assert_eq!(
            "EPYC-Milan-v2".parse::<VcpuType>().unwrap(),
            VcpuType::EpycMilanV2
        );
        assert!("epyc"
            .parse::<VcpuType>()
            .unwrap_err()
            .to_string()
            .contains("EPYC-Turin"));
        assert_eq!(
            "0x00a00f11".parse::<Vcpu>().unwrap().signature(),
            0x00a00f11
        );
        assert_eq!("EPYC".parse::<Vcpu>().unwrap(), Vcpu::Type(VcpuType::Epyc));
        assert_eq!("GCE".parse::<VmmType>().unwrap(), VmmType::Gce);
    }
}
