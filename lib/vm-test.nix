# `checks.x86_64-linux.vm`: the user's path in NixOS VMs with `nixosModules.host`: a host whose
# Incus was set up before is left alone, a fresh one is initialised, and there a real NixOS
# container goes through up, a switch in place, rollback, a snapshot, a build inside kept by
# `inx gc`, the snapshot restored after it, and a member of incus-admin without sudo; the host
# has the kernel limits Incus documents for many containers. Needs KVM
# and nixpkgs; it was never run on inx's own CI machines, which have neither (docs/verified.md): there it is only evaluated, against the nixpkgs stand-in.
#
# The containers' systems are built outside the VM and copied into its store
# (`virtualisation.additionalPaths`), so the test needs no network. The VM's usual store is the
# host's over 9p/virtiofs with an overlay on top, and a store image (`useNixStoreImage`) is
# erofs with an overlay on top: neither can be idmapped (nixpkgs PR #454484 works around the
# same for nspawn containers), and the daemon needs a writable store for the build inside. So
# the VM boots from a disk image (`useBootLoader`), whose ext4 root holds the store.
{
  pkgs,
  nixpkgs,
  inx,
}:

let
  inherit (pkgs) lib;
  system = pkgs.stdenv.hostPlatform.system;
  # Two generations of one container: the second adds a file, so a switch and a rollback show.
  containerAt =
    version:
    (inx.lib.mkContainer {
      inherit nixpkgs system;
      modules = [
        {
          environment.etc."inx-test-version".text = toString version;
          system.stateVersion = "25.11";
        }
      ];
    }).toplevel;
  v1 = containerAt 1;
  v2 = containerAt 2;

  # The user's flake inside the VM: the toplevel path with inx from the store and an empty
  # nixpkgs, so nothing is fetched.
  empty = pkgs.writeTextDir "flake.nix" "{ outputs = _: { }; }";
  flakeAt = toplevel: pkgs.writeTextDir "flake.nix" ''
    {
      inputs.inx.url = "path:${inx}";
      inputs.nixpkgs.url = "path:${empty}";
      inputs.inx.inputs.nixpkgs.follows = "nixpkgs";
      outputs = { inx, ... }: {
        inxContainers.web = inx.lib.mkContainer { toplevel = "${builtins.unsafeDiscardStringContext (toString toplevel)}"; };
      };
    }
  '';
  # The test VMs boot from a disk image (see above) that make-disk-image.nix sizes to its
  # contents ("auto", no added space): `diskSize` only sizes the qcow2 file around it. Growing
  # the partition and the ext4 root at boot makes the room for Incus's `dir` pool (under
  # /var/lib/incus) and the build inside.
  vm = {
    memorySize = 2048;
    diskSize = 8192;
    cores = 2;
    useBootLoader = true;
    fileSystems."/".autoResize = true;
  };
  nixSettings = {
    experimental-features = [
      "nix-command"
      "flakes"
    ];
    # nix.nix appends the public cache with mkAfter; the test VM has no network.
    substituters = lib.mkForce [ ];
  };
