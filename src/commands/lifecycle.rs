use super::{parse_names, Ctx};
use crate::error::Result;
use crate::plan::{self, Lifecycle};

/// `inx start|stop|restart NAME...`: one listing, then only the calls that change something.
pub fn lifecycle(ctx: &Ctx, op: Lifecycle, names: &[String]) -> Result<()> {
    let names = parse_names(names)?;
    let _lock = ctx.lock()?;
    let instances = ctx.instances()?;
    let plan = plan::lifecycle(op, &names, &instances, ctx.incus()?)?;
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
