//! nixos-container's options on Incus (docs/migration.md): what each becomes, seen inside a real
//! container booted from the shared store. Instances, bridges and folders are this file's own
//! (`e2e-nc-*`) and removed at the end.

use super::harness::*;
use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};

/// A writable bind mount is the host's folder, written by the container's root as the host's
/// root (shift=true: uid 0 on the host); a read-only one refuses writes inside. `autoStart`
/// sets `boot.autostart` (the key only: restarting the shared host's Incus daemon is not a
/// test's to do). `tmpfs` mounts a tmpfs with the options given.
#[test]
fn bind_mounts_write_as_root_or_refuse_writes_auto_start_sets_the_key_and_tmpfs_mounts() {
    let _host = host!("nc_bind_mounts");
    let fx = Fixture::new("nc");
    let box_ = fx.name("binds");
    let data = fx.path().join("data");
    let shared = fx.path().join("shared");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::write(shared.join("hello"), "from the host\n").unwrap();
    fx.declare(&[(
        &box_,
        &format!(
            r#"inx.lib.mkContainer {{
          path = sys "1";
          autoStart = true;
          tmpfs = [ "/scratch:mode=1777" ];
          bindMounts."/data" = {{ hostPath = "{}"; isReadOnly = false; }};
          bindMounts."/shared" = {{ hostPath = "{}"; }};
        }}"#,
            data.display(),
            shared.display()
        ),
    )]);
    fx.up(&[]);
    assert_eq!(status(&box_), "Running");

    sh_out(&box_, "echo written inside > /data/inside");
    let inside = data.join("inside");
    assert_eq!(
        std::fs::read_to_string(&inside).unwrap(),
        "written inside\n"
    );
    let meta = std::fs::metadata(&inside).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid()),
        (0, 0),
        "root inside writes as root on the host"
    );
    assert_eq!(sh_out(&box_, "stat -c %u:%g /data"), "0:0");

    assert_eq!(sh_out(&box_, "cat /shared/hello"), "from the host");
    assert_eq!(sh_out(&box_, "stat -c %u /shared/hello"), "0");
    let write = sh(&box_, "touch /shared/new");
    assert!(
        !write.status.success(),
        "a read-only bind mount took a write"
    );
    assert!(!shared.join("new").exists());

    assert_eq!(config(&box_, "boot.autostart").as_deref(), Some("true"));
    // `tmpfs`: an LXC mount entry, with the options given.
    assert_eq!(
        sh_out(
            &box_,
            "grep ' /scratch ' /proc/mounts | cut -d' ' -f3; stat -c %a /scratch"
        ),
        "tmpfs\n1777"
    );
}

/// `ephemeral`: the root is a tmpfs; a file written inside is gone after a stop and a start,
/// the system boots again (activated once per boot), and the instance's rootfs on the storage
/// pool never holds it. A second `up` finds the wrapper's settings as declared.
#[test]
fn ephemeral_root_is_gone_after_stop_and_start_and_the_system_boots_again() {
    let _host = host!("nc_ephemeral");
    let fx = Fixture::new("nc");
    let eph = fx.name("eph");
    fx.declare(&[(
        &eph,
        r#"inx.lib.mkContainer { path = sys "1"; ephemeral = true; }"#,
    )]);
    fx.up(&[]);
    let (_, system) = profile(&eph).expect("a host profile");
    wait_active(&eph, &system);
    assert_eq!(
        sh_out(&eph, "grep ' / ' /proc/mounts | cut -d' ' -f1,3"),
        "inx-ephemeral tmpfs"
    );
    sh_out(
        &eph,
        "echo state > /root/kept; mkdir -p /var/lib/app; echo x > /var/lib/app/db",
    );
    assert_eq!(sh_out(&eph, "cat /root/kept"), "state");

    fx.inx(&["stop", &eph]).ok();
    assert_eq!(status(&eph), "Stopped");
    // The instance and its volume stay; nothing written inside reached the volume (the
    // test host's pool is the `dir` pool `default`).
    let pool = Command::new("incus")
        .args(["storage", "get", "default", "source"])
        .output()
        .unwrap();
    let pool = String::from_utf8_lossy(&pool.stdout).trim().to_string();
    let rootfs = std::path::Path::new(&pool)
        .join("containers")
        .join(&eph)
        .join("rootfs");
    assert!(rootfs.is_dir(), "{} is missing", rootfs.display());
    assert!(!rootfs.join("root/kept").exists());
    assert!(!rootfs.join("var/lib/app").exists());
    fx.inx(&["start", &eph]).ok();
    assert_eq!(status(&eph), "Running");
    wait_active(&eph, &system);
    assert_eq!(sh_out(&eph, "ls -A /root; ls -A /var/lib"), "inx-test");
    assert_eq!(
        sh_out(&eph, "cat /var/lib/inx-test/activations"),
        "activate 1",
        "a fresh root: this boot's activation only"
    );
    // The wrapper's settings read back as declared: a second `up` changes nothing.
    let before = pid(&eph);
    fx.up(&[]).stderr_has("up to date");
    assert_eq!(pid(&eph), before, "an unchanged up restarted it");
    // The same through `restart`.
    sh_out(&eph, "touch /root/again");
    fx.inx(&["restart", &eph]).ok();
    wait_active(&eph, &system);
    assert_eq!(sh_out(&eph, "ls -A /root"), "");
}

