//! Validating newtypes for the strings that end up in paths, argv and Incus keys.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;

/// What one kind of name may hold. Every name inx takes from a user goes through `check`, so
/// the rules are stated once each and the errors read alike.
struct Rule {
    /// "container name", "image alias", ...: how the error names it.
    what: &'static str,
    max: usize,
    char_ok: fn(char) -> bool,
    first_ok: fn(char) -> bool,
    first_rule: &'static str,
    /// A further rule on the whole name, with why it fails.
    whole_ok: Option<WholeRule>,
    hint: &'static str,
}

type WholeRule = (fn(&str) -> bool, &'static str);

fn check(s: &str, rule: &Rule) -> Result<()> {
    let why = if s.is_empty() || s.len() > rule.max {
        Some(format!("it must be 1 to {} characters long", rule.max))
    } else if !s.starts_with(rule.first_ok) {
        Some(rule.first_rule.to_string())
    } else if let Some(c) = s.chars().find(|c| !(rule.char_ok)(*c)) {
        Some(format!("{c:?} is not allowed"))
    } else {
        rule.whole_ok
            .filter(|(ok, _)| !ok(s))
            .map(|(_, why)| why.to_string())
    };
    match why {
        None => Ok(()),
        Some(why) => {
            Err(Error::input(format!("invalid {} {s:?}: {why}", rule.what)).with_hint(rule.hint))
        }
    }
}

fn lower_digit_dash(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
}

fn word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// A container name: also an Incus instance name, a host profile directory and the guest's
/// hostname, so it follows the strictest of those rules.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ContainerName(String);

const CONTAINER: Rule = Rule {
    what: "container name",
    max: 63,
    char_ok: lower_digit_dash,
    first_ok: |c| c.is_ascii_lowercase(),
    first_rule: "it must start with a lowercase letter",
    whole_ok: Some((|s| !s.ends_with('-'), "it must not end with '-'")),
    hint: "use 1 to 63 lowercase letters, digits and '-', starting with a letter and not ending with '-'",
};

impl ContainerName {
    pub fn parse(s: &str) -> Result<Self> {
        check(s, &CONTAINER)?;
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

/// An Incus device name, from `incus.devices` in a flake. Incus 6.0 takes 1 to 63 letters,
/// digits and `/-:_.`, not starting with `.`; 7.0.1 also wants no `/`, at most 64 characters
/// and a letter or digit at both ends. Names valid on both, so a flake works on either.
const DEVICE: Rule = Rule {
    what: "device name",
    max: 63,
    char_ok: |c| c.is_ascii_alphanumeric() || matches!(c, '-' | ':' | '_' | '.'),
    first_ok: |c| c.is_ascii_alphanumeric(),
    first_rule: "it must start with a letter or a digit",
    whole_ok: Some((
        |s| s.ends_with(|c: char| c.is_ascii_alphanumeric()),
        "it must end with a letter or a digit",
    )),
    hint: "use 1 to 63 letters, digits, '-', ':', '_' and '.', with a letter or a digit at both ends (Incus 7 refuses '/' and other ends)",
};

/// Checks an Incus device name (the manifest keeps devices as a plain map).
pub fn check_device_name(s: &str) -> Result<()> {
    check(s, &DEVICE)
}

/// An Incus project name, from `--project` or the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectName(String);

const PROJECT: Rule = Rule {
    what: "Incus project name",
    max: 63,
    char_ok: word_char,
    first_ok: |c| !matches!(c, '.' | '-'),
    first_rule: "it must not start with '.' or '-'",
    whole_ok: None,
    hint: "use letters, digits, '-', '_' and '.', not starting with '.' or '-'",
};

impl ProjectName {
    pub fn parse(s: &str) -> Result<Self> {
        check(s, &PROJECT)?;
        Ok(ProjectName(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_default(&self) -> bool {
        self.0 == "default"
    }
}

/// A remote as the client names it (`incus remote list`), without the trailing `:`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct RemoteName(String);

const REMOTE: Rule = Rule {
    what: "remote name",
    max: 255,
    char_ok: word_char,
    first_ok: |_| true,
    first_rule: "",
    whole_ok: None,
    hint: "give a remote from `incus remote list` (or `lxc remote list`), as NAME or NAME:",
};

impl RemoteName {
    /// Takes `NAME` or `NAME:`.
    pub fn parse(s: &str) -> Result<Self> {
        let name = s.strip_suffix(':').unwrap_or(s);
        check(name, &REMOTE)?;
        Ok(RemoteName(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RemoteName {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A word that names a host for ssh or Incus: a cluster member, an ssh user or host name (or
/// IPv4 address). Starting with a letter or digit, it can never be read as an option.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct HostWord(String);

const MEMBER: Rule = Rule {
    what: "cluster member name",
    max: 253,
    char_ok: word_char,
    first_ok: |c| c.is_ascii_alphanumeric(),
    first_rule: "it must start with a letter or a digit",
    whole_ok: None,
    hint: "give a member from `incus cluster list REMOTE:`",
};

const SSH_WORD: Rule = Rule {
    what: "ssh user or host",
    max: 253,
    char_ok: word_char,
    first_ok: |c| c.is_ascii_alphanumeric(),
    first_rule: "it must start with a letter or a digit",
    whole_ok: None,
    hint: "give a user name and a host name or IPv4 address, as USER@HOST or HOST",
};

impl HostWord {
    pub fn member(s: &str) -> Result<Self> {
        check(s, &MEMBER)?;
        Ok(HostWord(s.to_string()))
    }

    pub fn ssh(s: &str) -> Result<Self> {
        check(s, &SSH_WORD)?;
        Ok(HostWord(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for HostWord {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A snapshot's name: an Incus snapshot name that is also the name of its GC root's link
/// (`gcroots/inx/NAME/snapshots/SNAP`), so no '/' and no leading '.'.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct SnapshotName(String);

const SNAPSHOT: Rule = Rule {
    what: "snapshot name",
    max: 63,
    char_ok: word_char,
    first_ok: |c| c.is_ascii_alphanumeric(),
    first_rule: "it must start with a letter or a digit",
    whole_ok: None,
    hint: "use 1 to 63 letters, digits, '-', '_' and '.', starting with a letter or a digit",
};

impl SnapshotName {
    pub fn parse(s: &str) -> Result<Self> {
        check(s, &SNAPSHOT)?;
        Ok(SnapshotName(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SnapshotName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An image alias: letters, digits and `-_./`, in segments that are not `.` or `..` (it also
/// names folders of a simplestreams tree).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Alias(String);

const ALIAS: Rule = Rule {
    what: "image alias",
    max: 200,
    char_ok: |c| word_char(c) || c == '/',
    first_ok: |_| true,
    first_rule: "",
    whole_ok: Some((
        |s| s.split('/').all(|seg| !seg.is_empty() && seg != "." && seg != ".."),
        "it has an empty, '.' or '..' part",
    )),
    hint: "use letters, digits, '-', '_', '.' and '/' (as in nixos/web), with no empty, '.' or '..' parts",
};

impl Alias {
    pub fn parse(s: &str) -> Result<Self> {
        check(s, &ALIAS)?;
        Ok(Alias(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Alias {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
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
        insta::assert_snapshot!(ContainerName::parse("Web_1").unwrap_err().to_string(), @r#"
        error: invalid container name "Web_1": it must start with a lowercase letter
        hint: use 1 to 63 lowercase letters, digits and '-', starting with a letter and not ending with '-'
        "#);
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
    fn device_names_follow_the_rules_of_incus_6_and_7_both() {
        for ok in [
            "data",
            "eth0",
            "forward-tcp-8080",
            "a",
            "web.data_1:x",
            &"d".repeat(63),
        ] {
            assert!(check_device_name(ok).is_ok(), "{ok} should be valid");
        }
        // Incus 7.0.1 refuses a '/', and non-alphanumeric ends, which 6.0 took.
        for bad in [
            "",
            "gpu/0",
            "data-",
            "-data",
            "_data",
            "data.",
            ".data",
            "da ta",
            "dätä",
            &"d".repeat(64),
        ] {
            assert!(check_device_name(bad).is_err(), "{bad} should be invalid");
        }
        insta::assert_snapshot!(check_device_name("gpu/0").unwrap_err().to_string(), @r#"
        error: invalid device name "gpu/0": '/' is not allowed
        hint: use 1 to 63 letters, digits, '-', ':', '_' and '.', with a letter or a digit at both ends (Incus 7 refuses '/' and other ends)
        "#);
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
