//! `inx image build|import|publish|export|simplestreams`: one evaluation of just the image
//! outputs asked for, one build, then the files go where they are wanted.

use super::Ctx;
use crate::clients::incus::{self, Backend, Client, Remote, RemoteName};
use crate::clients::nix;
use crate::error::{Error, Result};
use crate::execute;
use crate::images::simplestreams::{self, FileInfo, NewVersion, Outcome};
use crate::images::staging::{self, Staging};
use crate::images::{self, Alias, ImageFiles, ImageKind, ImageOutputs};
use crate::name::ContainerName;
use crate::output::{self, out, outln};
use crate::plan::image::{self as image_plan, short, Destination};
use crate::plan::{Action, Plan, Step, What};
use serde::Serialize;
use std::path::Path;

/// The JSON of `image build` (docs/json.md).
#[derive(Serialize)]
struct Built<'a> {
    image: &'a ImageFiles,
    /// The folder whose links keep the files, or null with --no-link.
    out_link: Option<String>,
}

/// The JSON of `image import` and `image publish`: the plan, and the image it puts there.
#[derive(Serialize)]
struct ServerPlan<'a> {
    #[serde(flatten)]
    plan: &'a Plan,
    image: &'a ImageFiles,
}

/// The JSON of `image export`.
#[derive(Serialize)]
struct Exported<'a> {
    dir: String,
    files: [&'a str; 4],
    image: &'a ImageFiles,
}

/// The JSON of `image simplestreams`.
#[derive(Serialize)]
struct TreeVersion<'a> {
    dir: String,
    product: &'a str,
    version: &'a str,
    added: bool,
    image: &'a ImageFiles,
}

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

/// `inx image build`: the files, rooted by links in `out_link` (handed to the user, as `nix
/// build`'s `result`), and where they are.
pub fn build(ctx: &Ctx, name: &str, vm: bool, out_link: Option<&Path>) -> Result<()> {
    let outputs = gather(ctx, name, ImageKind::from_vm_flag(vm))?;
    if let Some(dir) = out_link {
        link_folder_is_free(dir)?;
    }
    let mut plan = Plan::building(
        &outputs.to_build(),
        &ctx.build_root(),
        Some(&outputs.name),
        |_| format!("build the {}", outputs.kind.describe()),
    );
    if let Some(dir) = out_link {
        plan.steps.extend(link_steps(&outputs, dir));
    }
    if ctx.dry_run {
        plan.notes
            .push("then: print where the files are".to_string());
        ctx.print_plan(&plan);
        return Ok(());
    }
    if plan.steps.iter().any(|s| s.what == What::Build) {
        ctx.hold_build_roots()?;
    }
    execute::execute(&ctx.runner, &plan)?;
    let files = outputs.files()?;
    if ctx.json {
        output::json(&Built {
            image: &files,
            out_link: out_link.map(|d| d.display().to_string()),
        });
    } else {
        outln!("metadata    {}", files.metadata.display());
        outln!("rootfs      {}", files.root.display());
        outln!("fingerprint {}", files.fingerprint);
        if let Some(dir) = out_link {
            ctx.runner.progress(format_args!(
                "{}: links keep the files from the host's GC; remove it to let them go",
                dir.display()
            ));
        }
    }
    Ok(())
}

/// The folder for the links must be a folder (or not exist yet): a `result` link from `nix
/// build` would point into the store, where nothing can be added.
fn link_folder_is_free(dir: &Path) -> Result<()> {
    match std::fs::symlink_metadata(dir) {
        Err(_) => Ok(()),
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(Error::input(format!(
            "{} exists and is not a folder (a `nix build` result?)",
            dir.display()
        ))
        .with_hint("pass --out-link with another folder, or --no-link")),
    }
}

/// The folder, then a root for each output: `nix-store --add-root` of a path that exists only
/// links and registers it, as `nix build --out-link` does.
fn link_steps(outputs: &ImageOutputs, dir: &Path) -> Vec<Step> {
    let step = |what, description: String, action| Step {
        container: Some(outputs.name.clone()),
        what,
        description,
        action,
    };
    let mut steps = vec![step(
        What::Link,
        format!("make {}", dir.display()),
        Action::CreateDir(dir.to_path_buf()),
    )];
    let root_name = match outputs.kind {
        ImageKind::Container => "rootfs",
        ImageKind::Vm => "disk",
    };
    for (link, out) in [("metadata", &outputs.metadata), (root_name, &outputs.root)] {
        let at = dir.join(link);
        steps.push(step(
            What::Link,
            format!("keep the {link} output from the GC as {}", at.display()),
            Action::Run(nix::realise(std::slice::from_ref(&out.out_path), &at)),
        ));
    }
    steps
}

