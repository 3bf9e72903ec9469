//! Validating newtypes for the strings that end up in paths, argv and Incus keys.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A container name: also an Incus instance name, a host profile directory and the guest's
/// hostname, so it follows the strictest of those rules.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ContainerName(String);

impl ContainerName {
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |why: &str| {
            Error::input(format!("invalid container name {s:?}: {why}")).with_hint(
                "use 1 to 63 lowercase letters, digits and '-', starting with a letter and not ending with '-'",
            )
        };
        if s.is_empty() || s.len() > 63 {
            return Err(bad("it must be 1 to 63 characters long"));
        }
        if !s.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(bad("it must start with a lowercase letter"));
        }
        if s.ends_with('-') {
            return Err(bad("it must not end with '-'"));
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            return Err(bad(&format!("{c:?} is not allowed")));
        }
        Ok(ContainerName(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ContainerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An Incus project name as given with `--project`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectName(String);

impl ProjectName {
    pub fn parse(s: &str) -> Result<Self> {
        let ok = !s.is_empty()
            && s.len() <= 63
            && !s.starts_with(['.', '-'])
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if ok {
            Ok(ProjectName(s.to_string()))
        } else {
            Err(Error::input(format!("invalid Incus project name {s:?}"))
                .with_hint("use letters, digits, '-', '_' and '.', not starting with '.' or '-'"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_default(&self) -> bool {
        self.0 == "default"
    }
}

/// A top-level path in /nix/store (`/nix/store/<hash>-<name>`), as a built system is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StorePath(String);

impl TryFrom<String> for StorePath {
    type Error = String;
    fn try_from(s: String) -> std::result::Result<Self, String> {
        StorePath::parse(&s).map_err(|e| e.message)
    }
}

impl From<StorePath> for String {
    fn from(p: StorePath) -> String {
        p.0
    }
}

pub const STORE_DIR: &str = "/nix/store";

impl StorePath {
    pub fn parse(s: &str) -> Result<Self> {
        let base = s
            .strip_prefix(STORE_DIR)
            .and_then(|rest| rest.strip_prefix('/'))
            .filter(|b| !b.is_empty() && !b.contains('/'));
        let valid = base.is_some_and(|b| {
            let (hash, name) = b.split_at(b.find('-').unwrap_or(b.len()));
            hash.len() == 32
                && hash.chars().all(|c| c.is_ascii_alphanumeric())
                && name.len() > 1
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-._+?=".contains(c))
        });
        if valid {
            Ok(StorePath(s.to_string()))
        } else {
            Err(Error::input(format!(
                "{s:?} is not a top-level path in {STORE_DIR}"
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The `<hash>-<name>` part, for short displays.
    pub fn base_name(&self) -> &str {
        &self.0[STORE_DIR.len() + 1..]
    }
}

impl fmt::Display for StorePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_names() {
        for ok in ["a", "web", "web-1", "a1", &"x".repeat(63)] {
            assert!(ContainerName::parse(ok).is_ok(), "{ok} should be valid");
        }
        for bad in [
            "",
            "1web",
            "-web",
            "web-",
            "Web",
            "web_1",
            "web.1",
            "we b",
            "../x",
            &"x".repeat(64),
        ] {
            assert!(
                ContainerName::parse(bad).is_err(),
                "{bad} should be invalid"
            );
        }
    }

    #[test]
    fn container_name_error_text() {
        insta::assert_snapshot!(ContainerName::parse("Web_1").unwrap_err().to_string());
    }

    #[test]
    fn store_paths() {
        let h = "0123456789abcdfghijklmnpqrsvwxyz";
        assert!(StorePath::parse(&format!("/nix/store/{h}-nixos-system-web")).is_ok());
        assert_eq!(
            StorePath::parse(&format!("/nix/store/{h}-x"))
                .unwrap()
                .base_name(),
            format!("{h}-x")
        );
        for bad in [
            "/nix/store".to_string(),
            "/nix/store/".to_string(),
            format!("/nix/store/{h}"),
            format!("/nix/store/{h}-x/bin"),
            "/nix/store/short-x".to_string(),
            format!("/etc/{h}-x"),
            format!("/nix/store/{h}-x y"),
        ] {
            assert!(StorePath::parse(&bad).is_err(), "{bad} should be invalid");
        }
    }

    #[test]
    fn project_names() {
        assert!(ProjectName::parse("default").is_ok());
        assert!(ProjectName::parse("lab_2.x").is_ok());
        for bad in ["", ".x", "-x", "a/b", "a b"] {
            assert!(ProjectName::parse(bad).is_err());
        }
    }
}
