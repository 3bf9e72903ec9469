# A nixpkgs stand-in for offline tests (tests/flake.rs): a flake shaped like nixpkgs' own, made
# of the REAL nixpkgs lib plus stub packages (pkgs.nix) and a stub NixOS (nixos/).
#
# It is:  the real `lib` (unpacked beside this file as ./lib by the test harness, from the
#         vendored nixpkgs.lib tarball), extended as nixpkgs' flake extends it (version info,
#         `nixosSystem`); `legacyPackages.<system>` for every system of lib.systems.flakeExposed,
#         whose packages are real derivations with the attributes inx reads; an `outPath` that
#         is this folder, so "${nixpkgs}/nixos/modules/..." finds the stub modules. Like
#         nixpkgs, its packages and NixOS need Nix 2.18 or later; its lib does not.
# It is not: anything that builds. No package here can be built (their builder fails), only
#         instantiated: `nix flake check --no-build` and `nix eval` of drvPaths work, `nix build`
#         does not. NixOS is a module evaluation over typed option stubs (nixos/eval.nix), not
#         NixOS. `lib.nixos` (nixpkgs' nixos/lib) is absent: nothing inx uses needs it.
{
  description = "nixpkgs stand-in for inx's offline tests: the real lib, stub packages";

  outputs =
    { self }:
    let
      # As nixpkgs' flake does: lib.trivial.version* from this flake's own metadata.
      versionInfo = import ./lib/flake-version-info.nix self;
      missingFeatures = (import ./lib/minfeatures.nix).missing;
      baseLib = (import ./lib).extend versionInfo;

      lib = baseLib.extend (
        final: _prev: {
          nixosSystem = import ./nixos/eval.nix {
            lib = final;
            pkgsFor = system: self.legacyPackages.${system};
          };
        }
      );
    in
    {
      inherit lib;

      # pkgs.lib is nixpkgs' lib without the flake's additions (as in nixpkgs). Like nixpkgs'
      # default.nix, packages (and so NixOS) refuse a Nix older than lib/minfeatures.nix allows
      # (2.18); the lib alone works on older ones.
      legacyPackages = lib.genAttrs lib.systems.flakeExposed (
        system:
        if missingFeatures != [ ] then
          abort "This version of Nixpkgs requires an implementation of Nix with the following features:\n${
            lib.concatMapStrings (f: "- ${f.description}\n") missingFeatures
          }\nPlease upgrade Nix."
        else
          import ./pkgs.nix {
            lib = baseLib;
            inherit system;
            inherit (lib) nixosSystem;
            path = self.outPath;
          }
      );
    };
}
