//! End-to-end tests of `inx image`: the real binary, real Nix, real Incus and (for
//! `--backend lxd`) Debian's real LXD 5.0, with synthetic image files that Nix builds from the
//! fixture system (tests/fixtures/synthetic-image.nix: a squashfs made with squashfs-tools and
//! a metadata tarball). Servers run on 127.0.0.1 only, with the test CA that provisioning
//! installs. Every instance, image alias, remote and folder made here starts with `img-`.

#[path = "e2e/harness.rs"]
#[allow(dead_code)]
mod harness;

use harness::{host, Fixture, Run};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Ports on 127.0.0.1 for the Incus server and the static HTTPS server.
const INCUS_PORT: u16 = 39443;
const STATIC_PORT: u16 = 39445;
const TLS_DIR: &str = "/var/lib/inx-test/tls";

/// Takes the host, or says why not, as `harness::host` does, also for what only these tests
/// need. `lxd`: the test drives LXD too.
fn image_host(test: &str, lxd: bool) -> Option<std::sync::MutexGuard<'static, ()>> {
    let guard = host(test)?;
    let mut problems = Vec::new();
    for tool in [
        "/usr/bin/mksquashfs",
        "/usr/bin/tar",
        "/usr/bin/xz",
        "/usr/bin/python3",
    ] {
        if !Path::new(tool).exists() {
            problems.push(format!("{tool} is missing"));
        }
    }
    if !Path::new(TLS_DIR).join("server.crt").exists() {
        problems.push(format!("no test certificate in {TLS_DIR}"));
    }
    if lxd && !ok(Command::new("lxc").arg("info")) {
        problems.push("LXD does not answer (`lxc info`)".into());
    }
    if problems.is_empty() {
        return Some(guard);
    }
    harness::skip(test, &problems.join("; "));
    None
}

macro_rules! host {
    ($test:expr, $lxd:expr) => {
        match image_host($test, $lxd) {
            Some(guard) => guard,
            None => return,
        }
    };
}

