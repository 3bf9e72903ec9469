//! The bed the image tests stand on: taking the host (`host!`, which also checks the tools,
//! the test certificate and, where asked, LXD), a `Bed` (a fixture with the image flake that
//! removes the instances, images and settings its test made), `must` for client commands that
//! have to succeed, what a server lists (`server_images`, `with_fingerprint`, `aliases_of`),
//! `assert_boots_from_image`, and `StaticServer`, the HTTPS server on 127.0.0.1 that serves
//! simplestreams trees.

use super::harness::{self, host, Fixture, Run};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Ports on 127.0.0.1 for the Incus server and the static HTTPS server.
pub const INCUS_PORT: u16 = 39443;
const STATIC_PORT: u16 = 39445;
const TLS_DIR: &str = "/var/lib/inx-test/tls";

/// Takes the host, or says why not, as `harness::host` does, also for what only these tests
/// need. `lxd`: the test drives LXD too.
pub fn image_host(test: &str, lxd: bool) -> Option<std::sync::MutexGuard<'static, ()>> {
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
pub fn must(program: &str, args: &[&str], env: &[(&str, &Path)]) -> String {
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
pub struct Bed {
    fx: Fixture,
    instances: Vec<(&'static str, String)>,
    images: Vec<(&'static str, String)>,
    pub undo: Vec<Box<dyn FnOnce()>>,
}

impl Bed {
    pub fn new(prefix: &str) -> Self {
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

    pub fn inx(&self, args: &[&str]) -> Run {
        self.fx.inx(args)
    }

    pub fn inx_env(&self, args: &[&str], env: &[(&str, &Path)]) -> Run {
        self.fx.inx_with(args, |cmd| {
            for (k, v) in env {
                cmd.env(k, v);
            }
        })
    }

    /// A folder of this test, inside its temporary directory.
    pub fn dir(&self, name: &str) -> PathBuf {
        self.fx.path().join(name)
    }

    /// The store path of a synthetic system of this flake (`v1`, `v2`).
    pub fn system(&self, which: &str) -> String {
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
    pub fn build(&self, name: &str) -> (PathBuf, PathBuf, String) {
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
    pub fn instance(&mut self, program: &'static str, name: &str) -> String {
        let _ = Command::new(program)
            .args(["delete", "--force", name])
            .stderr(Stdio::null())
            .status();
        self.instances.push((program, name.to_string()));
        name.to_string()
    }

    /// An image this test put on a server, removed at the end.
    pub fn image(&mut self, program: &'static str, fingerprint: &str) {
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
pub fn server_images(program: &str, remote: &str, env: &[(&str, &Path)]) -> Vec<serde_json::Value> {
    let mut args = vec!["image", "list"];
    if !remote.is_empty() {
        args.push(remote);
    }
    args.extend(["--format", "json"]);
    serde_json::from_str(&must(program, &args, env)).unwrap()
}

pub fn with_fingerprint<'a>(
    images: &'a [serde_json::Value],
    fp: &str,
) -> Vec<&'a serde_json::Value> {
    images.iter().filter(|i| i["fingerprint"] == fp).collect()
}

pub fn aliases_of(image: &serde_json::Value) -> Vec<String> {
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
pub fn assert_boots_from_image(program: &str, name: &str, system: &str) {
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

/// A port nothing listens on yet, or a loud failure.
pub fn free_port(port: u16) {
    assert!(
        TcpListener::bind(("127.0.0.1", port)).is_ok(),
        "127.0.0.1:{port} is taken; the image tests need it"
    );
}

/// A static HTTPS server on 127.0.0.1 (Debian's python3, the test certificate), stopped on drop.
/// Incus and LXD (clients and daemons) cache a simplestreams index per URL for a while, so
/// each look at a tree goes through a URL of its own: a fresh link to the tree in the served
/// folder. Their caches of those URLs are removed on drop.
pub struct StaticServer {
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
    pub fn start(www: &Path, log: PathBuf) -> Self {
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
    pub fn url(&self, tree: &Path) -> String {
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
    pub fn fetched(&self) -> String {
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
