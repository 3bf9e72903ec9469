//! `inx image build`.

use super::*;

/// The JSON of `image build` (docs/json.md).
#[derive(Serialize)]
struct Built<'a> {
    image: &'a ImageFiles,
    /// The folder whose links keep the files, or null with --no-link.
    out_link: Option<String>,
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
            .push(Note::Then("print where the files are".to_string()));
        ctx.print_plan(&plan);
        return Ok(());
    }
    if plan.steps.iter().any(|s| s.what == What::Build) {
        ctx.hold_build_roots()?;
    }
    execute::execute(&*ctx.runner, &plan)?;
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
        host: None,
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
