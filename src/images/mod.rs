//! A container's image files: one `nix eval` of just the image outputs one command needs (the
//! manifest projection of `up` never touches them), the files found by glob in the built
//! outputs, and the image's fingerprint as Incus and LXD compute it.

pub mod simplestreams;

use crate::clients::nix;
use crate::cmd::Cmd;
use crate::error::{Error, Kind, Result};
use crate::name::ContainerName;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Which image: a container's (squashfs root filesystem) or a virtual machine's (qcow2 disk).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageKind {
    Container,
    Vm,
}

impl ImageKind {
    pub fn from_vm_flag(vm: bool) -> Self {
        if vm {
            ImageKind::Vm
        } else {
            ImageKind::Container
        }
    }

    /// The attribute under `images` in the flake (see lib/images.nix).
    fn attr(self) -> &'static str {
        match self {
            ImageKind::Container => "container",
            ImageKind::Vm => "vm",
        }
    }

    /// The attribute of the root file system or disk.
    fn root_attr(self) -> &'static str {
        match self {
            ImageKind::Container => "squashfs",
            ImageKind::Vm => "qcow2",
        }
    }

    /// How the root file's name ends.
    pub fn root_ext(self) -> &'static str {
        self.root_attr()
    }

    pub fn describe(self) -> &'static str {
        match self {
            ImageKind::Container => "container image",
            ImageKind::Vm => "virtual-machine image",
        }
    }
}

/// One output of the image: its derivation (when it still has to be built) and its path.
/// (Not `outPath` in the projection: `nix eval --json` prints an attribute set with an
/// `outPath` as that string.)
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreOutput {
    #[serde(rename = "drv")]
    pub drv_path: Option<String>,
    #[serde(rename = "path")]
    pub out_path: String,
}

impl StoreOutput {
    pub fn built(&self) -> bool {
        Path::new(&self.out_path).exists()
    }

    /// What `nix-store --realise` is given for it.
    fn realisable(&self) -> String {
        self.drv_path
            .clone()
            .unwrap_or_else(|| self.out_path.clone())
    }
}

