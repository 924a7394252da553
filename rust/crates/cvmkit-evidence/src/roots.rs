//! Roots of trust compiled into the binary (see `roots/README.md` for where each comes from).

/// Intel SGX Root CA (DER): the root of every DCAP quote's PCK chain and of the collateral's
/// TCB-info and QE-identity signing chains.
pub const INTEL_SGX_ROOT_CA: &[u8] = include_bytes!("../roots/intel-sgx-root-ca.der");

/// SHA-256 of [`INTEL_SGX_ROOT_CA`] as Intel publishes it.
pub const INTEL_SGX_ROOT_CA_SHA256: &str = "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3";

/// AMD Root Keys (DER) of the SEV-SNP generations Milan, Genoa and Turin: the only roots of an
/// SNP report's VCEK/VLEK chain.
pub const AMD_ARKS: &[&[u8]] = &[
    include_bytes!("../roots/amd-ark-milan.der"),
    include_bytes!("../roots/amd-ark-genoa.der"),
    include_bytes!("../roots/amd-ark-turin.der"),
];

/// SHA-256 of each of [`AMD_ARKS`], in the same order.
pub const AMD_ARKS_SHA256: &[&str] = &[
    "69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd",
    "4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1",
    "1f084161a44bb6d93778a904877d4819cafa5d05ef4193b2ded9dd9c73dd3f6a",
];

/// AMD SEV Keys (ASK, signing VCEKs) and AMD SEV VLEK Keys (ASVK, signing VLEKs) of Milan,
/// Genoa and Turin (DER). Bundled for convenience, not trusted: each is checked against the
/// pinned ARK like an ASK given with the evidence.
pub const AMD_SEV_KEYS: &[&[u8]] = &[
    include_bytes!("../roots/amd-ask-milan.der"),
    include_bytes!("../roots/amd-ask-genoa.der"),
    include_bytes!("../roots/amd-ask-turin.der"),
    include_bytes!("../roots/amd-asvk-milan.der"),
    include_bytes!("../roots/amd-asvk-genoa.der"),
    include_bytes!("../roots/amd-asvk-turin.der"),
];

/// SHA-256 of each of [`AMD_SEV_KEYS`], in the same order.
pub const AMD_SEV_KEYS_SHA256: &[&str] = &[
    "67d303bd3905fd38db8b20e0793699870e7fa612eaad5dec358293fd8c0bac1b",
    "5464738c1546aed5f2cecf1dc98c5c960a92e8913238a61711bc90ec6e828521",
    "5b77ef5fe7a7a004fd9032668fba9d0fda22f88c4442069a479636a6ae3b3185",
    "c5e081f59b7efab1fe2f8b505e159704e72f29cab7ef7cf628a05a42439082f5",
    "197e610743a917d6b9bb982a5a9226ccc0a15b611be0619e626aca9151457372",
    "104e10a8bd060a3c20a434261a57d0588fd65a88915b4f65b08bdecaf8df1a3c",
];

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