pub struct ImportArgs<'a> {
    pub name: &'a str,
    pub target: Option<&'a str>,
    pub alias: Option<&'a str>,
    pub public: bool,
    pub vm: bool,
    pub backend: Backend,
}

/// The alias asked for (checked before anything runs), or the default one.
fn alias_or_default(alias: Option<&str>, name: &str, kind: ImageKind) -> Result<Alias> {
    let name = ContainerName::parse(name)?;
    alias
        .map(Alias::parse)
        .transpose()
        .map(|a| a.unwrap_or_else(|| Alias::default_for(&name, kind)))
}

fn remotes(ctx: &Ctx, backend: Backend) -> Result<std::collections::BTreeMap<String, Remote>> {
    let cmd = Client::of(backend).remote_list();
    let out = incus::checked(&cmd, ctx.runner.capture(&cmd)?)?;
    incus::parse_remotes(&out)
}

/// The remote, which the client must know and which must take images.
fn known_remote(ctx: &Ctx, backend: Backend, name: &RemoteName) -> Result<Remote> {
    let all = remotes(ctx, backend)?;
    let p = backend.program();
    let Some(remote) = all.get(name.as_str()) else {
        return Err(Error::input(format!(
            "{p} knows no remote named {}",
            name.as_str()
        ))
        .with_hint(format!(
            "add it first: `{p} remote add {} https://HOST:8443 --token TOKEN` (the server makes the token with `{p} config trust add NAME`); `{p} remote list` shows the remotes",
            name.as_str()
        )));
    };
    if !remote.is_server() {
        return Err(Error::input(format!(
            "remote {} is a read-only {} server ({}); images can only be put on an Incus or LXD server",
            name.as_str(),
            remote.protocol,
            remote.addr
        ))
        .with_hint("for a static tree, use `inx image simplestreams NAME DIR` and serve DIR over HTTPS"));
    }
    if remote.public {
        return Err(Error::input(format!(
            "remote {} was added with --public, so this client may only read from it",
            name.as_str()
        ))
        .with_hint(format!(
            "add the server again as a trusted remote: `{p} remote add NAME {} --token TOKEN`",
            remote.addr
        )));
    }
    Ok(remote.clone())
}

/// Puts the image on a server (a remote the caller checked); returns its files.
fn put(ctx: &Ctx, args: &ImportArgs, remote: Option<&RemoteName>) -> Result<Option<ImageFiles>> {
    let kind = ImageKind::from_vm_flag(args.vm);
    let alias = alias_or_default(args.alias, args.name, kind)?;
    let outputs = gather(ctx, args.name, kind)?;
    let Some(files) = built_files(
        ctx,
        &outputs,
        &format!("import into {}", args.backend.program()),
    )?
    else {
        return Ok(None);
    };
    let client = Client::of(args.backend);
    let list = client.image_list(remote);
    let existing = incus::parse_images(&incus::checked(&list, ctx.runner.capture(&list)?)?)?;
    let target = Destination {
        client,
        remote,
        alias: &alias,
        public: args.public,
    };
    let plan = image_plan::import(&outputs.name, &files, &existing, &target);
    if !plan.unchanged.is_empty() && !ctx.dry_run {
        ctx.runner.progress(format_args!(
            "{}: {} already has this image ({}) as {}{}; nothing to do",
            outputs.name,
            target.server(),
            short(&files.fingerprint),
            alias,
            if args.public { ", public" } else { "" }
        ));
    }
    carry_out(ctx, &plan, &files)?;
    Ok((!ctx.dry_run).then_some(files))
}

/// Runs a server plan with the one executor; its JSON carries the image's files.
fn carry_out(ctx: &Ctx, plan: &Plan, files: &ImageFiles) -> Result<()> {
    if !ctx.dry_run {
        execute::execute(&ctx.runner, plan)?;
        if !ctx.json {
            return Ok(());
        }
    }
    if ctx.json {
        output::json(&ServerPlan { plan, image: files });
    } else {
        out!("{}", plan.to_shell());
    }
    Ok(())
}

pub fn import(ctx: &Ctx, args: &ImportArgs) -> Result<()> {
    let remote = args.target.map(RemoteName::parse).transpose()?;
    alias_or_default(args.alias, args.name, ImageKind::from_vm_flag(args.vm))?;
    if let Some(r) = &remote {
        known_remote(ctx, args.backend, r)?;
    }
    if let Some(files) = put(ctx, args, remote.as_ref())? {
        if !ctx.json {
            outln!("{}", files.fingerprint);
        }
    }
    Ok(())
}

