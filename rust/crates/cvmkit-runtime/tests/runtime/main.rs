//! The integration tests of cvmkit-runtime: one binary, one module per concern. Every server is a
//! real HTTP (or TLS, TPM) server on 127.0.0.1 started by the test; nothing below the HTTP layer
//! is mocked, and no test uses a default endpoint.
#![allow(dead_code)]

mod support;

mod attacks;
mod acme;
mod cli;
mod discovery;
mod https;
mod measure;
mod nginx;
mod qemu;
