//! The inx binary against recording stand-ins for `nix`, `nix-store`, `nix-env` and `incus`.
//!
//! Every test runs the real binary in a sandbox: PATH holds only the stand-ins (one shell
//! script, tests/cli/stand-in.sh, symlinked under each name) and a directory with just the
//! utilities that script needs, so no real nix or incus can be reached. The stand-ins record
//! each call in calls.log and answer from response files the test writes; each test checks the
//! exit code and what inx did, and did not, run.
//!
//! The sandbox and what the tests share are in tests/cli/sandbox.rs; the tests are in the
//! modules below, by what they exercise.

// A test writes to the test harness's captured stderr: eprintln! is right here (clippy.toml
// forbids it in inx itself, where stderr can be a closed pipe).
#![allow(clippy::disallowed_macros)]

#[path = "cli/sandbox.rs"]
mod sandbox;
#[path = "e2e/skips.rs"]
mod skips;

#[path = "cli/generations.rs"]
mod generations;
#[path = "cli/global.rs"]
mod global;
#[path = "cli/images.rs"]
mod images;
#[path = "cli/json.rs"]
mod json;
#[path = "cli/lifecycle.rs"]
mod lifecycle;
#[path = "cli/list.rs"]
mod list;
#[path = "cli/roots.rs"]
mod roots;
#[path = "cli/up.rs"]
mod up;
