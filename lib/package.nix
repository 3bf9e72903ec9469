# The inx CLI. Its tests that need real Nix and Incus skip themselves in the build sandbox
# (they run from README's test command on a provisioned host).
{ lib, rustPlatform, installShellFiles }:

let
  cargo = lib.importTOML ../Cargo.toml;
in
rustPlatform.buildRustPackage {
  pname = "inx";
  inherit (cargo.package) version;

  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.unions [ ../Cargo.toml ../Cargo.lock ../src ../tests ];
  };
  cargoLock.lockFile = ../Cargo.lock;

  nativeBuildInputs = [ installShellFiles ];

  postInstall = ''
    installShellCompletion --cmd inx \
      --bash <($out/bin/inx completions bash) \
      --zsh <($out/bin/inx completions zsh) \
      --fish <($out/bin/inx completions fish)
  '';

  meta = {
    description = cargo.package.description;
    license = lib.licenses.mit;
    mainProgram = "inx";
    platforms = lib.platforms.linux;
  };
}