in
pkgs.testers.runNixOSTest {
  name = "inx";

  # A fresh host: inx initialises its Incus.
  nodes.host = {
    imports = [ inx.nixosModules.host ];
    services.inx.enable = true;
    boot.growPartition = true;
    virtualisation = vm // {
      additionalPaths = [
        v1
        v2
        (flakeAt v1)
        (flakeAt v2)
        empty
      ];
    };
    nix.settings = nixSettings;
    # A member of incus-admin runs inx without sudo (README, "Run it": without sudo).
    users.users.alice = {
      isNormalUser = true;
      extraGroups = [ "incus-admin" ];
    };
  };

  # A host whose Incus was set up before inx came: a pool of its own and a default profile
  # without a NIC (here from its own preseed, applied first). inx must touch none of it.
  nodes.existing = {
    imports = [ inx.nixosModules.host ];
    services.inx.enable = true;
    services.inx.bridge = null;
    boot.growPartition = true;
    nix.settings = nixSettings;
    virtualisation = vm // {
      incus.preseed = {
      storage_pools = [
        {
          name = "tank";
          driver = "dir";
        }
      ];
      profiles = [
        {
          name = "default";
          devices.root = {
            type = "disk";
            path = "/";
            pool = "tank";
          };
        }
      ];
      };
    };
  };

  testScript = ''
    import json
    import re

    def state(machine):
        """What inx's initialisation could change: the pools (less `used_by`, which grows with
        every instance), the managed networks and the default profile."""
        pools = json.loads(machine.succeed("incus query '/1.0/storage-pools?recursion=1'"))
        networks = json.loads(machine.succeed("incus query '/1.0/networks?recursion=1'"))
        return [
            [{k: v for k, v in p.items() if k != "used_by"} for p in pools],
            [{k: v for k, v in n.items() if k != "used_by"} for n in networks if n["managed"]],
            machine.succeed("incus profile show default"),
        ]

    def system_running(name):
        """Waits until the container's systemd has booted; a degraded system fails the test
        with its failed units instead of a timeout."""
        host.wait_until_succeeds(f"inx exec {name} -- true", timeout=120)
        _, status = host.execute(f"inx exec {name} -- systemctl is-system-running --wait", timeout=300)
        if status.strip() != "running":
            _, failed = host.execute(f"inx exec {name} -- systemctl --failed --no-pager")
            raise Exception(f"{name}'s system is {status.strip()!r}; failed units:\n{failed}")

    start_all()

    with subtest("a set-up Incus is left as it is, at boot and at a later start"):
        existing.wait_for_unit("inx-incus-init.service")
        existing.succeed("journalctl -u inx-incus-init | grep -q 'nothing changed'")
        before = state(existing)
        assert before[1] == [] and "eth0" not in before[2], before
        existing.succeed("systemctl restart incus.service")
        existing.wait_for_unit("inx-incus-init.service")
        assert state(existing) == before, "a restart of incusd changed the set-up Incus"

    with subtest("a fresh Incus is initialised once"):
        host.wait_for_unit("inx-incus-init.service")
        host.succeed("incus storage show default | grep -qx 'driver: dir'")
        host.succeed("incus network show incusbr0 | grep -q '10.0.100.1/24'")
        host.succeed("incus profile device show default | grep -q 'network: incusbr0'")
        host.succeed("incus profile set default user.inx-test kept")
        before = state(host)
        host.succeed("systemctl restart incus.service")
        host.wait_for_unit("inx-incus-init.service")
        assert state(host) == before, "the second start changed what the first made"
        host.wait_for_unit("inx-roots.service")

    with subtest("the kernel and incusd have the limits Incus documents for many containers"):
        wanted = {}
        for line in open("${./modules/incus-sysctl.conf}"):
            if "=" in line and not line.startswith("#"):
                key, value = (part.strip() for part in line.split("="))
                wanted[key] = int(value)
        have = {key: int(host.succeed(f"sysctl -n {key}")) for key in wanted}
        low = {key: have[key] for key in wanted if have[key] < wanted[key]}
        assert len(wanted) == 10 and not low, f"below Incus's values: {low}"
        limits = host.succeed("cat /proc/$(pidof incusd)/limits")
        assert re.search(r"Max open files\s+1048576\s+1048576", limits), limits

    host.succeed("mkdir -p /root/flake && cp ${flakeAt v1}/flake.nix /root/flake/")
    host.succeed("cd /root/flake && inx up")

    with subtest("the container boots NixOS from the host's store"):
        system_running("web")
        host.succeed("inx exec web -- cat /etc/inx-test-version | grep -qx 1")

    with subtest("it has an address on the bridge and resolves names"):
        host.wait_until_succeeds("inx exec web -- ip -4 addr show eth0 | grep -q 'inet 10.0.100.'")
        host.succeed("inx exec web -- getent hosts web.incus")

    with subtest("an update switches in place and rollback goes back"):
        pid = host.succeed("incus info web | grep PID").strip()
        host.succeed("cp ${flakeAt v2}/flake.nix /root/flake/ && cd /root/flake && inx up")
        host.succeed("inx exec web -- cat /etc/inx-test-version | grep -qx 2")
        host.succeed("cd /root/flake && inx snapshot web at-2")
        host.succeed("cd /root/flake && inx rollback web")
        host.succeed("inx exec web -- cat /etc/inx-test-version | grep -qx 1")
        assert pid == host.succeed("incus info web | grep PID").strip(), "the container restarted"
        gens = json.loads(host.succeed("cd /root/flake && inx --json generations web"))
        current = [g["number"] for g in gens["generations"] if g["current"]]
        assert current == [1], f"generation 1 is current after the rollback: {gens}"

    with subtest("a member of incus-admin runs inx without sudo"):
        host.succeed("install -d -o alice /home/alice/flake && install -o alice ${flakeAt v1}/flake.nix /home/alice/flake/")
        host.succeed("su - alice -c 'cd flake && inx --json list' | grep -q '\"web\"'")
        host.succeed("su - alice -c 'inx exec web -- cat /etc/inx-test-version' | grep -qx 1")

    # The collection takes every store path nothing roots, the flakes among them.
    with subtest("a build inside survives inx gc"):
        host.succeed(
            "inx exec web -- nix-build -o /root/result -E "
            "'derivation { name = \"inside\"; system = \"${system}\"; builder = \"/bin/sh\"; "
            "args = [ \"-c\" \"echo kept > $out\" ]; }'"
        )
        built = host.succeed("inx exec web -- readlink /root/result").strip()
        host.succeed("inx gc")
        host.succeed(f"test -e {built}")
        host.succeed("inx exec web -- cat /root/result | grep -qx kept")

    with subtest("a snapshot taken before the GC is restored after it, with its system"):
        host.succeed("cd /root/flake && inx restore web at-2")
        system_running("web")
        host.succeed("inx exec web -- cat /etc/inx-test-version | grep -qx 2")
  '';
}
