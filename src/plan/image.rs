//! Plans for putting an image on a server (`inx image import` and `publish`): pure, facts in,
//! steps out. Importing an image the server already has is a no-op; only its alias and
//! visibility are brought in line.

use crate::clients::incus::{Client, RemoteName, ServerImage};
use crate::cmd::Cmd;
use crate::images::{Alias, ImageFiles};
use crate::name::ContainerName;
use crate::plan::{Action, Plan, Step, What};

/// Where and how the image goes.
#[derive(Debug, Clone)]
pub struct Destination<'a> {
    pub client: Client,
    pub remote: Option<&'a RemoteName>,
    pub alias: &'a Alias,
    pub public: bool,
}

impl Destination<'_> {
    pub fn server(&self) -> String {
        match self.remote {
            Some(r) => format!("remote {}", r.as_str()),
            None => format!("the local {} server", self.client.backend.daemon()),
        }
    }
}

fn step(name: &ContainerName, what: What, description: String, cmd: Cmd) -> Step {
    Step {
        container: Some(name.clone()),
        host: None,
        what,
        description,
        action: Action::Run(cmd),
    }
}

/// `existing` is what the server has now (`image list`).
///
/// An alias that another image holds moves only after the new image is in: the import comes
/// first, without the alias, then one call points the alias at the new image. A failed import
/// leaves the alias on the old image, and a rerun finds the new image there and only moves it.
pub fn import(
    name: &ContainerName,
    files: &ImageFiles,
    existing: &[ServerImage],
    target: &Destination,
) -> Plan {
    let b = &target.client;
    let mut plan = Plan::default();
    let holder = existing.iter().find_map(|i| {
        i.aliases
            .iter()
            .find(|a| a.name == target.alias.as_str())
            .map(|a| (i, a))
    });
    let same = existing.iter().find(|i| i.fingerprint == files.fingerprint);
    let elsewhere = holder.filter(|(h, _)| h.fingerprint != files.fingerprint);
    if same.is_none() {
        let with_alias = elsewhere.is_none().then_some(target.alias);
        plan.steps.push(step(
            name,
            What::Import,
            format!(
                "import the {} {} into {}{}{}",
                files.kind.describe(),
                short(&files.fingerprint),
                target.server(),
                match with_alias {
                    Some(alias) => format!(" as {alias}"),
                    None => String::new(),
                },
                if target.public { " (public)" } else { "" }
            ),
            b.image_import(files.paths(), target.remote, with_alias, target.public),
        ));
    }
    if let Some((old, alias)) = elsewhere {
        plan.steps.push(step(
            name,
            What::Alias,
            format!(
                "move alias {} from the older image {} to {}",
                target.alias,
                short(&old.fingerprint),
                short(&files.fingerprint)
            ),
            b.alias_retarget(
                target.remote,
                target.alias,
                &files.fingerprint,
                &alias.description,
            ),
        ));
    } else if same.is_some() && holder.is_none() {
        plan.steps.push(step(
            name,
            What::Alias,
            format!(
                "give the image {} the alias {}",
                short(&files.fingerprint),
                target.alias
            ),
            b.alias_create(target.remote, target.alias, &files.fingerprint),
        ));
    }
    if let Some(have) = same {
        if target.public && !have.public {
            plan.steps.push(step(
                name,
                What::Public,
                format!("make the image {} public", short(&files.fingerprint)),
                b.make_public(target.remote, &files.fingerprint),
            ));
        }
        if plan.steps.is_empty() {
            plan.unchanged.push(name.clone());
        }
    }
    plan
}

/// The first 12 characters, as Incus and LXD show fingerprints.
pub fn short(fingerprint: &str) -> &str {
    &fingerprint[..fingerprint.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::incus::{Backend, ServerAlias};
    use crate::images::ImageKind;

    const FP: &str = "aafd3b080e960061a0fa9fcb977662b52b9f033d0d0041746e6cbe2ef4621c95";
    const OLD: &str = "0123456789ab0061a0fa9fcb977662b52b9f033d0d0041746e6cbe2ef4621c95";

    fn files() -> ImageFiles {
        ImageFiles {
            kind: ImageKind::Container,
            metadata: "/nix/store/m-meta/tarball/meta.tar.xz".into(),
            root: "/nix/store/r-root/root.squashfs".into(),
            fingerprint: FP.into(),
        }
    }

    fn image(fp: &str, public: bool, aliases: &[&str]) -> ServerImage {
        ServerImage {
            fingerprint: fp.into(),
            public,
            aliases: aliases
                .iter()
                .map(|a| ServerAlias {
                    name: a.to_string(),
                    description: String::new(),
                })
                .collect(),
        }
    }

    fn plan_for(existing: &[ServerImage], public: bool, backend: Backend) -> Plan {
        let alias = Alias::parse("nixos/web").unwrap();
        let web = ContainerName::parse("web").unwrap();
        import(
            &web,
            &files(),
            existing,
            &Destination {
                client: Client::of(backend),
                remote: None,
                alias: &alias,
                public,
            },
        )
    }

    #[test]
    fn new_image_is_imported_with_its_alias() {
        insta::assert_snapshot!(plan_for(&[], false, Backend::Incus).to_shell());
    }

    #[test]
    fn same_image_again_is_a_no_op() {
        let plan = plan_for(&[image(FP, false, &["nixos/web"])], false, Backend::Incus);
        assert!(plan.steps.is_empty());
        assert_eq!(plan.unchanged.len(), 1);
    }

    #[test]
    fn a_new_build_takes_the_alias_from_the_old_one() {
        insta::assert_snapshot!(
            plan_for(&[image(OLD, false, &["nixos/web"])], true, Backend::Lxd).to_shell()
        );
    }

    /// Nothing touches the alias before the import has succeeded: a failed import (the plan
    /// stops at a failed step) leaves the alias on the old image.
    #[test]
    fn the_alias_moves_only_after_the_import() {
        let plan = plan_for(&[image(OLD, false, &["nixos/web"])], false, Backend::Incus);
        let whats: Vec<What> = plan.steps.iter().map(|s| s.what).collect();
        assert_eq!(whats, [What::Import, What::Alias]);
        let Action::Run(import) = &plan.steps[0].action else {
            panic!("an import runs a command")
        };
        assert!(
            !import.args.iter().any(|a| a == "--alias"),
            "the import does not ask for the alias another image holds: {}",
            import.to_shell()
        );
        let Action::Run(alias) = &plan.steps[1].action else {
            panic!("an alias step runs a command")
        };
        assert!(
            alias.args.iter().any(|a| a.contains(FP)),
            "the alias goes to the new image: {}",
            alias.to_shell()
        );
    }

    /// The alias's description goes along when it moves (PUT replaces it).
    #[test]
    fn a_moved_alias_keeps_its_description() {
        let mut old = image(OLD, false, &["nixos/web"]);
        old.aliases[0].description = "the web server".into();
        let plan = plan_for(&[old], false, Backend::Incus);
        let Action::Run(alias) = &plan.steps[1].action else {
            panic!("an alias step runs a command")
        };
        assert!(
            alias
                .args
                .iter()
                .any(|a| a.contains(r#""description":"the web server""#)),
            "{}",
            alias.to_shell()
        );
    }

    #[test]
    fn an_image_already_there_gets_alias_and_visibility_only() {
        insta::assert_snapshot!(plan_for(
            &[image(FP, false, &[]), image(OLD, true, &["nixos/web"])],
            true,
            Backend::Incus
        )
        .to_shell());
    }
}
