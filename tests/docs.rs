//! The manual: every relative link in README.md and docs/ leads to a file that exists and, with
//! `#anchor`, to a heading that exists there; and the book builds with mdBook (book.toml).

// A test writes to the test harness's captured stderr: eprintln! is right here (clippy.toml
// forbids it in inx itself, where stderr can be a closed pipe).
#![allow(clippy::disallowed_macros)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

#[path = "e2e/skips.rs"]
mod skips;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every Markdown page under docs/.
fn pages() -> Vec<PathBuf> {
    let mut pages = vec![repo().join("README.md")];
    let mut dirs = vec![repo().join("docs")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                pages.push(path);
            }
        }
    }
    pages.sort();
    pages
}

/// The text outside fenced code blocks and inline code, where links are links.
fn prose(text: &str) -> String {
    let mut out = String::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        // Inline code: drop what lies between backticks.
        let mut inside = false;
        for c in line.chars() {
            if c == '`' {
                inside = !inside;
            } else if !inside {
                out.push(c);
            }
        }
        out.push('\n');
    }
    out
}

/// Every `[text](target)` target.
fn links(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        match after.find(')') {
            Some(end) => {
                found.push(after[..end].trim().to_string());
                rest = &after[end..];
            }
            None => break,
        }
    }
    found
}

/// GitHub's (and mdBook's) anchor of a heading: lower case, spaces to `-`, other punctuation
/// but `-` and `_` dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn anchors(page: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(page).unwrap();
    let mut fenced = false;
    let mut found = BTreeSet::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        }
        if !fenced && line.starts_with('#') {
            let heading = line.trim_start_matches('#').replace('`', "");
            found.insert(slug(&heading));
        }
    }
    found
}

#[test]
fn slugs_follow_githubs_rules() {
    assert_eq!(slug("What is verified where"), "what-is-verified-where");
    assert_eq!(slug("`inx image build NAME`"), "inx-image-build-name");
    assert_eq!(slug("Incus 7.0 (LTS)"), "incus-70-lts");
    assert_eq!(
        links("see [a](b.md#c) and [d](https://e)"),
        ["b.md#c", "https://e"]
    );
}

#[test]
fn every_relative_link_in_readme_and_docs_leads_somewhere() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        for target in links(&prose(&text)) {
            if target.contains("://") || target.starts_with("mailto:") || target.is_empty() {
                continue;
            }
            checked += 1;
            let (file, anchor) = match target.split_once('#') {
                Some((f, a)) => (f, Some(a)),
                None => (target.as_str(), None),
            };
            let dest = if file.is_empty() {
                page.clone()
            } else {
                page.parent().unwrap().join(file)
            };
            let shown = page.strip_prefix(repo()).unwrap().display().to_string();
            if !dest.exists() {
                broken.push(format!("{shown}: {target} (no such file)"));
                continue;
            }
            if let Some(anchor) = anchor {
                if dest.extension().is_some_and(|e| e == "md") && !anchors(&dest).contains(anchor) {
                    broken.push(format!("{shown}: {target} (no such heading)"));
                }
            }
        }
    }
    assert!(
        checked > 20,
        "only {checked} links found: the scan is broken"
    );
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// The manual builds with mdBook (installed by the test command; outside CI a missing mdbook
/// is a recorded skip). The book goes into a temporary folder.
#[test]
fn the_manual_builds_with_mdbook() {
    let Ok(mdbook) = which::which("mdbook") else {
        skips::record(
            "docs",
            "the_manual_builds_with_mdbook",
            "docs: the_manual_builds_with_mdbook",
            "mdbook is not installed (scripts/provision-test-host.sh installs it)",
        );
        return;
    };
    let out_dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(mdbook)
        .arg("build")
        .arg(repo())
        .arg("--dest-dir")
        .arg(out_dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "mdbook build failed:\n{stderr}");
    assert!(
        !stderr.contains("WARN") && !stderr.contains("ERROR"),
        "mdbook warned:\n{stderr}"
    );
    assert!(out_dir.path().join("index.html").exists());
}

/// docs/modules.md's table of the limits Incus documents for many containers shows the values
/// of the files the host module and scripts/host-limits.sh read: a row for every `key = value`
/// of lib/modules/incus-sysctl.conf and every `Limit…=` of incus-service-limits.conf, with that
/// value, and no sysctl the file lacks.
#[test]
fn the_many_containers_table_shows_the_limit_files_values() {
    let read = |path: &str| std::fs::read_to_string(repo().join(path)).unwrap();
    let page = read("docs/modules.md");
    let section = page
        .split_once("\n## Many containers on one host\n")
        .expect("docs/modules.md has the section")
        .1;
    let section = section.split("\n## ").next().unwrap();
    let rows: Vec<&str> = section.lines().filter(|l| l.starts_with("| ")).collect();
    let pairs = |path: &str, prefix: &str| -> Vec<(String, String)> {
        read(path)
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty() && l.starts_with(prefix))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect()
    };
    let sysctls = pairs("lib/modules/incus-sysctl.conf", "");
    let service = pairs("lib/modules/incus-service-limits.conf", "Limit");
    assert_eq!(sysctls.len(), 10, "{sysctls:?}");
    assert_eq!(service.len(), 2, "{service:?}");
    let mut wrong = Vec::new();
    for (key, value) in &sysctls {
        if !rows
            .iter()
            .any(|r| r.starts_with(&format!("| `{key}` | {value} |")))
        {
            wrong.push(format!("no row `{key}` | {value}"));
        }
    }
    for (key, value) in &service {
        let shown = if value.parse::<u64>().is_ok() {
            value.clone()
        } else {
            format!("`{value}`")
        };
        if !rows
            .iter()
            .any(|r| r.contains(&format!("(`{key}`) | {shown} |")))
        {
            wrong.push(format!("no row (`{key}`) | {shown}"));
        }
    }
    for row in &rows {
        let Some(key) = row.strip_prefix("| `").and_then(|r| r.split('`').next()) else {
            continue;
        };
        if key.contains('.') && !sysctls.iter().any(|(k, _)| k == key) {
            wrong.push(format!(
                "a row for {key}, which lib/modules/incus-sysctl.conf lacks"
            ));
        }
    }
    assert!(wrong.is_empty(), "docs/modules.md's table: {wrong:#?}");
}
