//! Roots of trust compiled into the binary (see `roots/README.md` for where each comes from).

/// Intel SGX Root CA (DER): the root of every DCAP quote's PCK chain and of the collateral's
/// TCB-info and QE-identity signing chains.
pub const INTEL_SGX_ROOT_CA: &[u8] = include_bytes!("../roots/intel-sgx-root-ca.der");

/// SHA-256 of [`INTEL_SGX_ROOT_CA`] as Intel publishes it.
pub const INTEL_SGX_ROOT_CA_SHA256: &str = "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3";

/// Google's vTPM EK/AK roots (DER): the roots go-tpm-tools ships in `server/ca-certs/`.
/// `tpm_ek_root_1` signs the intermediates of GCE's Shielded VM vTPM EK and AK certificates
/// (go-tpm-tools' `GceEKRoots`); `gcp_ek_ak_ca_root` is the CA Service root ("EK/AK CA Root")
/// of the newer certificates, which go-tpm-tools documents as the other root to trust.
pub const GCE_TPM_EK_ROOT_1: &[u8] = include_bytes!("../roots/gce-tpm_ek_root_1.cer");
/// Google Cloud "EK/AK CA Root" (CA Service), DER.
pub const GCE_EK_AK_CA_ROOT: &[u8] = include_bytes!("../roots/gce-gcp_ek_ak_ca_root.crt");

/// The roots a GCE vTPM AK certificate must chain to (default of `tpm::Options::roots`).
pub const GCE_VTPM_ROOTS: &[&[u8]] = &[GCE_TPM_EK_ROOT_1, GCE_EK_AK_CA_ROOT];

/// Google's vTPM EK/AK intermediates (DER), offered for path building only: a chain still has to
/// end at one of the roots given. GCE attestations usually carry no intermediates, so
/// go-tpm-tools passes its `GceEKIntermediates` too.
pub const GCE_VTPM_INTERMEDIATES: &[&[u8]] = &[
    include_bytes!("../roots/gce-tpm_ek_intermediate_2.crt"),
    include_bytes!("../roots/gce-tpm_ek_intermediate_3.crt"),
    include_bytes!("../roots/gce-gcp_ek_ak_ca_intermediate_v3.crt"),
];

/// SHA-256 of the GCE vTPM certificates above, by file name under `roots/` (pinned by a test,
/// listed in `roots/README.md`).
pub const GCE_VTPM_SHA256: &[(&str, &str)] = &[
    ("gce-tpm_ek_root_1.cer", "9bd5285f8fb18502a7947e621ffd470266f49fcd3b73e19a190f690ad32a7caf"),
    ("gce-gcp_ek_ak_ca_root.crt", "594759594b9b61524f6c8ef668f7177f7b9066bc0674f2f49fe9e052be78beb2"),
    ("gce-tpm_ek_intermediate_2.crt", "5d8dbcf8c8053dd8ffad711b6219355032b7122c34cac0f90ccb49def69ec504"),
    ("gce-tpm_ek_intermediate_3.crt", "7132b6ea71101f6c51bb58f98c3798c19b65be510eca0344318900510b593178"),
    ("gce-gcp_ek_ak_ca_intermediate_v3.crt", "c84de8116dfaf5a908f21e810487791f5437e206d00ad8025050cca6bd2ff627"),
];