fn ok(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs a client command that must succeed; its stdout.
fn must(program: &str, args: &[&str], env: &[(&str, &Path)]) -> String {
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run client");
    assert!(
        out.status.success(),
        "`{program} {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The image tests' part of the fixture flake (see `harness::Fixture::write_flake_parts`).
const LETS: &str = r#"
      image = toplevel: import ./synthetic-image.nix { inherit busybox toplevel; };
      # Metadata no server can read: an import of it fails.
      junkMetadata = derivation {
        name = "inx-junk-metadata";
        system = "x86_64-linux";
        builder = "${busybox}/bin/sh";
        args = [ "-e" "-c" "${busybox}/bin/busybox mkdir -p $out; echo junk >$out/junk.tar.xz" ];
      };
      withImage = version: inx.lib.mkContainer {
        toplevel = sys version;
        images.container = image (sys version);
      };"#;

const CONTAINERS: &str = r#"
        web = withImage "1";
        web2 = withImage "2";
        web3 = withImage "3";
        junk = inx.lib.mkContainer {
          toplevel = sys "3";
          images.container = {
            inherit (image (sys "3")) squashfs;
            metadata = junkMetadata;
          };
        };
        plain = inx.lib.mkContainer { toplevel = sys "1"; };
        img-up-decl = inx.lib.mkContainer {
          toplevel = sys "1";
          images.container = image (sys "1");
          fromImage = true;
        };
        img-up-flag = withImage "2";"#;

const OUTPUTS: &str = r#"
      systems = { v1 = sys "1"; v2 = sys "2"; };"#;

/// A fixture with the image flake, and everything this test made, removed at the end.
struct Bed {
    fx: Fixture,
    instances: Vec<(&'static str, String)>,
    images: Vec<(&'static str, String)>,
    undo: Vec<Box<dyn FnOnce()>>,
}

impl Bed {
    fn new(prefix: &str) -> Self {
        let fx = Fixture::new(prefix);
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        std::fs::copy(
            repo.join("tests/fixtures/synthetic-image.nix"),
            fx.user_dir().join("synthetic-image.nix"),
        )
        .unwrap();
        fx.write_flake_parts(LETS, CONTAINERS, OUTPUTS);
        Bed {
            fx,
            instances: Vec::new(),
            images: Vec::new(),
            undo: Vec::new(),
        }
    }

    fn inx(&self, args: &[&str]) -> Run {
        self.fx.inx(args)
    }

    fn inx_env(&self, args: &[&str], env: &[(&str, &Path)]) -> Run {
        self.fx.inx_with(args, |cmd| {
            for (k, v) in env {
                cmd.env(k, v);
            }
        })
    }

    /// A folder of this test, inside its temporary directory.
    fn dir(&self, name: &str) -> PathBuf {
        self.fx.path().join(name)
    }

    /// The store path of a synthetic system of this flake (`v1`, `v2`).
    fn system(&self, which: &str) -> String {
        let out = Command::new("nix")
            .args([
                "--extra-experimental-features",
                "nix-command flakes",
                "eval",
                "--raw",
            ])
            .arg(format!("{}#systems.{which}", self.fx.user_dir().display()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `inx image build NAME`: (metadata, rootfs, fingerprint); the links that keep the
    /// files go to this test's folder `result-image-NAME`.
    fn build(&self, name: &str) -> (PathBuf, PathBuf, String) {
        let links = self.dir(&format!("result-image-{name}"));
        let run = self
            .inx(&[
                "image",
                "build",
                name,
                "--out-link",
                links.to_str().unwrap(),
            ])
            .ok();
        let field = |key: &str| {
            run.stdout
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .map(|v| v.trim().to_string())
                .unwrap_or_else(|| panic!("no {key} in {}", run.stdout))
        };
        (
            field("metadata").into(),
            field("rootfs").into(),
            field("fingerprint"),
        )
    }

    /// An instance name of this test, removed at the end (`program` is incus or lxc).
    fn instance(&mut self, program: &'static str, name: &str) -> String {
        let _ = Command::new(program)
            .args(["delete", "--force", name])
            .stderr(Stdio::null())
            .status();
        self.instances.push((program, name.to_string()));
        name.to_string()
    }

    /// An image this test put on a server, removed at the end.
    fn image(&mut self, program: &'static str, fingerprint: &str) {
        self.images.push((program, fingerprint.to_string()));
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        for (program, name) in &self.instances {
            let _ = Command::new(program)
                .args(["delete", "--force", name])
                .stderr(Stdio::null())
                .status();
        }
        for (program, fp) in &self.images {
            let _ = Command::new(program)
                .args(["image", "delete", fp])
                .stderr(Stdio::null())
                .status();
        }
        for undo in self.undo.drain(..).rev() {
            undo();
        }
    }
}

/// The images a server lists, as JSON.
fn server_images(program: &str, remote: &str, env: &[(&str, &Path)]) -> Vec<serde_json::Value> {
    let mut args = vec!["image", "list"];
    if !remote.is_empty() {
        args.push(remote);
    }
    args.extend(["--format", "json"]);
    serde_json::from_str(&must(program, &args, env)).unwrap()
}

fn with_fingerprint<'a>(images: &'a [serde_json::Value], fp: &str) -> Vec<&'a serde_json::Value> {
    images.iter().filter(|i| i["fingerprint"] == fp).collect()
}

fn aliases_of(image: &serde_json::Value) -> Vec<String> {
    image["aliases"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| x["name"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until the container booted `system` from its own root filesystem (its init links
/// /run/current-system), then checks that it has no shared store: its /nix/store holds exactly
/// the system's closure, copied from the image.
fn assert_boots_from_image(program: &str, name: &str, system: &str) {
    let sh = |script: &str| {
        Command::new(program)
            .args([
                "exec",
                name,
                "--",
                &format!("{system}/sw/bin/sh"),
                "-c",
                script,
            ])
            .output()
            .expect("exec")
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = sh("readlink /run/current-system");
        if String::from_utf8_lossy(&out.stdout).trim() == system {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{name} did not boot {system} within 30 s: {out:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let inside = sh("ls /nix/store");
    let mut inside: Vec<String> = String::from_utf8_lossy(&inside.stdout)
        .lines()
        .map(|l| format!("/nix/store/{l}"))
        .collect();
    inside.sort();
    let closure = Command::new("nix-store")
        .args(["-qR", system])
        .output()
        .unwrap();
    let mut closure: Vec<String> = String::from_utf8_lossy(&closure.stdout)
        .lines()
        .map(String::from)
        .collect();
    closure.sort();
    assert_eq!(
        inside, closure,
        "{name}'s store is the image's copy of the closure"
    );
    let show = must(program, &["config", "show", name, "--expanded"], &[]);
    assert!(
        !show.contains("source: /nix/store"),
        "{name} binds no host store:\n{show}"
    );
    let log = sh("cat /var/lib/inx-test/activations");
    assert!(
        String::from_utf8_lossy(&log.stdout).contains("activate"),
        "{log:?}"
    );
}

fn sha256_of(files: &[&Path]) -> String {
    let mut cmd = String::from("cat");
    for f in files {
        cmd.push(' ');
        cmd.push_str(&f.display().to_string());
    }
    let out = Command::new("sh")
        .args(["-c", &format!("{cmd} | sha256sum")])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// A port nothing listens on yet, or a loud failure.
fn free_port(port: u16) {
    assert!(
        TcpListener::bind(("127.0.0.1", port)).is_ok(),
        "127.0.0.1:{port} is taken; the image tests need it"
    );
}

/// `inx image build` prints the files and the fingerprint Incus computes; `import` puts the
/// image on the server, a second import is a no-op; a container launched from it boots
/// without the shared store.
#[test]
fn build_import_twice_and_launch() {
    let _host = host!("build_import_twice_and_launch", false);
    let mut bed = Bed::new("img-import");
    let (meta, root, fp) = bed.build("web");
    assert!(meta.to_string_lossy().ends_with(".tar.xz") && meta.is_file());
    assert!(root.to_string_lossy().ends_with(".squashfs") && root.is_file());
    assert_eq!(fp, sha256_of(&[&meta, &root]));
    // The files are handed over with links that are GC roots, as `nix build`'s result is.
    let links = bed.dir("result-image-web");
    let roots = must("nix-store", &["--gc", "--print-roots"], &[]);
    for (link, file) in [("metadata", &meta), ("rootfs", &root)] {
        let at = links.join(link);
        let target = std::fs::read_link(&at).unwrap();
        assert!(
            file.starts_with(&target),
            "{} -> {}",
            at.display(),
            target.display()
        );
        assert!(
            roots.contains(&format!("{} -> {}", at.display(), target.display())),
            "{} is a GC root:\n{roots}",
            at.display()
        );
    }
    bed.image("incus", &fp);

    let first = bed
        .inx(&["image", "import", "web", "--alias", "img-import-web"])
        .ok();
    assert_eq!(first.stdout.trim(), fp);
    let images = server_images("incus", "", &[]);
    let ours = with_fingerprint(&images, &fp);
    assert_eq!(ours.len(), 1);
    assert_eq!(aliases_of(ours[0]), ["img-import-web"]);
    assert_eq!(ours[0]["public"], false);

    let again = bed
        .inx(&["image", "import", "web", "--alias", "img-import-web"])
        .ok()
        .stderr_has("nothing to do");
    assert_eq!(again.stdout.trim(), fp);
    assert!(
        !again.stderr.contains("import the container image"),
        "{}",
        again.stderr
    );
    let images = server_images("incus", "", &[]);
    assert_eq!(
        with_fingerprint(&images, &fp).len(),
        1,
        "one image after two imports"
    );

    // A dry run of a change prints it and changes nothing.
    let dry = bed
        .inx(&[
            "--dry-run",
            "image",
            "import",
            "web",
            "--alias",
            "img-import-web",
            "--public",
        ])
        .ok();
    assert!(
        dry.stdout.contains("incus query -X PATCH"),
        "{}",
        dry.stdout
    );
    assert_eq!(
        with_fingerprint(&server_images("incus", "", &[]), &fp)[0]["public"],
        false
    );

    let c = bed.instance("incus", "img-import-c");
    must("incus", &["launch", "img-import-web", &c], &[]);
    assert_boots_from_image("incus", &c, &bed.system("v1"));
}

/// A new build takes the alias over only once it is on the server: when its import fails,
/// the alias stays on the image that had it; when it succeeds, the alias moves to it and the
/// old image stays, without the alias.
#[test]
fn the_alias_moves_only_once_the_new_image_is_in() {
    let _host = host!("the_alias_moves_only_once_the_new_image_is_in", false);
    let mut bed = Bed::new("img-move");
    let (_, _, old) = bed.build("web");
    let (_, _, new) = bed.build("web2");
    let (_, _, junk) = bed.build("junk");
    for fp in [&old, &new, &junk] {
        bed.image("incus", fp);
    }
    bed.inx(&["image", "import", "web", "--alias", "img-move-web"])
        .ok();

    bed.inx(&["image", "import", "junk", "--alias", "img-move-web"])
        .code(1)
        .stderr_has("incus image import");
    let images = server_images("incus", "", &[]);
    assert!(with_fingerprint(&images, &junk).is_empty());
    assert_eq!(
        aliases_of(with_fingerprint(&images, &old)[0]),
        ["img-move-web"],
        "a failed import leaves the alias where it was"
    );

    bed.inx(&["image", "import", "web2", "--alias", "img-move-web"])
        .ok()
        .stderr_has("move alias img-move-web");
    let images = server_images("incus", "", &[]);
    assert_eq!(
        aliases_of(with_fingerprint(&images, &new)[0]),
        ["img-move-web"]
    );
    assert!(
        aliases_of(with_fingerprint(&images, &old)[0]).is_empty(),
        "the old image stays, without the alias"
    );
}

/// `publish` puts the image on an Incus server on 127.0.0.1 as a public image; a client that
/// adds the server with `--public` lists it and launches from it. A server that no longer
/// trusts the client refuses, and nothing is added.
#[test]
fn publish_to_a_server_on_loopback() {
    let _host = host!("publish_to_a_server_on_loopback", false);
    let mut bed = Bed::new("img-publish");
    let before = must("incus", &["config", "get", "core.https_address"], &[])
        .trim()
        .to_string();
    if before.is_empty() {
        free_port(INCUS_PORT);
    }
    let address = if before.is_empty() {
        must(
            "incus",
            &[
                "config",
                "set",
                "core.https_address",
                &format!("127.0.0.1:{INCUS_PORT}"),
            ],
            &[],
        );
        bed.undo.push(Box::new(|| {
            let _ = Command::new("incus")
                .args(["config", "unset", "core.https_address"])
                .status();
        }));
        format!("127.0.0.1:{INCUS_PORT}")
    } else {
        before.clone()
    };
    let url = format!("https://{address}");
    // A client of its own: its remotes and certificate stay in this test's folder.
    let conf = bed.dir("img-incus-conf");
    std::fs::create_dir_all(&conf).unwrap();
    let env = [("INCUS_CONF", conf.as_path())];
    let token = must(
        "incus",
        &["config", "trust", "add", "img-publish-client", "--quiet"],
        &[],
    );
    must(
        "incus",
        &[
            "remote",
            "add",
            "img-pub",
            &url,
            "--accept-certificate",
            "--token",
            token.trim(),
        ],
        &env,
    );
    let cert_fp = || -> Option<String> {
        let list: Vec<serde_json::Value> = serde_json::from_str(&must(
            "incus",
            &["config", "trust", "list", "--format", "json"],
            &[],
        ))
        .unwrap();
        list.iter()
            .find(|c| c["name"] == "img-publish-client")
            .map(|c| c["fingerprint"].as_str().unwrap().to_string())
    };
    bed.undo.push(Box::new(move || {
        if let Some(fp) = cert_fp() {
            let _ = Command::new("incus")
                .args(["config", "trust", "remove", &fp])
                .status();
        }
    }));
    must(
        "incus",
        &[
            "remote",
            "add",
            "img-view",
            &url,
            "--accept-certificate",
            "--public",
        ],
        &env,
    );

    let (_, _, fp) = bed.build("web");
    bed.image("incus", &fp);
    let published = bed
        .inx_env(
            &[
                "image",
                "publish",
                "web",
                "--remote",
                "img-pub",
                "--alias",
                "img-publish-web",
            ],
            &env,
        )
        .ok()
        .stderr_has("--public");
    assert_eq!(published.stdout.trim(), fp);
    assert!(
        published
            .stderr
            .contains(&format!("remote add img-pub {url} --public")),
        "{}",
        published.stderr
    );

    // What a client that only adds the server as public sees.
    let seen = server_images("incus", "img-view:", &env);
    let ours = with_fingerprint(&seen, &fp);
    assert_eq!(
        ours.len(),
        1,
        "the public remote lists the image: {seen:#?}"
    );
    assert_eq!(ours[0]["public"], true);
    assert!(aliases_of(ours[0]).contains(&"img-publish-web".to_string()));
    let c = bed.instance("incus", "img-publish-c");
    must("incus", &["launch", "img-view:img-publish-web", &c], &env);
    assert_boots_from_image("incus", &c, &bed.system("v1"));

    // Publishing again changes nothing.
    bed.inx_env(
        &[
            "image",
            "publish",
            "web",
            "--remote",
            "img-pub",
            "--alias",
            "img-publish-web",
        ],
        &env,
    )
    .ok()
    .stderr_has("nothing to do");

    // Bad remotes: unknown, public-only (this client may not write), and one that refuses.
    bed.inx_env(&["image", "publish", "web", "--remote", "img-nosuch"], &env)
        .code(3)
        .stderr_has("knows no remote named img-nosuch");
    bed.inx_env(&["image", "publish", "web", "--remote", "img-view"], &env)
        .code(3)
        .stderr_has("--public");
    let (_, _, fp2) = bed.build("web2");
    bed.image("incus", &fp2);
    let trusted = must(
        "incus",
        &["config", "trust", "list", "--format", "json"],
        &[],
    );
    let list: Vec<serde_json::Value> = serde_json::from_str(&trusted).unwrap();
    let client = list
        .iter()
        .find(|c| c["name"] == "img-publish-client")
        .unwrap();
    must(
        "incus",
        &[
            "config",
            "trust",
            "remove",
            client["fingerprint"].as_str().unwrap(),
        ],
        &[],
    );
    bed.inx_env(
        &[
            "image",
            "publish",
            "web2",
            "--remote",
            "img-pub",
            "--alias",
            "img-publish-web2",
        ],
        &env,
    )
    .code(7)
    .stderr_has("refused");
    let all = server_images("incus", "", &[]);
    assert!(
        with_fingerprint(&all, &fp2).is_empty(),
        "the refused image is not there"
    );
    assert!(
        !all.iter()
            .any(|i| aliases_of(i).contains(&"img-publish-web2".to_string())),
        "no alias was made"
    );
}

/// `export` writes the files and a text on importing them; importing them by hand with
/// `incus image import` gives the same image, which boots. Missing parent folders are made. A
/// folder that is taken or cannot be written is refused, and nothing is left behind.
#[test]
fn export_and_import_by_hand() {
    let _host = host!("export_and_import_by_hand", false);
    let mut bed = Bed::new("img-export");
    let (_, _, fp) = bed.build("web");
    bed.image("incus", &fp);
    let out = bed.dir("img-export-out");
    let run = bed
        .inx(&["image", "export", "web", out.to_str().unwrap()])
        .ok();
    assert_eq!(run.stdout.trim(), out.display().to_string());
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "IMPORT.txt",
            "SHA256SUMS",
            "metadata.tar.xz",
            "rootfs.squashfs"
        ]
    );
    let text = std::fs::read_to_string(out.join("IMPORT.txt")).unwrap();
    assert!(
        text.contains("incus image import metadata.tar.xz rootfs.squashfs"),
        "{text}"
    );
    assert!(
        text.contains("lxc image import metadata.tar.xz rootfs.squashfs"),
        "{text}"
    );
    assert!(text.contains(&fp), "{text}");
    let sums = Command::new("sha256sum")
        .args(["-c", "SHA256SUMS"])
        .current_dir(&out)
        .output()
        .unwrap();
    assert!(sums.status.success(), "{sums:?}");

    // By hand, in the folder, as IMPORT.txt says.
    let by_hand = Command::new("incus")
        .args([
            "image",
            "import",
            "metadata.tar.xz",
            "rootfs.squashfs",
            "--alias",
            "img-export-web",
        ])
        .current_dir(&out)
        .output()
        .unwrap();
    assert!(by_hand.status.success(), "{by_hand:?}");
    assert!(
        String::from_utf8_lossy(&by_hand.stdout).contains(&fp),
        "{by_hand:?}"
    );
    let images = server_images("incus", "", &[]);
    assert_eq!(
        with_fingerprint(&images, &fp).len(),
        1,
        "imported by hand with the same fingerprint"
    );
    let c = bed.instance("incus", "img-export-c");
    must("incus", &["launch", "img-export-web", &c], &[]);
    assert_boots_from_image("incus", &c, &bed.system("v1"));

    // Into folders that do not exist yet: they are made, as `mkdir -p` does.
    let nested = bed.dir("img-export-new/a/out");
    bed.inx(&["image", "export", "web", nested.to_str().unwrap()])
        .ok();
    assert!(nested.join("rootfs.squashfs").is_file());
    assert!(nested.join("IMPORT.txt").is_file());

    // Taken: a folder with files in it is not written over.
    bed.inx(&["image", "export", "web", out.to_str().unwrap()])
        .code(3)
        .stderr_has("not empty");
    // Cannot be written: a read-only file system (root ignores permissions, not this).
    let ro = bed.dir("img-export-ro");
    std::fs::create_dir_all(&ro).unwrap();
    must(
        "mount",
        &[
            "-t",
            "tmpfs",
            "-o",
            "ro,size=1m",
            "img-export-ro",
            ro.to_str().unwrap(),
        ],
        &[],
    );
    let ro_unmount = ro.clone();
    bed.undo.push(Box::new(move || {
        let _ = Command::new("umount").arg(&ro_unmount).status();
    }));
    bed.inx(&["image", "export", "web", ro.join("out").to_str().unwrap()])
        .code(1)
        .stderr_has("Read-only file system")
        .stderr_has("nothing was written");
    assert_eq!(
        std::fs::read_dir(&ro).unwrap().count(),
        0,
        "nothing half-written"
    );
}

/// A static HTTPS server on 127.0.0.1 (Debian's python3, the test certificate), stopped on drop.
/// Incus and LXD (clients and daemons) cache a simplestreams index per URL for a while, so
/// each look at a tree goes through a URL of its own: a fresh link to the tree in the served
/// folder. Their caches of those URLs are removed on drop.
struct StaticServer {
    child: Child,
    log: PathBuf,
    www: PathBuf,
    urls: std::cell::RefCell<Vec<String>>,
}

const SERVE: &str = r#"
import functools, http.server, ssl, sys
root, port, cert, key = sys.argv[1:5]
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=root)
server = http.server.ThreadingHTTPServer(("127.0.0.1", int(port)), handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
server.socket = ctx.wrap_socket(server.socket, server_side=True)
server.serve_forever()
"#;

impl StaticServer {
    fn start(www: &Path, log: PathBuf) -> Self {
        free_port(STATIC_PORT);
        std::fs::create_dir_all(www).unwrap();
        let root = www;
        let tls = Path::new(TLS_DIR);
        let child = Command::new("/usr/bin/python3")
            .args(["-c", SERVE])
            .arg(root)
            .arg(STATIC_PORT.to_string())
            .arg(tls.join("server.crt"))
            .arg(tls.join("server.key"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start python3");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", STATIC_PORT)).is_err() {
            assert!(Instant::now() < deadline, "the HTTPS server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        StaticServer {
            child,
            log,
            www: www.to_path_buf(),
            urls: Default::default(),
        }
    }

    /// A URL, seen by no client before, that serves `tree`.
    fn url(&self, tree: &Path) -> String {
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let name = format!("img-{}-{nonce}", std::process::id());
        std::os::unix::fs::symlink(tree, self.www.join(&name)).unwrap();
        let url = format!("https://127.0.0.1:{STATIC_PORT}/{name}");
        self.urls.borrow_mut().push(url.clone());
        url
    }

    /// The paths clients fetched.
    fn fetched(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default();
        let caches = [
            PathBuf::from("/var/cache/incus"),
            PathBuf::from("/var/cache/lxd"),
            home.join(".cache/incus"),
            home.join(".cache/lxd"),
        ];
        for url in self.urls.borrow().iter() {
            let key = sha256_hex(url.as_bytes());
            for cache in &caches {
                let _ = std::fs::remove_dir_all(cache.join(&key));
            }
        }
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The versions of the product `key` in a tree's images.json.
fn versions(tree: &Path, key: &str) -> Vec<String> {
    let images = read_json(&tree.join("streams/v1/images.json"));
    images["products"][key]["versions"]
        .as_object()
        .map(|v| v.keys().cloned().collect())
        .unwrap_or_default()
}

/// `simplestreams` writes a tree that an HTTPS server on 127.0.0.1 serves: Incus adds it as
/// a simplestreams remote, lists it and launches from it (downloading the files). A second
/// build is a second version, the first stays; the same build again changes nothing; a second
/// image is a second product.
#[test]
fn simplestreams_tree_served_on_loopback() {
    let _host = host!("simplestreams_tree_served_on_loopback", false);
    let mut bed = Bed::new("img-ss");
    let tree = bed.dir("img-ss-tree");
    let (_, _, fp1) = bed.build("web");
    let (_, _, fp2) = bed.build("web2");
    bed.image("incus", &fp1);
    bed.image("incus", &fp2);
    // Launching must download from the tree, so the server may not have the image already.
    for fp in [&fp1, &fp2] {
        let _ = Command::new("incus")
            .args(["image", "delete", fp])
            .stderr(Stdio::null())
            .status();
    }

    let v1 = bed
        .inx(&[
            "image",
            "simplestreams",
            "web",
            tree.to_str().unwrap(),
            "--alias",
            "img-ss-web",
        ])
        .ok()
        .stdout
        .trim()
        .to_string();
    assert!(
        v1.len() >= 15 && v1[..8].chars().all(|c| c.is_ascii_digit()),
        "version {v1:?} starts with a date"
    );
    let product = "nixos:img-ss-web:x86_64";
    assert_eq!(versions(&tree, product), std::slice::from_ref(&v1));

    let server = StaticServer::start(&bed.dir("img-ss-www"), bed.dir("img-ss-server.log"));
    let conf = bed.dir("img-ss-incus-conf");
    std::fs::create_dir_all(&conf).unwrap();
    let env = [("INCUS_CONF", conf.as_path())];
    must(
        "incus",
        &[
            "remote",
            "add",
            "img-ss",
            &server.url(&tree),
            "--protocol",
            "simplestreams",
        ],
        &env,
    );
    let listed = server_images("incus", "img-ss:", &env);
    assert_eq!(with_fingerprint(&listed, &fp1).len(), 1, "{listed:#?}");
    let c = bed.instance("incus", "img-ss-c");
    must("incus", &["launch", "img-ss:img-ss-web", &c], &env);
    assert_boots_from_image("incus", &c, &bed.system("v1"));
    assert!(
        server.fetched().contains(&format!("{v1}/root.squashfs")),
        "{}",
        server.fetched()
    );

    // The same build again: nothing changes.
    let images_before = std::fs::read(tree.join("streams/v1/images.json")).unwrap();
    bed.inx(&[
        "image",
        "simplestreams",
        "web",
        tree.to_str().unwrap(),
        "--alias",
        "img-ss-web",
    ])
    .ok()
    .stderr_has("nothing to do");
    assert_eq!(
        std::fs::read(tree.join("streams/v1/images.json")).unwrap(),
        images_before
    );

    // A second build under the same alias: a second version; the first stays, files and all.
    let v2 = bed
        .inx(&[
            "image",
            "simplestreams",
            "web2",
            tree.to_str().unwrap(),
            "--alias",
            "img-ss-web",
        ])
        .ok()
        .stdout
        .trim()
        .to_string();
    assert_ne!(v1, v2);
    let mut both = vec![v1.clone(), v2.clone()];
    both.sort();
    let mut have = versions(&tree, product);
    have.sort();
    assert_eq!(have, both);
    assert!(tree
        .join(format!("images/img-ss-web/x86_64/{v1}/root.squashfs"))
        .is_file());
    // A build that is there already is not added again, under any alias.
    bed.inx(&[
        "image",
        "simplestreams",
        "web",
        tree.to_str().unwrap(),
        "--alias",
        "img-ss-other",
    ])
    .ok()
    .stderr_has("nothing to do");
    // A second image is a second product; the first stays.
    let (_, _, fp3) = bed.build("web3");
    bed.inx(&[
        "image",
        "simplestreams",
        "web3",
        tree.to_str().unwrap(),
        "--alias",
        "img-ss-other",
    ])
    .ok();
    let index = read_json(&tree.join("streams/v1/index.json"));
    assert_eq!(
        index["index"]["images"]["products"],
        serde_json::json!([product, "nixos:img-ss-other:x86_64"])
    );
    assert_eq!(versions(&tree, product).len(), 2);

    // A client that has not cached the tree sees all builds, and the alias is the newer one.
    let conf2 = bed.dir("img-ss-incus-conf2");
    std::fs::create_dir_all(&conf2).unwrap();
    let env2 = [("INCUS_CONF", conf2.as_path())];
    must(
        "incus",
        &[
            "remote",
            "add",
            "img-ss",
            &server.url(&tree),
            "--protocol",
            "simplestreams",
        ],
        &env2,
    );
    let listed = server_images("incus", "img-ss:", &env2);
    assert_eq!(with_fingerprint(&listed, &fp1).len(), 1);
    assert_eq!(with_fingerprint(&listed, &fp2).len(), 1);
    assert_eq!(with_fingerprint(&listed, &fp3).len(), 1);
    let alias = must(
        "incus",
        &["image", "alias", "list", "img-ss:", "--format", "json"],
        &env2,
    );
    let alias: Vec<serde_json::Value> = serde_json::from_str(&alias).unwrap();
    let target = alias
        .iter()
        .find(|a| a["name"] == "img-ss-web")
        .expect("alias listed");
    assert_eq!(target["target"], fp2.as_str());

    // The generated JSON, with what differs per run filtered.
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"[0-9a-f]{64}", "[sha256]");
    settings.add_filter(r"\d{8}_\d{6}(_\d+)?", "[version]");
    settings.add_filter(r#""size": \d+"#, r#""size": [size]"#);
    settings.bind(|| {
        insta::assert_json_snapshot!(
            "simplestreams_images_json",
            read_json(&tree.join("streams/v1/images.json"))
        );
        insta::assert_json_snapshot!("simplestreams_index_json", index);
    });
}

/// With `--backend lxd`, inx drives Debian's LXD 5.0 (`lxc`): import, a no-op second import,
/// launch. LXD's client also reads the simplestreams tree (its `lxd.tar.xz` entries) and
/// launches from it.
#[test]
fn lxd_import_launch_and_simplestreams() {
    let _host = host!("lxd_import_launch_and_simplestreams", true);
    let mut bed = Bed::new("img-lxd");
    let (_, _, fp) = bed.build("web");
    bed.image("lxc", &fp);
    let _ = Command::new("lxc")
        .args(["image", "delete", &fp])
        .stderr(Stdio::null())
        .status();

    let first = bed
        .inx(&[
            "image",
            "import",
            "web",
            "--backend",
            "lxd",
            "--alias",
            "img-lxd-web",
        ])
        .ok();
    assert_eq!(first.stdout.trim(), fp);
    let images = server_images("lxc", "", &[]);
    assert_eq!(
        aliases_of(with_fingerprint(&images, &fp)[0]),
        ["img-lxd-web"]
    );
    bed.inx(&[
        "image",
        "import",
        "--backend",
        "lxd",
        "web",
        "--alias",
        "img-lxd-web",
    ])
    .ok()
    .stderr_has("local LXD server already has this image");
    assert_eq!(
        with_fingerprint(&server_images("lxc", "", &[]), &fp).len(),
        1
    );
    let c = bed.instance("lxc", "img-lxd-c");
    must("lxc", &["launch", "img-lxd-web", &c], &[]);
    assert_boots_from_image("lxc", &c, &bed.system("v1"));

    // The simplestreams tree, read by LXD's client.
    must("lxc", &["delete", "--force", &c], &[]);
    must("lxc", &["image", "delete", &fp], &[]);
    let tree = bed.dir("img-lxd-tree");
    bed.inx(&[
        "image",
        "simplestreams",
        "web",
        tree.to_str().unwrap(),
        "--alias",
        "img-lxd-ss",
    ])
    .ok();
    let server = StaticServer::start(&bed.dir("img-lxd-www"), bed.dir("img-lxd-server.log"));
    let conf = bed.dir("img-lxd-conf");
    std::fs::create_dir_all(&conf).unwrap();
    let env = [("LXD_CONF", conf.as_path())];
    must(
        "lxc",
        &[
            "remote",
            "add",
            "img-ss",
            &server.url(&tree),
            "--protocol",
            "simplestreams",
        ],
        &env,
    );
    assert_eq!(
        with_fingerprint(&server_images("lxc", "img-ss:", &env), &fp).len(),
        1
    );
    let c2 = bed.instance("lxc", "img-lxd-ss-c");
    must("lxc", &["launch", "img-ss:img-lxd-ss", &c2], &env);
    assert_boots_from_image("lxc", &c2, &bed.system("v1"));
    assert!(
        server.fetched().contains("root.squashfs"),
        "{}",
        server.fetched()
    );
}

/// Bad input gets a clear error and its exit code, and changes nothing.
#[test]
fn bad_input_changes_nothing() {
    let _host = host!("bad_input_changes_nothing", false);
    let bed = Bed::new("img-bad");
    let before = server_images("incus", "", &[]).len();
    // A container without image outputs: exit 11, for every command.
    let tree = bed.dir("img-bad-tree");
    for args in [
        vec!["image", "build", "plain"],
        vec!["image", "import", "plain"],
        vec!["image", "build", "web", "--vm"],
        vec!["image", "export", "plain", tree.to_str().unwrap()],
        vec!["image", "simplestreams", "plain", tree.to_str().unwrap()],
    ] {
        bed.inx(&args).code(11).stderr_has("has no");
    }
    assert!(!tree.exists());
    // Not declared, a bad alias, a missing remote: exit 3.
    bed.inx(&["image", "build", "nosuch"])
        .code(3)
        .stderr_has("not declared");
    bed.inx(&["image", "import", "web", "--alias", "../x"])
        .code(3)
        .stderr_has("invalid image alias");
    bed.inx(&["image", "import", "web", "img-nosuch:"])
        .code(3)
        .stderr_has("no remote named img-nosuch");
    // A folder that is not a tree of ours is left alone.
    std::fs::create_dir_all(tree.join("streams/v1")).unwrap();
    std::fs::write(tree.join("streams/v1/images.json"), "[]").unwrap();
    bed.inx(&["image", "simplestreams", "web", tree.to_str().unwrap()])
        .code(3)
        .stderr_has("not a simplestreams products file");
    assert_eq!(
        std::fs::read_to_string(tree.join("streams/v1/images.json")).unwrap(),
        "[]"
    );
    assert_eq!(std::fs::read_dir(&tree).unwrap().count(), 1);
    // A simplestreams tree that cannot be written: nothing half-written.
    let ro = bed.dir("img-bad-ro");
    std::fs::create_dir_all(&ro).unwrap();
    must(
        "mount",
        &[
            "-t",
            "tmpfs",
            "-o",
            "ro,size=1m",
            "img-bad-ro",
            ro.to_str().unwrap(),
        ],
        &[],
    );
    let guard = UnmountOnDrop(ro.clone());
    bed.inx(&[
        "image",
        "simplestreams",
        "web",
        ro.join("tree").to_str().unwrap(),
    ])
    .code(1)
    .stderr_has("nothing was written");
    assert_eq!(std::fs::read_dir(&ro).unwrap().count(), 0);
    drop(guard);
    assert_eq!(
        server_images("incus", "", &[]).len(),
        before,
        "no image was added"
    );
}

struct UnmountOnDrop(PathBuf);

impl Drop for UnmountOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// `inx up` makes a container from its image when the flake says `fromImage = true` or with
/// `--from-image`: imported once, created from it, booted without the shared store, and no
/// host profile. A second `up` changes nothing; `destroy` removes it.
#[test]
fn up_from_image() {
    let _host = host!("up_from_image", false);
    let mut bed = Bed::new("img-up");
    let decl = bed.instance("incus", "img-up-decl");
    let flag = bed.instance("incus", "img-up-flag");
    let (_, _, fp1) = bed.build("img-up-decl");
    let (_, _, fp2) = bed.build("img-up-flag");
    bed.image("incus", &fp1);
    bed.image("incus", &fp2);
    for fp in [&fp1, &fp2] {
        let _ = Command::new("incus")
            .args(["image", "delete", fp])
            .stderr(Stdio::null())
            .status();
    }
    for name in [&decl, &flag] {
        let _ = std::fs::remove_dir_all(Path::new(harness::PROFILES).join(name));
    }

    let dry = bed.inx(&["--dry-run", "up", &decl]).ok();
    assert!(
        dry.stdout.contains("incus --project default create"),
        "{}",
        dry.stdout
    );
    assert_eq!(
        harness::status(&decl),
        "absent",
        "a dry run changes nothing"
    );

    bed.inx(&["up", &decl])
        .ok()
        .stderr_has("create the instance from its image");
    bed.inx(&["up", "--from-image", &flag]).ok();
    for (name, fp, system) in [
        (&decl, &fp1, bed.system("v1")),
        (&flag, &fp2, bed.system("v2")),
    ] {
        assert_eq!(
            harness::config(name, "user.inx.image").as_deref(),
            Some(fp.as_str())
        );
        assert!(
            !Path::new(harness::PROFILES).join(name).exists(),
            "no host profile for {name}"
        );
        assert_boots_from_image("incus", name, &system);
    }

    let again = bed.inx(&["-v", "up", &decl]).ok().stderr_has("up to date");
    assert!(
        !again
            .traced()
            .iter()
            .any(|c| c.contains("create") || c.contains("import")),
        "{:?}",
        again.traced()
    );
    // Without --from-image, the container made from its image is not turned into another.
    bed.inx(&["up", &flag])
        .code(3)
        .stderr_has("made from its image");

    let list = bed.inx(&["--json", "list"]).ok().json();
    assert_eq!(harness::row(&list, &decl)["state"], "running");
    bed.inx(&["destroy", "--force", &decl, &flag]).ok();
    assert_eq!(harness::status(&decl), "absent");
    assert_eq!(harness::status(&flag), "absent");
}
