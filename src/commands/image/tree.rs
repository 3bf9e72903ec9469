//! `inx image simplestreams`: the image added to a static simplestreams tree.

use super::*;
use crate::images::simplestreams::{self, FileInfo, NewVersion, Outcome};

/// The JSON of `image simplestreams`.
#[derive(Serialize)]
struct TreeVersion<'a> {
    dir: String,
    product: &'a str,
    version: &'a str,
    added: bool,
    image: &'a ImageFiles,
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
