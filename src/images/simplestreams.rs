//! A static simplestreams tree (`streams/v1/index.json`, `streams/v1/images.json`, `images/`)
//! that any HTTPS server can host, read by Incus and LXD clients alike. Pure: the JSON in,
//! the JSON out; `commands::image` writes the files.
//!
//! Format facts (from Incus's and LXD's `shared/simplestreams`):
//! - a version's items are matched by `ftype`: Incus reads a `incus.tar.xz` metadata item, LXD
//!   a `lxd.tar.xz` one. Both items here point at the same file.
//! - the root item is `squashfs` (containers) or `disk-kvm.img` (VMs); the image fingerprint is
//!   the metadata item's `combined_squashfs_sha256` or `combined_disk-kvm-img_sha256`.
//! - a version name must start with a `YYYYMMDD` date (it becomes the creation date), and the
//!   greatest name gets the alias. NixOS metadata has `creation_date = 1` for every build, so
//!   the version name is the time of adding it instead.
//! - products and versions that are already there are kept as they are.

use crate::error::{Error, Kind, Result};
use crate::images::{Alias, ImageKind, Properties};
use serde_json::{json, Map, Value};

pub const INDEX: &str = "streams/v1/index.json";
pub const IMAGES: &str = "streams/v1/images.json";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    pub sha256: String,
    pub size: u64,
}

/// One build to add.
#[derive(Debug, Clone)]
pub struct NewVersion<'a> {
    pub alias: &'a Alias,
    pub kind: ImageKind,
    pub properties: &'a Properties,
    pub fingerprint: &'a str,
    pub metadata: FileInfo,
    pub root: FileInfo,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The tree already has this build.
    Present {
        product: String,
        version: String,
    },
    Added(Added),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Added {
    pub product: String,
    pub version: String,
    /// The folder of the version, relative to the tree.
    pub dir: String,
    /// File names inside `dir`.
    pub metadata_file: &'static str,
    pub root_file: &'static str,
    pub images: Value,
    pub index: Value,
}

fn root_item(kind: ImageKind) -> (&'static str, &'static str, &'static str) {
    // (item name and file name, ftype, combined hash key)
    match kind {
        ImageKind::Container => ("root.squashfs", "squashfs", "combined_squashfs_sha256"),
        ImageKind::Vm => ("disk.qcow2", "disk-kvm.img", "combined_disk-kvm-img_sha256"),
    }
}

const COMBINED_KEYS: [&str; 2] = ["combined_squashfs_sha256", "combined_disk-kvm-img_sha256"];

/// `YYYYMMDD_HHMMSS` in UTC for seconds since the epoch.
pub fn version_stamp(unix: u64) -> String {
    let (year, month, day, hour, minute, second) = crate::utc::civil(unix as i64);
    format!("{year:04}{month:02}{day:02}_{hour:02}{minute:02}{second:02}")
}

fn malformed(why: &str) -> Error {
    Error::input(format!(
        "{IMAGES} is not a simplestreams products file: {why}"
    ))
    .with_hint("give a new folder, or one that inx (or incus-simplestreams) made")
}

/// Adds one build to the products file `images` (None for a new tree). `stamp` is the version
/// name to use (from `version_stamp`); it gets a suffix if that name is taken.
pub fn add(images: Option<Value>, new: &NewVersion, stamp: &str) -> Result<Outcome> {
    let mut images = images.unwrap_or_else(|| {
        json!({
            "content_id": "images",
            "datatype": "image-downloads",
            "format": "products:1.0",
            "products": {}
        })
    });
    let products = images
        .get_mut("products")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| malformed("no products object"))?;

    for (product, p) in products.iter() {
        let versions = p.get("versions").and_then(Value::as_object);
        for (version, v) in versions.into_iter().flatten() {
            let items = v.get("items").and_then(Value::as_object);
            let has = items.into_iter().flatten().any(|(_, item)| {
                COMBINED_KEYS
                    .iter()
                    .any(|k| item.get(*k).and_then(Value::as_str) == Some(new.fingerprint))
            });
            if has {
                return Ok(Outcome::Present {
                    product: product.clone(),
                    version: version.clone(),
                });
            }
        }
    }

    let arch = &new.properties.architecture;
    let product_key = format!("{}:{}:{arch}", new.properties.os, new.alias);
    let product = products.entry(product_key.clone()).or_insert_with(|| {
        json!({
            "aliases": new.alias.as_str(),
            "arch": arch,
            "os": new.properties.os,
            "release": new.properties.release,
            "release_title": new.properties.release,
            "variant": new.properties.variant,
            "versions": {}
        })
    });
    let versions = product
        .get_mut("versions")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| malformed(&format!("product {product_key} has no versions object")))?;
    let mut version = stamp.to_string();
    let mut n = 1;
    while versions.contains_key(&version) {
        version = format!("{stamp}_{n}");
        n += 1;
    }

    let dir = format!("images/{}/{arch}/{version}", new.alias);
    let (root_name, root_ftype, combined_key) = root_item(new.kind);
    let meta_item = |ftype: &str| {
        let mut item = Map::new();
        item.insert("ftype".into(), json!(ftype));
        item.insert("path".into(), json!(format!("{dir}/incus.tar.xz")));
        item.insert("sha256".into(), json!(new.metadata.sha256));
        item.insert("size".into(), json!(new.metadata.size));
        item.insert(combined_key.into(), json!(new.fingerprint));
        Value::Object(item)
    };
    versions.insert(
        version.clone(),
        json!({
            "items": {
                "incus.tar.xz": meta_item("incus.tar.xz"),
                "lxd.tar.xz": meta_item("lxd.tar.xz"),
                root_name: {
                    "ftype": root_ftype,
                    "path": format!("{dir}/{root_name}"),
                    "sha256": new.root.sha256,
                    "size": new.root.size,
                }
            },
            "label": new.properties.description,
        }),
    );
    let index = index_for(&images);
    Ok(Outcome::Added(Added {
        product: product_key,
        version,
        dir,
        metadata_file: "incus.tar.xz",
        root_file: root_name,
        images,
        index,
    }))
}

