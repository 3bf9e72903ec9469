//! What a container is: the manifest the flake declares, the Incus instance made from it, the
//! host profile it boots, and that profile's generations.

pub mod generations;
pub mod instance;
pub mod manifest;
pub mod profile;
