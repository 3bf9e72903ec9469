//! `inx image build|import|publish|export|simplestreams`, one file per verb: one evaluation of
//! just the image outputs asked for, one build, then the files go where they are wanted.

mod build;
mod export;
mod put;
mod tree;

pub use build::build;
pub use export::export;
pub use put::{import, publish, ImportArgs};
pub use tree::simplestreams;

use super::Ctx;
use crate::clients::incus::{self, Backend, Client, Remote, RemoteName};
use crate::clients::nix;
use crate::error::{Error, Result};
use crate::execute;
use crate::execute::folder;
use crate::images::{self, Alias, ImageFiles, ImageKind, ImageOutputs};
use crate::name::ContainerName;
use crate::output::{self, out, outln};
use crate::plan::image::{self as image_plan, short, Destination};
use crate::plan::{Action, Note, Plan, Step, What};
use serde::Serialize;
use std::path::Path;

/// Evaluates one container's image outputs of one kind.
fn gather(ctx: &Ctx, name: &str, kind: ImageKind) -> Result<ImageOutputs> {
    let name = ContainerName::parse(name)?;
    let cmd = images::eval_images(&ctx.flake, &name, kind);
    let out = ctx.evaluate(&cmd)?;
    images::parse_eval(&out.stdout, &name, kind)
}

/// Builds what is missing and finds the files; `None` in a dry run that would have to build
/// first (the plan is printed then).
fn built_files(ctx: &Ctx, outputs: &ImageOutputs, then: &str) -> Result<Option<ImageFiles>> {
    let plan = Plan::building(
        &outputs.to_build(),
        &ctx.build_root(),
        Some(&outputs.name),
        |_| format!("build the {}", outputs.kind.describe()),
    );
    if !ctx.build_first(plan, then)? {
        return Ok(None);
    }
    outputs.files().map(Some)
}

/// The alias asked for (checked before anything runs), or the default one.
/// Carries out a plan that writes a folder, or prints it in a dry run. `document` prints the
/// command's JSON (in a dry run too: it is what the command would print); `done` says what was
/// written, on stderr, and with `--json` off its one line on stdout.
fn write_out(ctx: &Ctx, plan: &Plan, document: impl Fn(), done: impl FnOnce()) -> Result<()> {
    if ctx.dry_run {
        if ctx.json {
            document();
        } else {
            ctx.print_plan(plan);
        }
        return Ok(());
    }
    execute::execute(&*ctx.runner, plan)?;
    done();
    if ctx.json {
        document();
    }
    Ok(())
}

fn alias_or_default(alias: Option<&str>, name: &str, kind: ImageKind) -> Result<Alias> {
    let name = ContainerName::parse(name)?;
    alias
        .map(Alias::parse)
        .transpose()
        .map(|a| a.unwrap_or_else(|| crate::images::default_alias(&name, kind)))
}

fn root_file_name(kind: ImageKind) -> &'static str {
    match kind {
        ImageKind::Container => "rootfs.squashfs",
        ImageKind::Vm => "disk.qcow2",
    }
}

/// What `incus launch` needs for an image of this kind: nesting for a container (systemd's
/// service sandboxing stays on, as inx's own containers have it), and no secure boot for a VM
/// (NixOS's image is not signed).
fn launch_flags(kind: ImageKind) -> &'static str {
    match kind {
        ImageKind::Container => " -c security.nesting=true",
        ImageKind::Vm => " --vm -c security.secureboot=false",
    }
}
