//! Roots of trust compiled into the binary (see `roots/README.md` for where each comes from).

/// Intel SGX Root CA (DER): the root of every DCAP quote's PCK chain and of the collateral's
/// TCB-info and QE-identity signing chains.
pub const INTEL_SGX_ROOT_CA: &[u8] = include_bytes!("../roots/intel-sgx-root-ca.der");

/// SHA-256 of [`INTEL_SGX_ROOT_CA`] as Intel publishes it.
pub const INTEL_SGX_ROOT_CA_SHA256: &str = "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3";