/// A bridge of this test's own: no addresses on the host's side, so Incus runs no DHCP and no
/// NAT on it and nothing leaves it. Removed on drop (after the fixture's instances are).
struct Bridge(&'static str);

impl Bridge {
    fn create(name: &'static str) -> Self {
        let _ = Command::new("incus")
            .args(["network", "delete", name])
            .stderr(Stdio::null())
            .status();
        let out = Command::new("incus")
            .args([
                "network",
                "create",
                name,
                "ipv4.address=none",
                "ipv6.address=none",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "incus network create {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Bridge(name)
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = Command::new("incus")
            .args(["network", "delete", self.0])
            .stdout(Stdio::null())
            .status();
    }
}

/// `privateNetwork` with `hostBridge`, `localAddress` and `hostAddress`: an `eth0` nic on that
/// bridge, with the address and the route to the host set inside as nixos-container's init
/// sets them. Checked with `ip` inside and in `inx list`; no traffic is sent. Then `inx shell
/// --user` (nixos-container's `login`) runs a user's login shell.
#[test]
fn private_address_on_a_bridge_shows_inside_and_in_list_and_shell_logs_in_as_a_user() {
    let _host = host!("nc_private_network");
    let bridge = Bridge::create("e2e-nc-br0");
    let fx = Fixture::new("nc");
    let net = fx.name("net");
    fx.declare(&[(
        &net,
        &format!(
            r#"inx.lib.mkContainer {{
          path = sys "1";
          privateNetwork = true;
          hostBridge = "{}";
          hostAddress = "10.231.77.1";
          localAddress = "10.231.77.2/24";
        }}"#,
            bridge.0
        ),
    )]);
    fx.up(&[]);
    let (_, system) = profile(&net).expect("a host profile");
    wait_active(&net, &system);
    let nic = instance(&net).unwrap()["expanded_devices"]["eth0"].clone();
    assert_eq!(nic["nictype"], "bridged", "{nic}");
    assert_eq!(nic["parent"], bridge.0, "{nic}");
    let addr = sh_out(&net, "ip -4 addr show dev eth0");
    assert!(addr.contains("inet 10.231.77.2/24"), "{addr}");
    let route = sh_out(&net, "ip -4 route show default");
    assert!(
        route.contains("default via 10.231.77.1 dev eth0"),
        "{route}"
    );

    // `inx list` has the address (nixos-container's show-ip).
    let list = fx.inx(&["list"]).ok().stdout;
    let row = list.lines().find(|l| l.starts_with(&net)).unwrap_or("");
    assert!(list.lines().next().unwrap().ends_with("ADDRESS"), "{list}");
    assert!(row.ends_with("10.231.77.2"), "{list}");
    let json = fx.inx(&["--json", "status", &net]).ok().json();
    assert_eq!(
        json["containers"][0]["addresses"],
        serde_json::json!(["10.231.77.2"])
    );

    // `inx shell --user` logs in as that user (nixos-container's login), here with the
    // commands on stdin.
    sh_out(&net, "echo 'alice:x:1000:100::/tmp:/bin/sh' >> /etc/passwd");
    let commands = fx.path().join("commands");
    std::fs::write(&commands, "id -u; echo $HOME\n").unwrap();
    let login = fx
        .inx_with(&["shell", &net, "--user", "alice"], |c| {
            c.stdin(std::fs::File::open(&commands).unwrap());
        })
        .ok();
    assert_eq!(login.stdout.trim(), "1000\n/tmp", "{}", login.stderr);
    fx.inx(&["shell", &net, "--user", "a b"])
        .code(3)
        .stderr_has("is not a user name");
    drop(fx);
}

/// `fromNixosContainers` on a host configuration's `containers` (the shape
/// `nixosConfigurations.<host>` has once evaluated: each container's `path` is its built
/// system; a synthetic one here, with no nixpkgs) makes both containers, options included.
#[test]
fn from_nixos_containers_brings_up_both_containers_of_a_host() {
    let _host = host!("nc_from_nixos_containers");
    let fx = Fixture::new("nc");
    let (a, b) = (fx.name("ha"), fx.name("hb"));
    let srv = fx.path().join("srv");
    std::fs::create_dir_all(&srv).unwrap();
    fx.write_flake_parts(
        "",
        &format!(
            "        inherit (inx.lib.fromNixosContainers self.nixosConfigurations.host) {a} {b};\n"
        ),
        &format!(
            r#"      nixosConfigurations.host = {{
        config.containers = {{
          {a} = {{ path = sys "1"; autoStart = true; }};
          {b} = {{ path = sys "2"; bindMounts."/srv" = {{ hostPath = "{}"; isReadOnly = false; }}; }};
        }};
      }};"#,
            srv.display()
        ),
    );
    fx.up(&[]);
    assert_eq!(
        (status(&a), status(&b)),
        ("Running".into(), "Running".into())
    );
    assert!(profile(&a).unwrap().1.ends_with("-inx-synthetic-system-1"));
    assert!(profile(&b).unwrap().1.ends_with("-inx-synthetic-system-2"));
    assert_eq!(config(&a, "boot.autostart").as_deref(), Some("true"));
    sh_out(&b, "echo from-b > /srv/b");
    assert_eq!(std::fs::read_to_string(srv.join("b")).unwrap(), "from-b\n");
}
