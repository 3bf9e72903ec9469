use super::{parse_names, Ctx};
use crate::error::Result;
use crate::hosts::gather;
use crate::plan::{self, Lifecycle, Plan, Shutdown};
use std::collections::BTreeMap;

/// `inx start|stop|restart NAME...`: one listing per server, then only the calls that change
/// something.
pub fn lifecycle(ctx: &Ctx, op: Lifecycle, names: &[String], shutdown: Shutdown) -> Result<()> {
    let names = parse_names(names)?;
    let _lock = ctx.lock()?;
    let located = gather::locate(&ctx.gather()?, &names)?;
    // Each container's plan with its own server's client, in the order given.
    let mut plan = Plan::default();
    for name in &names {
        let l = &located[name];
        let one: BTreeMap<String, _> = l
            .instance
            .iter()
            .map(|i| (i.name.clone(), i.clone()))
            .collect();
        let part = plan::lifecycle(op, std::slice::from_ref(name), &one, &l.incus, shutdown)?;
        plan.steps.extend(part.steps);
        plan.unchanged.extend(part.unchanged);
    }
    for name in plan.unchanged.iter().filter(|_| !ctx.dry_run) {
        let already = if op == Lifecycle::Stop {
            "stopped"
        } else {
            "running"
        };
        ctx.runner
            .progress(format_args!("{name}: already {already}"));
    }
    ctx.carry_out(&plan)
}
