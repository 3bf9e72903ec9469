//! End-to-end tests of `inx image`: the real binary, real Nix, real Incus and (for
//! `--backend lxd`) Debian's real LXD 5.0, with synthetic image files that Nix builds from the
//! fixture system (tests/fixtures/synthetic-image.nix: a squashfs made with squashfs-tools and
//! a metadata tarball). Servers run on 127.0.0.1 only, with the test CA that provisioning
//! installs. Every instance, image alias, remote and folder made here starts with `img-`.
//!
//! What the tests share is in tests/images/bed.rs; the tests are in the modules below, one
//! per verb.

// A test writes to the test harness's captured stderr: eprintln! is right here (clippy.toml
// forbids it in inx itself, where stderr can be a closed pipe).
#![allow(clippy::disallowed_macros)]

#[path = "e2e/harness.rs"]
#[allow(dead_code)]
mod harness;

#[path = "images/bed.rs"]
#[macro_use]
mod bed;

#[path = "images/bad_input.rs"]
mod bad_input;
#[path = "images/build_import.rs"]
mod build_import;
#[path = "images/export.rs"]
mod export;
#[path = "images/lxd.rs"]
mod lxd;
#[path = "images/publish.rs"]
mod publish;
#[path = "images/simplestreams.rs"]
mod simplestreams;
#[path = "images/up_from_image.rs"]
mod up_from_image;
