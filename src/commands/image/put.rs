//! `inx image import` and `inx image publish`: the image put on a server, by a plan.

use super::*;
use crate::output::errln;

/// The JSON of `image import` and `image publish`: the plan, and the image it puts there.
#[derive(Serialize)]
struct ServerPlan<'a> {
    #[serde(flatten)]
    plan: &'a Plan,
    image: &'a ImageFiles,
}

pub struct ImportArgs<'a> {
    pub name: &'a str,
    pub target: Option<&'a str>,
    pub alias: Option<&'a str>,
    pub public: bool,
    pub vm: bool,
    pub backend: Backend,
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
        execute::execute(&*ctx.runner, plan)?;
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
    errln!(
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
