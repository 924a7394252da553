//! One module per subcommand: argument struct + `run`.

pub mod initrd;
pub mod inspect;
pub mod uki;
