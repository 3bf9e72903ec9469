# Image outputs of a container, for hosts that do not share the builder's /nix/store. Nothing
# here is forced unless asked for: `inx image ...` evaluates only `images.<kind>` of one
# container, and `inx up` never looks at it.
#
# The contract (read by src/images.rs):
#   images.container = { metadata; squashfs; tarball ? }   derivations or store paths
#   images.vm        = { metadata; qcow2; }                 (optional)
#   images.properties = { os; release; variant; architecture; description; }
# Each file is found by glob inside its output (or is the output), since nixpkgs renamed them
# across releases.
{ imageModule }:

let
  kinds = {
    container = [ "metadata" "squashfs" ];
    vm = [ "metadata" "qcow2" ];
  };

  # nixpkgs' metadata.yaml uses the first part of the Nix system as the architecture
  # (x86_64-linux -> x86_64); Incus and LXD know those names.
  architectureOf = system: builtins.head (builtins.match "([a-z0-9_]+)-.*" system);

  check = images:
    let
      known = builtins.attrNames kinds ++ [ "properties" ];
      unknown = builtins.filter (n: !(builtins.elem n known)) (builtins.attrNames images);
      incomplete = builtins.filter
        (k: images ? ${k} && builtins.any (f: !(images.${k} ? ${f})) kinds.${k})
        (builtins.attrNames kinds);
    in
    if unknown != [ ] then
      throw "inx.lib.mkContainer: unknown attribute(s) in images: ${builtins.concatStringsSep ", " unknown} (known: ${builtins.concatStringsSep ", " known})"
    else if incomplete != [ ] then
      throw "inx.lib.mkContainer: images.${builtins.head incomplete} needs ${builtins.concatStringsSep " and " kinds.${builtins.head incomplete}}"
    else images;
in
{
  inherit kinds;

  # `images` as a user gives them on the `toplevel` path (the tests give synthetic ones).
  fromToplevel = { toplevel, images }:
    let
      system = toplevel.system or "x86_64-linux";
      given = check images;
    in
    given // {
      properties = {
        os = "nixos";
        release = "custom";
        variant = "default";
        architecture = architectureOf system;
        description = "NixOS ${system}";
      } // (given.properties or { });
    };

  # From nixpkgs' own image modules, in evaluations of their own: the container image needs
  # lxc-container.nix (which expects /sbin/init in an image) and not inx's shared-store guest
  # module, and the VM needs incus-virtual-machine.nix; both get inx's image module
  # (modules/image.nix). Both are only evaluated when a file of theirs is asked for.
  fromNixpkgs = { nixpkgs, system, modules, specialArgs }:
    let
      evalWith = extra: nixpkgs.lib.nixosSystem {
        inherit specialArgs;
        modules = extra ++ [ imageModule { nixpkgs.hostPlatform = nixpkgs.lib.mkDefault system; } ] ++ modules;
      };
      ctNixos = evalWith [
        "${nixpkgs}/nixos/modules/virtualisation/lxc-container.nix"
        # NixOS's "nixos" would name every container made from the image "nixos"; empty leaves
        # the instance name Incus gives it.
        { networking.hostName = nixpkgs.lib.mkOverride 1200 ""; }
      ];
      vmNixos = evalWith [ "${nixpkgs}/nixos/modules/virtualisation/incus-virtual-machine.nix" ];
      ct = ctNixos.config;
      vm = vmNixos.config;
      nixos = ct.system.nixos;
    in
    {
      # `nixos`: each image's own NixOS evaluation, to inspect (`.config`); inx reads only the files.
      container = {
        inherit (ct.system.build) metadata squashfs tarball;
        nixos = ctNixos;
      };
      vm = {
        inherit (vm.system.build) metadata;
        qcow2 = vm.system.build.qemuImage;
        nixos = vmNixos;
      };
      properties = {
        os = nixos.distroId;
        release = nixos.release;
        variant = "default";
        architecture = architectureOf system;
        description = "${nixos.distroName} ${nixos.codeName} ${nixos.label} ${system}";
      };
    };
}
