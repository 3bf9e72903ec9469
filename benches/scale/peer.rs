//! The way users would take instead of inx: the same system as an Incus image, imported with
//! `incus image import` and launched with `incus launch`, against `inx up` from the shared
//! store, in time and in host disk, at closure sizes of real systems.
//!
//! The system is the synthetic one with inert pseudo-random files in its closure
//! (tests/fixtures/synthetic-payload.nix), so that squashfs cannot shrink it. Its image is a
//! squashfs of the closure plus a metadata tarball (tests/fixtures/synthetic-image.nix), built
//! by `nix build` once, beforehand; that build is timed on its own. Each run then starts with
//! no instance and no image, and:
//!
//! - inx: `inx up bench-001`, then `inx up bench-002` (a further container of the same system);
//! - image: `incus image import META ROOTFS --alias bench-peer` and `incus launch bench-peer
//!   bench-peer-1 -c security.nesting=true` (nesting as inx sets it), timed together, then a
//!   further `incus launch` of `bench-peer-2` from the imported image.
//!
//! Each step is timed until its command returns with the container running; then (untimed)
//! the bench waits until every container's init has activated the system. Host disk is
//! measured in the first run: `du` of each container's directory in the `dir` pool (plus its
//! host profile for inx), and the image's size in Incus's image store.

use super::bed::{checked, names, timed, Bed, NIX_FEATURES, PEERS, PEER_ALIAS, PROFILES};
use super::report::*;
use super::{closure_size, du, pool_dir, sides, wait_running, Settings, Side};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Tables {
    pub time: Table,
    pub disk: Table,
}

impl Tables {
    pub fn new() -> Self {
        Tables {
            time: Table::new(
                "**One new container: inx against an image of the same system** (image: built once by `nix build`, a squashfs of the closure and a metadata tarball; `incus image import` + `incus launch`, then a further `incus launch` from the imported image. inx: `inx up` of one new container, then of a further one; the system is built beforehand)",
                &[
                    "closure",
                    "image build (once)",
                    "inx `up`",
                    "import + launch",
                    "inx/image",
                    "inx `up`, a further container",
                    "a further `incus launch`",
                    "inx/image",
                ],
            ),
            disk: Table::new(
                "**Host disk: inx against an image of the same system** (per container: `du` of its directory in the `dir` pool, plus its host profile for inx; the image: its size in Incus's image store)",
                &[
                    "closure",
                    "per container (inx)",
                    "per container (image)",
                    "inx/image",
                    "the image in the image store",
                ],
            ),
        }
    }
}

/// What is missing on this host for the image side, if anything: the fixtures call these.
pub fn missing_tools() -> Vec<&'static str> {
    [
        "/usr/bin/mksquashfs",
        "/usr/bin/tar",
        "/usr/bin/xz",
        "/usr/bin/openssl",
    ]
    .into_iter()
    .filter(|t| !Path::new(t).exists())
    .collect()
}

/// The flake's parts for a system with `size` MiB of payload and its image.
fn flake_parts(size: u64) -> (String, String) {
    let lets = format!(
        r#"
      payload = import ./synthetic-payload.nix {{ inherit busybox; mib = {size}; }};
      big = import ./synthetic-system.nix {{
        inherit busybox payload;
        version = "peer-{size}m";
      }};"#
    );
    let outputs = r#"
      benchImage = import ./synthetic-image.nix { inherit busybox; toplevel = big; };"#;
    (lets, outputs.to_string())
}

/// The one file in `dir` whose name ends with `suffix`.
fn file_in(dir: &Path, suffix: &str) -> PathBuf {
    let found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one {suffix} in {}: {found:?}",
        dir.display()
    );
    found.into_iter().next().unwrap()
}

