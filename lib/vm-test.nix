# `checks.x86_64-linux.vm`: a NixOS VM with `nixosModules.host` (and its default preseed) runs a
# real NixOS container with inx. Needs KVM; it was never run on inx's own CI machines, which
# have no nixpkgs (README, "What is verified where").
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
in
pkgs.testers.runNixOSTest {
  name = "inx";

  nodes.host = {
    imports = [ inx.nixosModules.host ];
    services.inx.enable = true;

    virtualisation = {
      memorySize = 2048;
      diskSize = 8192;
      cores = 2;
      useBootLoader = true;
      additionalPaths = [
        v1
        v2
        (flakeAt v1)
        (flakeAt v2)
        empty
      ];
    };
    nix.settings = {
      experimental-features = [
        "nix-command"
        "flakes"
      ];
      # nix.nix appends the public cache with mkAfter; the test VM has no network.
      substituters = lib.mkForce [ ];
    };
  };

  testScript = ''
    import json

    host.wait_for_unit("incus-preseed.service")
    host.wait_for_unit("inx-roots.service")

    host.succeed("mkdir -p /root/flake && cp ${flakeAt v1}/flake.nix /root/flake/")
    host.succeed("cd /root/flake && inx up")

    with subtest("the container boots NixOS from the host's store"):
        host.wait_until_succeeds(
            "inx exec web -- systemctl is-system-running | grep -qx running", timeout=300
        )
        host.succeed("inx exec web -- cat /etc/inx-test-version | grep -qx 1")

    with subtest("it has an address on the bridge and resolves names"):
        host.wait_until_succeeds("inx exec web -- ip -4 addr show eth0 | grep -q 'inet 10.0.100.'")
        host.succeed("inx exec web -- getent hosts web.incus")

    with subtest("an update switches in place and rollback goes back"):
        pid = host.succeed("incus info web | grep PID").strip()
        host.succeed("cp ${flakeAt v2}/flake.nix /root/flake/ && cd /root/flake && inx up")
        host.succeed("inx exec web -- cat /etc/inx-test-version | grep -qx 2")
        host.succeed("cd /root/flake && inx rollback web")
        host.succeed("inx exec web -- cat /etc/inx-test-version | grep -qx 1")
        assert pid == host.succeed("incus info web | grep PID").strip(), "the container restarted"
        gens = json.loads(host.succeed("cd /root/flake && inx --json generations web"))
        current = [g["number"] for g in gens["generations"] if g["current"]]
        assert current == [1], f"generation 1 is current after the rollback: {gens}"
    # Last: the collection takes every store path nothing roots, v2 and the flakes among them.
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
  '';
}
