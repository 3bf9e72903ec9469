//! `inx image export`: the files in a folder, with how to import them by hand.

use super::*;
use crate::execute::folder::{Content, Folder, FolderFile};
use crate::output::errln;

/// The JSON of `image export`.
#[derive(Serialize)]
struct Exported<'a> {
    dir: String,
    files: [&'a str; 4],
    image: &'a ImageFiles,
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
    folder::free_target(dir)?;
    let Some(files) = built_files(ctx, &outputs, &format!("write {}", dir.display()))? else {
        return Ok(());
    };
    let root = root_file_name(files.kind);
    let exported = Exported {
        dir: dir.display().to_string(),
        files: ["metadata.tar.xz", root, "SHA256SUMS", "IMPORT.txt"],
        image: &files,
    };
    let alias = crate::images::default_alias(&outputs.name, outputs.kind);
    let text = |path: &str, text: String| FolderFile {
        path: path.to_string(),
        content: Content::Text(text),
    };
    let copy = |path: &str, from: &Path| FolderFile {
        path: path.to_string(),
        content: Content::Copy(from.to_path_buf()),
    };
    let folder = Folder {
        dir: dir.to_path_buf(),
        new: true,
        files: vec![
            copy("metadata.tar.xz", &files.metadata),
            copy(root, &files.root),
            FolderFile {
                path: "SHA256SUMS".to_string(),
                content: Content::Sha256Sums(vec!["metadata.tar.xz".into(), root.into()]),
            },
            text("IMPORT.txt", import_text(&outputs, &files, &alias)),
        ],
        publish: Vec::new(),
    };
    let plan = Plan {
        steps: vec![Step {
            container: Some(outputs.name.clone()),
            host: None,
            what: What::Write,
            description: format!(
                "write {}: metadata.tar.xz, {root}, SHA256SUMS, IMPORT.txt",
                dir.display()
            ),
            action: Action::WriteFolder(folder),
        }],
        ..Plan::default()
    };
    write_out(
        ctx,
        &plan,
        || output::json(&exported),
        || {
            errln!(
                "{}: wrote metadata.tar.xz, {root}, SHA256SUMS and IMPORT.txt (how to import them by hand)",
                dir.display()
            );
            if !ctx.json {
                outln!("{}", dir.display());
            }
        },
    )
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
        let alias = crate::images::default_alias(&outputs.name, outputs.kind);
        insta::assert_snapshot!(import_text(&outputs, &files, &alias));
    }
}
