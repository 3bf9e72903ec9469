# `nix flake check`: mkContainer on the toplevel path gives the manifest the CLI expects.
{ pkgs, inx }:

let
  system = pkgs.writeTextDir "init" "";
  c = inx.lib.mkContainer {
    toplevel = system;
    incus.config."limits.cpu" = 2;
  };
  m = c.inxManifest;
  ok = m.schemaVersion == inx.lib.schemaVersion
    && m.toplevel == "${system}"
    && m.drvPath == system.drvPath
    && m.incus.config."limits.cpu" == 2
    # Unprivileged containers get nesting unless they say otherwise.
    && m.incus.config."security.nesting" == true
    # No image outputs unless given, and the manifest stays as before.
    && c.images == null
    && !(m ? fromImage);
in
assert ok; pkgs.runCommand "inx-lib-toplevel-check" { } "touch $out"