/// What simplestreams and the import text say about the image.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Properties {
    pub os: String,
    pub release: String,
    pub variant: String,
    pub architecture: String,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageOutputs {
    pub name: ContainerName,
    pub kind: ImageKind,
    pub properties: Properties,
    pub metadata: StoreOutput,
    pub root: StoreOutput,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEval {
    declared: bool,
    images: Option<RawImages>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImages {
    properties: Properties,
    metadata: StoreOutput,
    root: StoreOutput,
}

/// One `nix eval` of one container's image outputs of one kind, and nothing else.
pub fn eval_images(flake: &str, name: &ContainerName, kind: ImageKind) -> Cmd {
    // The name is validated (lowercase letters, digits, '-'), so quoting it is safe.
    let projection = format!(
        "cs: let c = cs.\"{name}\"; \
         i = if c ? images && c.images != null && c.images ? {kind} then c.images else null; \
         out = d: {{ drv = d.drvPath or null; path = \"${{d}}\"; }}; \
         in if !(cs ? \"{name}\") then {{ declared = false; images = null; }} \
         else {{ declared = true; images = if i == null then null else {{ \
           properties = i.properties; metadata = out i.{kind}.metadata; root = out i.{kind}.{root}; }}; }}",
        kind = kind.attr(),
        root = kind.root_attr(),
    );
    Cmd::new("nix").args(nix::FEATURES).args([
        "eval",
        "--json",
        &format!("{flake}#{}", nix::OUTPUT),
        "--apply",
        &projection,
    ])
}

pub fn parse_eval(json: &str, name: &ContainerName, kind: ImageKind) -> Result<ImageOutputs> {
    let raw: RawEval = serde_json::from_str(json).map_err(|e| {
        Error::new(
            Kind::Eval,
            format!("cannot read the image outputs of {name}: {e}"),
        )
        .with_hint("this is a bug in inx's projection or a very old inx flake input")
    })?;
    if !raw.declared {
        return Err(
            Error::input(format!("not declared in the flake's inxContainers: {name}"))
                .with_hint("`inx list` shows the declared containers"),
        );
    }
    let Some(images) = raw.images else {
        return Err(no_images(name, kind));
    };
    Ok(ImageOutputs {
        name: name.clone(),
        kind,
        properties: images.properties,
        metadata: images.metadata,
        root: images.root,
    })
}

pub fn no_images(name: &ContainerName, kind: ImageKind) -> Error {
    let hint = match kind {
        ImageKind::Container => "a container made with `nixpkgs`, `system` and `modules` has image outputs; one made from a `toplevel` needs `images.container = { metadata = ...; squashfs = ...; }` in mkContainer",
        ImageKind::Vm => "a container made with `nixpkgs`, `system` and `modules` has VM image outputs; one made from a `toplevel` needs `images.vm = { metadata = ...; qcow2 = ...; }` in mkContainer",
    };
    Error::new(
        Kind::NoImage,
        format!("inxContainers.{name} has no {} outputs", kind.describe()),
    )
    .with_hint(hint)
}

impl ImageOutputs {
    /// What still has to be built, for one `nix-store --realise`.
    pub fn to_build(&self) -> Vec<String> {
        [&self.metadata, &self.root]
            .into_iter()
            .filter(|o| !o.built())
            .map(StoreOutput::realisable)
            .collect()
    }

    /// The files, once built: found by glob, since nixpkgs renamed them across releases.
    pub fn files(&self) -> Result<ImageFiles> {
        let metadata = find_file(&self.metadata.out_path, "tar.xz")?;
        let root = find_file(&self.root.out_path, self.kind.root_ext())?;
        let fingerprint = crate::digest::sha256_files(&[&metadata, &root])?;
        Ok(ImageFiles {
            kind: self.kind,
            metadata,
            root,
            fingerprint,
        })
    }
}

/// The built files of an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageFiles {
    pub kind: ImageKind,
    pub metadata: PathBuf,
    #[serde(rename = "rootfs")]
    pub root: PathBuf,
    /// What Incus and LXD call the image: the SHA-256 of the metadata file followed by the
    /// root file.
    pub fingerprint: String,
}

impl ImageFiles {
    /// The metadata and root files, as an import takes them.
    pub fn paths(&self) -> (&Path, &Path) {
        (&self.metadata, &self.root)
    }
}

/// The output itself when it is a file, else the one file under it whose name ends in `.ext`.
pub fn find_file(out: &str, ext: &str) -> Result<PathBuf> {
    let root = Path::new(out);
    if root.is_file() {
        return Ok(root.to_path_buf());
    }
    let mut found = Vec::new();
    collect(root, &format!(".{ext}"), &mut found);
    found.sort();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(Error::new(
            Kind::Eval,
            format!("{out} holds no *.{ext} file"),
        )
        .with_hint("the image output is not what inx expects; check the derivation given in mkContainer's images")),
        _ => Err(Error::new(
            Kind::Eval,
            format!(
                "{out} holds several *.{ext} files: {}",
                found
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

fn collect(dir: &Path, suffix: &str, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        // Store outputs hold no links to follow for image files; links could lead anywhere.
        match entry.file_type() {
            Ok(t) if t.is_dir() => collect(&path, suffix, found),
            Ok(t) if t.is_file() && path.to_string_lossy().ends_with(suffix) => found.push(path),
            _ => {}
        }
    }
}

pub use crate::name::Alias;

/// `nixos/NAME` for a container image, `nixos/NAME/vm` for a VM image.
pub fn default_alias(name: &ContainerName, kind: ImageKind) -> Alias {
    let alias = match kind {
        ImageKind::Container => format!("nixos/{name}"),
        ImageKind::Vm => format!("nixos/{name}/vm"),
    };
    Alias::parse(&alias).expect("a container name makes a valid alias")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn web() -> ContainerName {
        ContainerName::parse("web").unwrap()
    }

    #[test]
    fn eval_selects_one_container_and_kind() {
        let cmd = eval_images("/srv/flake", &web(), ImageKind::Vm);
        insta::assert_snapshot!(cmd.to_shell());
    }

    #[test]
    fn parses_outputs_and_explains_missing_ones() {
        let json = r#"{"declared":true,"images":{"properties":{"os":"nixos","release":"25.11","variant":"default","architecture":"x86_64","description":"d"},
            "metadata":{"drv":"/nix/store/a.drv","path":"/nix/store/a"},"root":{"drv":null,"path":"/nix/store/b"}}}"#;
        let out = parse_eval(json, &web(), ImageKind::Container).unwrap();
        assert_eq!(out.properties.architecture, "x86_64");
        assert_eq!(out.to_build(), ["/nix/store/a.drv", "/nix/store/b"]);

        let none = parse_eval(
            r#"{"declared":true,"images":null}"#,
            &web(),
            ImageKind::Container,
        )
        .unwrap_err();
        assert_eq!(none.kind, Kind::NoImage);
        insta::assert_snapshot!("no_image_outputs", none.to_string());
        let undeclared = parse_eval(
            r#"{"declared":false,"images":null}"#,
            &web(),
            ImageKind::Container,
        )
        .unwrap_err();
        assert_eq!(undeclared.kind, Kind::Input);
    }

    #[test]
    fn finds_files_by_suffix_and_hashes_them_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir_all(out.join("tarball")).unwrap();
        std::fs::create_dir_all(out.join("nix-support")).unwrap();
        std::fs::write(out.join("tarball/nixos-x.tar.xz"), b"meta").unwrap();
        std::fs::write(out.join("nix-support/hydra-build-products"), b"x").unwrap();
        let found = find_file(out.to_str().unwrap(), "tar.xz").unwrap();
        assert!(found.ends_with("tarball/nixos-x.tar.xz"));
        assert_eq!(
            find_file(out.to_str().unwrap(), "squashfs")
                .unwrap_err()
                .kind,
            Kind::Eval
        );
        std::fs::write(out.join("other.tar.xz"), b"more").unwrap();
        assert!(find_file(out.to_str().unwrap(), "tar.xz")
            .unwrap_err()
            .message
            .contains("several"));
        // A file output is the file.
        let file = dir.path().join("root.squashfs");
        std::fs::write(&file, b"root").unwrap();
        assert_eq!(find_file(file.to_str().unwrap(), "squashfs").unwrap(), file);
        // The same as `cat META ROOT | sha256sum`.
        assert_eq!(
            crate::digest::sha256_files(&[&found, &file]).unwrap(),
            "e0cf642cb0d3e186cf613398341be54a385c45f650c077942a80fc6b6409903c"
        );
    }

    #[test]
    fn aliases() {
        assert_eq!(
            default_alias(&web(), ImageKind::Vm).as_str(),
            "nixos/web/vm"
        );
        assert!(Alias::parse("nixos/web").is_ok());
        for bad in ["", "a//b", "../x", "a/./b", "a b", "x:y", "/abs"] {
            assert!(Alias::parse(bad).is_err(), "{bad:?}");
        }
    }
}
