//! The initial VMSA (VM save area) of each vCPU, as the VMM builds it at launch.
//!
//! Offsets are those of the SEV-ES save area (AMD APM Vol. 2, Table B-4; Linux
//! `struct sev_es_save_area`). Only the fields below are non-zero; the page is 4096 bytes.

use crate::gctx::PAGE_SIZE;
use crate::vcpu::VmmType;

/// EIP of the bootstrap processor: the reset vector.
pub const BSP_EIP: u32 = 0xffff_fff0;

// VMCB segment registers, 16 bytes each: u16 selector, u16 attrib, u32 limit, u64 base.
const ES: usize = 0x000;
const CS: usize = 0x010;
const SS: usize = 0x020;
const DS: usize = 0x030;
const FS: usize = 0x040;
const GS: usize = 0x050;
const GDTR: usize = 0x060;
const LDTR: usize = 0x070;
const IDTR: usize = 0x080;
const TR: usize = 0x090;
const EFER: usize = 0x0d0;
const CR4: usize = 0x148;
const CR0: usize = 0x158;
const DR7: usize = 0x160;
const DR6: usize = 0x168;
const RFLAGS: usize = 0x170;
const RIP: usize = 0x178;
const G_PAT: usize = 0x268;
const RDX: usize = 0x310;
const SEV_FEATURES: usize = 0x3b0;
const XCR0: usize = 0x3e8;
const MXCSR: usize = 0x408;
const X87_FCW: usize = 0x410;

/// PAT MSR default (AMD APM Vol. 2, §A.3).
const DEFAULT_G_PAT: u64 = 0x0007_0406_0007_0406;

struct Page(Box<[u8; PAGE_SIZE]>);

impl Page {
    fn put(&mut self, offset: usize, bytes: &[u8]) {
        // Offsets are the constants above, all far below PAGE_SIZE.
        self.0[offset..offset + bytes.len()].copy_from_slice(bytes);
    }

    fn u64(&mut self, offset: usize, v: u64) {
        self.put(offset, &v.to_le_bytes());
    }

    fn seg(&mut self, offset: usize, selector: u16, attrib: u16, limit: u32, base: u64) {
        self.put(offset, &selector.to_le_bytes());
        self.put(offset + 2, &attrib.to_le_bytes());
        self.put(offset + 4, &limit.to_le_bytes());
        self.put(offset + 8, &base.to_le_bytes());
    }
}

/// The VMSA page of a vCPU starting at `eip` ([`BSP_EIP`] for vCPU 0, the SEV-ES reset block's
/// EIP for the others), with `sev_features` (SNP guest features; 0 for SEV-ES).
///
/// `vcpu_sig` goes to RDX under QEMU; EC2 and GCE put 0x600 there. Register state per VMM follows
/// sev-snp-measure 0.0.13 `vmsa.py` (EC2 with RDX 0x600 since its commit 4a02bf04).
pub fn vmsa_page(eip: u32, sev_features: u64, vcpu_sig: u32, vmm: VmmType) -> Box<[u8; PAGE_SIZE]> {
    let mut g_pat = DEFAULT_G_PAT;
    let (cs_flags, ss_flags, tr_flags, rdx, mxcsr, fcw): (u16, u16, u16, u64, u32, u16) = match vmm
    {
        VmmType::Qemu => (0x9b, 0x93, 0x8b, u64::from(vcpu_sig), 0x1f80, 0x37f),
        VmmType::Ec2 => (
            if eip == BSP_EIP { 0x9a } else { 0x9b },
            0x92,
            0x83,
            0x600,
            0,
            0,
        ),
        VmmType::Gce => {
            g_pat = 0x0007_0106; // the GCE hypervisor overwrites the default
            (0x9b, 0x93, 0x8b, 0x600, 0, 0)
        }
    };
    let mut p = Page(Box::new([0u8; PAGE_SIZE]));
    p.seg(ES, 0, 0x93, 0xffff, 0);
    p.seg(CS, 0xf000, cs_flags, 0xffff, u64::from(eip & 0xffff_0000));
    p.seg(SS, 0, ss_flags, 0xffff, 0);
    p.seg(DS, 0, 0x93, 0xffff, 0);
    p.seg(FS, 0, 0x93, 0xffff, 0);
    p.seg(GS, 0, 0x93, 0xffff, 0);
    p.seg(GDTR, 0, 0, 0xffff, 0);
    p.seg(IDTR, 0, 0, 0xffff, 0);
    p.seg(LDTR, 0, 0x82, 0xffff, 0);
    p.seg(TR, 0, tr_flags, 0xffff, 0);
    p.u64(EFER, 0x1000); // KVM enables EFER.SVME
    p.u64(CR4, 0x40); // KVM enables CR4.MCE
    p.u64(CR0, 0x10);
    p.u64(DR7, 0x400);
    p.u64(DR6, 0xffff_0ff0);
    p.u64(RFLAGS, 0x2);
    p.u64(RIP, u64::from(eip & 0xffff));
    p.u64(G_PAT, g_pat);
    p.u64(RDX, rdx);
    p.u64(SEV_FEATURES, sev_features);
    p.u64(XCR0, 0x1);
    p.put(MXCSR, &mxcsr.to_le_bytes());
    p.put(X87_FCW, &fcw.to_le_bytes());
    p.0
}