pub fn publish(ctx: &Ctx, args: &ImportArgs) -> Result<()> {
    let b = args.backend;
    let remote_name = RemoteName::parse(args.target.expect("clap requires --remote"))?;
    let alias = alias_or_default(args.alias, args.name, ImageKind::from_vm_flag(args.vm))?;
    let remote = known_remote(ctx, b, &remote_name)?;
    if !remote.addr.starts_with("https://") {
        return Err(Error::input(format!(
            "remote {} ({}) is not reached over HTTPS, so other hosts cannot add it",
            remote_name.as_str(),
            remote.addr
        ))
        .with_hint(format!(
            "publish to a server with core.https_address set, added here with `{} remote add NAME https://HOST:8443 --token TOKEN`",
            b.program()
        )));
    }
    let public = ImportArgs {
        public: true,
        ..*args
    };
    let Some(files) = put(ctx, &public, Some(&remote_name))? else {
        return Ok(());
    };
    let p = b.program();
    eprintln!(
        "published {} on {} as a public image; on another host:\n  {p} remote add {} {} --public\n  {p} launch {}:{} {}{}",
        short(&files.fingerprint),
        remote.addr,
        remote_name.as_str(),
        remote.addr,
        remote_name.as_str(),
        alias,
        args.name,
        launch_flags(ImageKind::from_vm_flag(args.vm))
    );
    if !ctx.json {
        outln!("{}", files.fingerprint);
    }
    Ok(())
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

/// The text that goes with exported files.
fn import_text(outputs: &ImageOutputs, files: &ImageFiles, alias: &Alias) -> String {
    let root = root_file_name(files.kind);
    let name = &outputs.name;
    let flags = launch_flags(files.kind);
    let kind = match files.kind {
        ImageKind::Container => "container",
        ImageKind::Vm => "virtual machine",
    };
    format!(
        "NixOS image of the inx container {name} ({kind}), {description}.\n\
         Fingerprint: {fp}\n\
         \n\
         Copy this folder to the other host, then in it:\n\
         \n\
         With Incus:\n\
         \x20 incus image import metadata.tar.xz {root} --alias {alias}\n\
         \x20 incus launch {alias} {name}{flags}\n\
         \n\
         With LXD (for example in ChromeOS's termina VM, where the client is lxc):\n\
         \x20 lxc image import metadata.tar.xz {root} --alias {alias}\n\
         \x20 lxc launch {alias} {name}{flags}\n\
         \n\
         The import prints the fingerprint; it must be the one above (so is\n\
         `cat metadata.tar.xz {root} | sha256sum`). SHA256SUMS has each file's hash.\n",
        description = outputs.properties.description,
        fp = files.fingerprint,
    )
}

pub fn export(ctx: &Ctx, name: &str, dir: &Path, vm: bool) -> Result<()> {
    let outputs = gather(ctx, name, ImageKind::from_vm_flag(vm))?;
    staging::free_target(dir)?;
    let Some(files) = built_files(ctx, &outputs, &format!("write {}", dir.display()))? else {
        return Ok(());
    };
    let root = root_file_name(files.kind);
    let exported = Exported {
        dir: dir.display().to_string(),
        files: ["metadata.tar.xz", root, "SHA256SUMS", "IMPORT.txt"],
        image: &files,
    };
    if ctx.dry_run {
        if ctx.json {
            output::json(&exported);
        } else {
            outln!(
                "# write {}: metadata.tar.xz, {root}, SHA256SUMS, IMPORT.txt",
                dir.display()
            );
        }
        return Ok(());
    }
    let alias = Alias::default_for(&outputs.name, outputs.kind);
    let staged = Staging::beside(dir)?;
    staged.copy(&files.metadata, "metadata.tar.xz")?;
    staged.copy(&files.root, root)?;
    let sums = format!(
        "{}  metadata.tar.xz\n{}  {root}\n",
        images::sha256_file(&files.metadata)?,
        images::sha256_file(&files.root)?
    );
    staged.write("SHA256SUMS", sums.as_bytes())?;
    staged.write(
        "IMPORT.txt",
        import_text(&outputs, &files, &alias).as_bytes(),
    )?;
    staged.commit_as(dir)?;
    eprintln!(
        "{}: wrote metadata.tar.xz, {root}, SHA256SUMS and IMPORT.txt (how to import them by hand)",
        dir.display()
    );
    if ctx.json {
        output::json(&exported);
    } else {
        outln!("{}", dir.display());
    }
    Ok(())
}

pub fn simplestreams(
    ctx: &Ctx,
    name: &str,
    dir: &Path,
    alias: Option<&str>,
    vm: bool,
) -> Result<()> {
    let alias = alias_or_default(alias, name, ImageKind::from_vm_flag(vm))?;
    let outputs = gather(ctx, name, ImageKind::from_vm_flag(vm))?;
    let images_path = dir.join(simplestreams::IMAGES);
    let existing = match std::fs::read_to_string(&images_path) {
        Ok(text) => Some(simplestreams::parse_images(&text)?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(simplestreams::unreadable(&images_path, e)),
    };
    if existing.is_none() {
        staging::free_target(dir).map_err(|e| {
            Error::input(format!(
                "{} is neither a simplestreams tree nor empty",
                dir.display()
            ))
            .with_hint(e.hint.unwrap_or_default())
        })?;
    }
    let Some(files) = built_files(ctx, &outputs, &format!("add to {}", dir.display()))? else {
        return Ok(());
    };
    let size = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| m.len())
            .map_err(|e| simplestreams::unreadable(p, e))
    };
    let new = NewVersion {
        alias: &alias,
        kind: files.kind,
        properties: &outputs.properties,
        fingerprint: &files.fingerprint,
        metadata: FileInfo {
            sha256: images::sha256_file(&files.metadata)?,
            size: size(&files.metadata)?,
        },
        root: FileInfo {
            sha256: images::sha256_file(&files.root)?,
            size: size(&files.root)?,
        },
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let fresh = existing.is_none();
    let report = |product: &str, version: &str, added: bool| {
        output::json(&TreeVersion {
            dir: dir.display().to_string(),
            product,
            version,
            added,
            image: &files,
        })
    };
    let added = match simplestreams::add(existing, &new, &simplestreams::version_stamp(now))? {
        Outcome::Present { product, version } => {
            ctx.runner.progress(format_args!(
                "{}: the tree already has this build ({}) as version {version} of {product}; nothing to do",
                dir.display(),
                short(&files.fingerprint)
            ));
            if ctx.json {
                report(&product, &version, false);
            }
            return Ok(());
        }
        Outcome::Added(added) => added,
    };
    if ctx.dry_run && ctx.json {
        report(&added.product, &added.version, true);
        return Ok(());
    }
    if ctx.dry_run {
        outln!(
            "# add version {} of {} to {} ({}/{}, {}/{})",
            added.version,
            added.product,
            dir.display(),
            added.dir,
            added.metadata_file,
            added.dir,
            added.root_file
        );
        return Ok(());
    }
    let pretty =
        |v: &serde_json::Value| serde_json::to_string_pretty(v).expect("JSON serialises") + "\n";
    // A new tree is staged whole beside the target; an existing one gets the new version's
    // folder first and its two JSON files last, each by rename, so readers never see a
    // version whose files are missing.
    let staged = if fresh {
        Staging::beside(dir)?
    } else {
        Staging::inside(dir)?
    };
    staged.copy(
        &files.metadata,
        &format!("{}/{}", added.dir, added.metadata_file),
    )?;
    staged.copy(&files.root, &format!("{}/{}", added.dir, added.root_file))?;
    staged.write(simplestreams::IMAGES, pretty(&added.images).as_bytes())?;
    staged.write(simplestreams::INDEX, pretty(&added.index).as_bytes())?;
    if fresh {
        staged.commit_as(dir)?;
    } else {
        staged.move_out(&added.dir, &dir.join(&added.dir))?;
        staged.move_out(simplestreams::IMAGES, &dir.join(simplestreams::IMAGES))?;
        staged.move_out(simplestreams::INDEX, &dir.join(simplestreams::INDEX))?;
    }
    eprintln!(
        "{}: added version {} of {} ({}, alias {alias}); serve the folder over HTTPS, then:\n  incus remote add NAME https://HOST/PATH --protocol simplestreams\n  lxc remote add NAME https://HOST/PATH --protocol simplestreams",
        dir.display(),
        added.version,
        added.product,
        short(&files.fingerprint),
    );
    if ctx.json {
        report(&added.product, &added.version, true);
    } else {
        outln!("{}", added.version);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images::{Properties, StoreOutput};

    #[test]
    fn import_text_for_a_container() {
        let outputs = ImageOutputs {
            name: ContainerName::parse("web").unwrap(),
            kind: ImageKind::Container,
            properties: Properties {
                os: "nixos".into(),
                release: "25.11".into(),
                variant: "default".into(),
                architecture: "x86_64".into(),
                description: "NixOS Xantusia 25.11 x86_64-linux".into(),
            },
            metadata: StoreOutput {
                drv_path: None,
                out_path: "/nix/store/m".into(),
            },
            root: StoreOutput {
                drv_path: None,
                out_path: "/nix/store/r".into(),
            },
        };
        let files = ImageFiles {
            kind: ImageKind::Container,
            metadata: "/nix/store/m/tarball/x.tar.xz".into(),
            root: "/nix/store/r/x.squashfs".into(),
            fingerprint: "aafd3b080e96".into(),
        };
        let alias = Alias::default_for(&outputs.name, outputs.kind);
        insta::assert_snapshot!(import_text(&outputs, &files, &alias));
    }
}
