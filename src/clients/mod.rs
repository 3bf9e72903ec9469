//! The clients of the tools inx drives: what `nix` and `incus` (or `lxc`) are asked, as data
//! (`Cmd`), and how their output and failures are read. Nothing here runs a process.

pub mod incus;
pub mod nix;
