//! What a container is: the manifest the flake declares, the Incus instance made from it, the
//! host profile it boots, that profile's generations, and throw-away runs of it.

pub mod generations;
pub mod instance;
pub mod manifest;
pub mod placement;
pub mod profile;
pub mod runs;
