//! `inx image simplestreams`: the image added to a static simplestreams tree.

use super::*;
use crate::execute::folder::{Content, Folder, FolderFile};
use crate::images::simplestreams::{self, FileInfo, NewVersion, Outcome};
use crate::output::errln;

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
    let existing = read_tree(dir)?;
    let Some(files) = built_files(ctx, &outputs, &format!("add to {}", dir.display()))? else {
        return Ok(());
    };
    let new = NewVersion {
        alias: &alias,
        kind: files.kind,
        properties: &outputs.properties,
        fingerprint: &files.fingerprint,
        metadata: file_info(&files.metadata)?,
        root: file_info(&files.root)?,
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
    let plan = write_plan(dir, fresh, &added, &files, &outputs.name);
    write_out(
        ctx,
        &plan,
        || report(&added.product, &added.version, true),
        || {
            errln!(
                "{}: added version {} of {} ({}, alias {alias}); serve the folder over HTTPS, then:\n  incus remote add NAME https://HOST/PATH --protocol simplestreams\n  lxc remote add NAME https://HOST/PATH --protocol simplestreams",
                dir.display(),
                added.version,
                added.product,
                short(&files.fingerprint),
            );
            if !ctx.json {
                outln!("{}", added.version);
            }
        },
    )
}

/// The images.json of the tree already in `dir`, if any; `dir` must otherwise be free for a
/// new tree.
fn read_tree(dir: &Path) -> Result<Option<serde_json::Value>> {
    let images_path = dir.join(simplestreams::IMAGES);
    let existing = match std::fs::read_to_string(&images_path) {
        Ok(text) => Some(simplestreams::parse_images(&text)?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(simplestreams::unreadable(&images_path, e)),
    };
    if existing.is_none() {
        folder::free_target(dir).map_err(|e| {
            Error::input(format!(
                "{} is neither a simplestreams tree nor empty",
                dir.display()
            ))
            .with_hint(e.hint.unwrap_or_default())
        })?;
    }
    Ok(existing)
}

/// A file's digest and size, as the tree lists them.
fn file_info(path: &Path) -> Result<FileInfo> {
    Ok(FileInfo {
        sha256: crate::digest::sha256_file(path)?,
        size: std::fs::metadata(path)
            .map(|m| m.len())
            .map_err(|e| simplestreams::unreadable(path, e))?,
    })
}

/// The one step that writes the new version into the tree.
fn write_plan(
    dir: &Path,
    fresh: bool,
    added: &simplestreams::Added,
    files: &ImageFiles,
    name: &ContainerName,
) -> Plan {
    let pretty =
        |v: &serde_json::Value| serde_json::to_string_pretty(v).expect("JSON serialises") + "\n";
    let file = |path: String, content: Content| FolderFile { path, content };
    // A new tree is staged whole beside the target; an existing one gets the new version's
    // folder first and its two JSON files last, each by rename, so readers never see a
    // version whose files are missing.
    let folder = Folder {
        dir: dir.to_path_buf(),
        new: fresh,
        files: vec![
            file(
                format!("{}/{}", added.dir, added.metadata_file),
                Content::Copy(files.metadata.clone()),
            ),
            file(
                format!("{}/{}", added.dir, added.root_file),
                Content::Copy(files.root.clone()),
            ),
            file(
                simplestreams::IMAGES.to_string(),
                Content::Text(pretty(&added.images)),
            ),
            file(
                simplestreams::INDEX.to_string(),
                Content::Text(pretty(&added.index)),
            ),
        ],
        publish: vec![
            added.dir.clone(),
            simplestreams::IMAGES.to_string(),
            simplestreams::INDEX.to_string(),
        ],
    };
    Plan {
        steps: vec![Step {
            container: Some(name.clone()),
            host: None,
            what: What::Write,
            description: format!(
                "add version {} of {} to {}",
                added.version,
                added.product,
                dir.display()
            ),
            action: Action::WriteFolder(folder),
        }],
        ..Plan::default()
    }
}