fn query(path: &str) -> Value {
    let out = checked(Command::new("incus").args(["query", path]));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Whether the instance has a disk device (its profiles' included) that binds the host's store.
fn binds_store(name: &str) -> bool {
    let i = query(&format!("/1.0/instances/{name}"));
    i["expanded_devices"]
        .as_object()
        .unwrap()
        .values()
        .any(|d| d["type"] == "disk" && (d["source"] == "/nix/store" || d["path"] == "/nix/store"))
}

/// Bytes a container adds on the host: its directory in the pool, plus its host profile.
fn container_disk(pool: &Path, name: &str) -> u64 {
    let profile = Path::new(PROFILES).join(name);
    du(&pool.join("containers").join(name)) + if profile.exists() { du(&profile) } else { 0 }
}

/// Compares both ways for a system with `size` MiB of payload; adds a row to each table.
pub fn compare(bed: &Bed, s: &Settings, size: u64, t: &mut Tables) {
    let runs = s.runs;
    eprintln!("bench: inx against an image, {size} MiB of payload ({runs} runs)");
    let inx_names = names(2);
    let (lets, outputs) = flake_parts(size);
    let pairs: Vec<(String, String)> = inx_names
        .iter()
        .map(|n| {
            (
                n.clone(),
                "inx.lib.mkContainer { toplevel = big; }".to_string(),
            )
        })
        .collect();
    bed.declare_parts(&lets, &pairs, &outputs);
    bed.note_instances(&PEERS);
    let all: Vec<String> = inx_names
        .iter()
        .cloned()
        .chain(PEERS.iter().map(|p| p.to_string()))
        .collect();
    bed.clear(&all);
    bed.drop_image();

    // The system, untimed: neither side builds it.
    let built = bed.build_big(&bed.toplevels(&inx_names));
    let system = built[0].clone();
    assert!(
        built.iter().all(|b| *b == system),
        "both containers have one system: {built:?}"
    );
    let systems = vec![system.clone(); 2];
    let payload = std::fs::read_link(Path::new(&system).join("payload"))
        .expect("the big system links its payload");
    bed.note_big(&[system.clone(), payload.display().to_string()]);
    let closure = closure_size(&system);

    // The image, timed on its own, unless it was in the store already.
    let flake = bed.flake().display().to_string();
    let image_attrs = [
        format!("{flake}#benchImage.squashfs"),
        format!("{flake}#benchImage.metadata"),
    ];
    let cached = Command::new("nix")
        .args(NIX_FEATURES)
        .args(["path-info"])
        .args(&image_attrs)
        .output()
        .is_ok_and(|o| o.status.success());
    let mut image = Vec::new();
    let build = timed(|| image = bed.build_big(&image_attrs));
    // The squashfs is this system's; the metadata is the same for every synthetic image.
    bed.note_big(&image[..1]);
    let rootfs = file_in(&Path::new(&image[0]).join("rootfs"), ".squashfs");
    let meta = file_in(&Path::new(&image[1]).join("tarball"), ".tar.xz");

    let pool = pool_dir();
    let (mut inx_first, mut inx_more, mut img_first, mut img_more) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut inx_disk = None;
    let mut img_disk = None;
    let mut image_size = 0;
    for run in 0..runs {
        for side in sides(run) {
            bed.clear(&all);
            bed.drop_image();
            // Writeback of what the previous side wrote or deleted is not this side's cost.
            checked(&mut Command::new("sync"));
            match side {
                Side::Inx => {
                    inx_first.push(timed(|| {
                        bed.inx(&["up", &inx_names[0]]).ok();
                    }));
                    inx_more.push(timed(|| {
                        bed.inx(&["up", &inx_names[1]]).ok();
                    }));
                    wait_running(&inx_names, &systems);
                    for n in &inx_names {
                        assert!(binds_store(n), "{n} (inx) binds the host's store");
                    }
                    if run == 0 {
                        inx_disk = pool.as_ref().map(|p| {
                            inx_names.iter().map(|n| container_disk(p, n)).sum::<u64>()
                                / inx_names.len() as u64
                        });
                    }
                }
                // The raw side here is the image way.
                Side::Raw => {
                    img_first.push(timed(|| {
                        checked(
                            Command::new("incus")
                                .args(["image", "import"])
                                .args([&meta, &rootfs])
                                .args(["--alias", PEER_ALIAS]),
                        );
                        launch(PEERS[0]);
                    }));
                    img_more.push(timed(|| launch(PEERS[1])));
                    let peers: Vec<String> = PEERS.iter().map(|p| p.to_string()).collect();
                    wait_running(&peers, &systems);
                    for p in PEERS {
                        assert!(!binds_store(p), "{p} (image) binds no host store");
                    }
                    if run == 0 {
                        let fp = query(&format!("/1.0/images/aliases/{PEER_ALIAS}"))["target"]
                            .as_str()
                            .expect("an alias has a target")
                            .to_string();
                        image_size = query(&format!("/1.0/images/{fp}"))["size"]
                            .as_u64()
                            .expect("an image has a size");
                        if let Some(p) = &pool {
                            let base = Path::new(&system).file_name().unwrap();
                            for peer in PEERS {
                                let own = p.join("containers").join(peer).join("rootfs/nix/store");
                                assert!(
                                    own.join(base).join("init").exists(),
                                    "{peer} has the system in its own root filesystem"
                                );
                            }
                            img_disk = Some(
                                PEERS.iter().map(|n| container_disk(p, n)).sum::<u64>()
                                    / PEERS.len() as u64,
                            );
                        }
                    }
                }
            }
        }
    }
    bed.clear(&all);
    bed.drop_image();
    bed.release_big();

    if let (Some(i), Some(p)) = (inx_disk, img_disk) {
        assert!(
            i < p,
            "an inx container adds less host disk than one from an image: {i} against {p} bytes"
        );
    }
    let (f_i, f_p) = (median(inx_first), median(img_first));
    let (m_i, m_p) = (median(inx_more), median(img_more));
    t.time.row(vec![
        mib(closure),
        if cached {
            "(in the store already)".into()
        } else {
            secs(build)
        },
        secs(f_i),
        secs(f_p),
        small_ratio(f_i.as_secs_f64(), f_p.as_secs_f64()),
        secs(m_i),
        secs(m_p),
        small_ratio(m_i.as_secs_f64(), m_p.as_secs_f64()),
    ]);
    match (inx_disk, img_disk) {
        (Some(i), Some(p)) => t.disk.row(vec![
            mib(closure),
            mib(i),
            mib(p),
            small_ratio(i as f64, p as f64),
            mib(image_size),
        ]),
        _ => t.disk.row(vec![
            mib(closure),
            "(the default profile's pool is not a `dir` pool: skipped)".into(),
            "-".into(),
            "-".into(),
            mib(image_size),
        ]),
    }
}

/// `incus launch` of the bench's image, with nesting as inx gives its containers.
fn launch(name: &str) {
    checked(Command::new("incus").args([
        "launch",
        PEER_ALIAS,
        name,
        "-c",
        "security.nesting=true",
    ]));
}

/// A ratio with two significant digits, for ratios far below 1 (0.00015x).
fn small_ratio(a: f64, b: f64) -> String {
    let r = a / b;
    if r >= 1.0 || r <= 0.0 {
        return format!("{r:.2}x");
    }
    let decimals = (-r.log10()).floor() as usize + 2;
    format!("{r:.decimals$}x")
}