/// The index that lists every product of `images`.
pub fn index_for(images: &Value) -> Value {
    let products: Vec<&String> = images
        .get("products")
        .and_then(Value::as_object)
        .map(|p| p.keys().collect())
        .unwrap_or_default();
    json!({
        "format": "index:1.0",
        "index": {
            "images": {
                "datatype": "image-downloads",
                "format": "products:1.0",
                "path": IMAGES,
                "products": products,
            }
        }
    })
}

/// Reads an existing products file; a missing one is a new tree.
pub fn parse_images(text: &str) -> Result<Value> {
    let v: Value = serde_json::from_str(text).map_err(|e| malformed(&e.to_string()))?;
    if v.get("products").and_then(Value::as_object).is_none() {
        return Err(malformed("no products object"));
    }
    Ok(v)
}

/// For callers that found the tree unreadable for another reason.
pub fn unreadable(path: &std::path::Path, e: std::io::Error) -> Error {
    Error::new(Kind::Failed, format!("cannot read {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props() -> Properties {
        Properties {
            os: "nixos".into(),
            release: "25.11".into(),
            variant: "default".into(),
            architecture: "x86_64".into(),
            description: "NixOS 25.11 x86_64-linux".into(),
        }
    }

    fn new<'a>(
        alias: &'a Alias,
        p: &'a Properties,
        fp: &'a str,
        kind: ImageKind,
    ) -> NewVersion<'a> {
        NewVersion {
            alias,
            kind,
            properties: p,
            fingerprint: fp,
            metadata: FileInfo {
                sha256: format!("meta-of-{fp}"),
                size: 300,
            },
            root: FileInfo {
                sha256: format!("root-of-{fp}"),
                size: 1_000_000,
            },
        }
    }

    fn added(o: Outcome) -> Added {
        match o {
            Outcome::Added(a) => a,
            other => panic!("expected an addition, got {other:?}"),
        }
    }

    #[test]
    fn stamps_are_utc_dates_first() {
        assert_eq!(version_stamp(0), "19700101_000000");
        assert_eq!(version_stamp(951_782_400), "20000229_000000");
        assert_eq!(version_stamp(1_763_750_096), "20251121_183456");
    }

    #[test]
    fn a_new_tree_has_entries_for_incus_and_lxd() {
        let alias = Alias::parse("nixos/web").unwrap();
        let p = props();
        let a = added(
            add(
                None,
                &new(&alias, &p, "fp1", ImageKind::Container),
                "20251121_183456",
            )
            .unwrap(),
        );
        assert_eq!(a.dir, "images/nixos/web/x86_64/20251121_183456");
        insta::assert_json_snapshot!("new_tree_images", a.images);
        insta::assert_json_snapshot!("new_tree_index", a.index);
    }

    #[test]
    fn a_second_build_and_a_second_image_keep_the_first() {
        let web = Alias::parse("nixos/web").unwrap();
        let db = Alias::parse("nixos/db").unwrap();
        let p = props();
        let first = added(
            add(
                None,
                &new(&web, &p, "fp1", ImageKind::Container),
                "20251121_183456",
            )
            .unwrap(),
        );
        // The same stamp again (two builds in one second) still gives a new version.
        let second = added(
            add(
                Some(first.images),
                &new(&web, &p, "fp2", ImageKind::Container),
                "20251121_183456",
            )
            .unwrap(),
        );
        assert_eq!(second.version, "20251121_183456_1");
        let third = added(
            add(
                Some(second.images),
                &new(&db, &p, "fp3", ImageKind::Vm),
                "20251122_000000",
            )
            .unwrap(),
        );
        insta::assert_json_snapshot!("three_versions_images", third.images);
        insta::assert_json_snapshot!("three_versions_index", third.index);

        let again = add(
            Some(third.images),
            &new(&web, &p, "fp1", ImageKind::Container),
            "20251123_000000",
        )
        .unwrap();
        assert_eq!(
            again,
            Outcome::Present {
                product: "nixos:nixos/web:x86_64".into(),
                version: "20251121_183456".into()
            }
        );
    }

    #[test]
    fn a_foreign_file_is_refused() {
        assert_eq!(parse_images("[]").unwrap_err().kind, Kind::Input);
        assert_eq!(parse_images("{").unwrap_err().kind, Kind::Input);
    }
}
