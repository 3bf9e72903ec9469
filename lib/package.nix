# The inx CLI. Its tests that need real Nix and Incus skip themselves in the build sandbox
# (they run from README's test command on a provisioned host).
{
  lib,
  stdenv,
  rustPlatform,
  installShellFiles,
}:

let
  root = ../.;
  cargo = lib.importTOML (root + "/Cargo.toml");

  # What Cargo reads to build and test the crate, taken from Cargo.toml itself: the manifest,
  # the lock, every folder and file Cargo finds targets in by convention, and every target with
  # an explicit `path`. A target Cargo.toml adds later is in the source without an edit here.
  conventional = [
    "src"
    "tests"
    "benches"
    "examples"
    "build.rs"
  ];
  targetTables = lib.concatMap (kind: cargo.${kind} or [ ]) [
    "bin"
    "test"
    "bench"
    "example"
  ];
  explicit = map (t: t.path) (lib.filter (t: t ? path) (targetTables ++ lib.toList (cargo.lib or [ ])));
  buildScript = lib.optional (builtins.isString (cargo.package.build or null)) cargo.package.build;
  # Less the manual's test (tests/docs.rs): it reads README.md, book.toml and docs/, which are
  # the repository's, not the package's; the test command runs it from the checkout.
  source = lib.fileset.difference (lib.fileset.unions (
    [
      (root + "/Cargo.toml")
      (root + "/Cargo.lock")
    ]
    ++ map (p: lib.fileset.maybeMissing (root + "/${p}")) (conventional ++ explicit ++ buildScript)
  )) (lib.fileset.maybeMissing (root + "/tests/docs.rs"));

  # Completions come from the built binary, which only runs where the build runs it.
  canRun = stdenv.buildPlatform.canExecute stdenv.hostPlatform;
in
rustPlatform.buildRustPackage {
  pname = "inx";
  inherit (cargo.package) version;

  src = lib.fileset.toSource {
    inherit root;
    fileset = source;
  };
  cargoLock.lockFile = root + "/Cargo.lock";

  nativeBuildInputs = [ installShellFiles ];

  postInstall = lib.optionalString canRun ''
    installShellCompletion --cmd inx \
      --bash <($out/bin/inx completions bash) \
      --zsh <($out/bin/inx completions zsh) \
      --fish <($out/bin/inx completions fish)
  '';

  meta = {
    inherit (cargo.package) description;
    license = lib.licenses.mit;
    mainProgram = "inx";
    platforms = lib.platforms.linux;
  };
}
