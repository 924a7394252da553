//! The `cvmkit.image/v1` image spec as Rust types, and [`build`]: the image of a spec.
//!
//! The Nix library writes the spec (`mkSpec` in nix/image.nix) and `cvmkit build` reads it; both
//! follow these types: the JSON Schema generated from them ([`schema_json`]) is committed at
//! `nix/cvmkit.image.v1.schema.json` and the Nix library tests validate `mkSpec`'s output
//! against it, so neither side can grow a key the other does not know. With the `clap` feature
//! the spec's enums are `clap::ValueEnum`s, so a command line takes the same values.
//!
//! ```no_run
//! let spec = cvmkit_image::Spec::load("image.json".as_ref())?;
//! let out = cvmkit_image::build(&spec, "out".as_ref())?;
//! println!("{}", out.uki.display());
//! # Ok::<(), cvmkit_image::Error>(())
//! ```

mod build;
mod error;
mod follow;
pub mod output;
pub mod predict;
mod sbom;
mod spec;

pub use build::{build, Artifacts};
pub use error::{Context, Error, Result};
pub use sbom::HashingWriter;
pub use spec::{
    defaults, parse_memory, ComponentSpec, SourceSpec, parse_size, schema_json, Compress, DiskFormat, DiskSpec, InitrdSpec,
    KernelMeasures, MeasureSpec, OneOrMany, OvmfProfile, PageOrder, Platform, SevMode, Size, Spec,
    TpmBank, UkiSpec, VmmType, SCHEMA,
};
