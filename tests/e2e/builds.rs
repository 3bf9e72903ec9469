//! Builds made inside containers, the way a user makes them: a real Nix client in the
//! container talks to the host daemon over the bound socket. The client is the `nix` binary
//! behind the `nix` on PATH and the libraries it links, added to the store as one folder.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// Held by a root of the tests' own (not inx's), so the host GC in tests keeps the client.
const CLIENT_ROOT: &str = "/nix/var/nix/gcroots/inx-e2e-nix-client";

/// The store path of the client folder: `bin/nix` and `lib/` (with the dynamic loader).
pub fn nix_client() -> &'static str {
    static CLIENT: OnceLock<String> = OnceLock::new();
    CLIENT.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("inx-e2e-nix-client");
        std::fs::create_dir_all(folder.join("bin")).unwrap();
        std::fs::create_dir_all(folder.join("lib")).unwrap();
        let (nix, mut list) = real_nix();
        std::fs::copy(&nix, folder.join("bin/nix")).unwrap();
        let ldd = run(&mut list);
        for line in ldd.lines() {
            // "libx.so.1 => /lib/x86_64-linux-gnu/libx.so.1 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
            let path = line
                .split("=>")
                .last()
                .and_then(|rest| rest.split_whitespace().next())
                .filter(|p| p.starts_with('/'));
            if let Some(path) = path {
                let name = Path::new(path).file_name().unwrap();
                std::fs::copy(path, folder.join("lib").join(name)).unwrap();
            }
        }
        assert!(
            folder.join("lib/ld-linux-x86-64.so.2").exists(),
            "ldd named no ld-linux-x86-64.so.2:\n{ldd}"
        );
        let path = run(Command::new("nix-store").arg("--add").arg(&folder));
        let path = path.trim().to_string();
        let _ = std::fs::remove_file(CLIENT_ROOT);
        std::os::unix::fs::symlink(&path, CLIENT_ROOT).unwrap();
        path
    })
}

/// The binary behind the `nix` on PATH, and a command that lists its libraries as `ldd` does.
/// Debian 12's `nix` is that binary. Nix 2.26 from provisioning is a wrapper script in
/// `D/bin` that runs `D/root/usr/bin/nix` through `D/root`'s own loader (Debian 12's glibc is
/// too old for it): its libraries, loader included, are the ones that loader finds there.
fn real_nix() -> (PathBuf, Command) {
    let nix = std::fs::canonicalize(which::which("nix").unwrap()).unwrap();
    let root = nix.parent().and_then(Path::parent).map(|d| d.join("root"));
    match root.filter(|r| r.join("usr/bin/nix").is_file()) {
        Some(r) => {
            let mut list = Command::new(r.join("usr/lib64/ld-linux-x86-64.so.2"));
            list.arg("--library-path")
                .arg(format!(
                    "{0}/usr/lib/x86_64-linux-gnu:{0}/lib/x86_64-linux-gnu",
                    r.display()
                ))
                .arg("--list")
                .arg(r.join("usr/bin/nix"));
            (r.join("usr/bin/nix"), list)
        }
        None => {
            let mut list = Command::new("ldd");
            list.arg(&nix);
            (nix, list)
        }
    }
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `nix-build` inside `container`, writing the `result` link at `link` (a path inside the
/// container). The derivation writes `tag` to its output, so each tag is its own store path.
/// Returns the store path, read back through the container's link.
pub fn build_in(container: &str, link: &str, tag: &str) -> String {
    let out = nix_build(container, link, tag);
    assert!(
        out.status.success(),
        "nix-build in {container} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = crate::harness::sh_out(container, &format!("readlink {link}"));
    assert!(path.starts_with("/nix/store/"), "{link} -> {path}");
    path
}

pub fn nix_build(container: &str, link: &str, tag: &str) -> Output {
    let client = nix_client();
    // The builder runs on the host (the daemon builds), so it must be a store path: the
    // container's system has a shell.
    let system = crate::harness::sh_out(container, "readlink -f /nix/var/nix/profiles/system");
    crate::harness::sh_out(
        container,
        &format!(
            "mkdir -p /root/src && cat > /root/src/{tag}.nix <<'EOF'\n{}\nEOF",
            derivation(&system, tag)
        ),
    );
    Command::new("incus")
        .arg("exec")
        .arg(container)
        .args(nix_build_exec(client, tag, link))
        .output()
        .expect("incus exec")
}

/// The derivation a build tagged `tag` makes: `tag` written to its output by the shell of the
/// container's `system` (a store path, as the builder runs on the host).
pub fn derivation(system: &str, tag: &str) -> String {
    format!(
        "derivation {{ name = \"inx-e2e-built-{tag}\"; system = \"x86_64-linux\"; \
         builder = \"{system}/sw/bin/sh\"; args = [ \"-c\" \"echo {tag} > $out\" ]; }}"
    )
}

/// What follows `incus exec INSTANCE` to run the Nix client `client` as `nix-build` of
/// /root/src/TAG.nix through the bound daemon socket, the result link at `link`.
pub fn nix_build_exec(client: &str, tag: &str, link: &str) -> Vec<String> {
    [
        "--env",
        "NIX_REMOTE=daemon",
        "--env",
        "HOME=/root",
        "--cwd",
        "/root",
        "--",
    ]
    .map(String::from)
    .into_iter()
    .chain([
        format!("{client}/lib/ld-linux-x86-64.so.2"),
        "--library-path".into(),
        format!("{client}/lib"),
        "--argv0".into(),
        "nix-build".into(),
        format!("{client}/bin/nix"),
        format!("/root/src/{tag}.nix"),
        "-o".into(),
        link.into(),
    ])
    .collect()
}

/// Whether the host still has `path`.
pub fn on_host(path: &str) -> bool {
    Path::new(path).symlink_metadata().is_ok()
}

/// The host's collector, aimed at one path: `nix-store --delete` finds roots exactly as a
/// full collection does (deleting stale auto links on the way) and deletes the path only if
/// nothing keeps it. Aimed, so it never takes what other tests on this host still use.
/// Returns whether the path survived.
pub fn host_gc(path: &str) -> bool {
    let _ = Command::new("nix-store")
        .args(["--delete", path])
        .output()
        .expect("nix-store --delete");
    on_host(path)
}
