//! One module per subcommand: argument struct + `run`.

pub mod build;
pub mod debloat;
pub mod diff;
pub mod disk;
pub mod initrd;
pub mod inspect;
pub mod measure;
pub mod measure_check;
pub mod provenance;
pub mod reference;
pub mod replay;
pub mod run_local;
pub mod uki;
pub mod verify;
