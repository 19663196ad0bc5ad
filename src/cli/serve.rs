//! `vigil serve`: the HTTP server with everything it runs.

use std::process::ExitCode;

use crate::config::ServeArgs;
use crate::startup::Application;

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    cap_malloc_arenas();
    super::block_on(async {
        let config = args.into_config()?;
        // Once per process: the facade takes one recorder, and every module
        // records into it from here on.
        crate::observability::install()?;
        let app = Application::build(config).await?;
        app.run_until_stopped().await?;
        Ok(ExitCode::SUCCESS)
    })
}

/// glibc gives every thread that allocates while others do an arena of its
/// own, up to eight per core, and each keeps what was freed in it: after
/// 150 uploads at concurrency 8 the server held 771 MiB, and 1020 MiB at
/// the peak of sixteen 6300×6300 PNGs. Two arenas: 429 and 656 MiB, at the
/// same CPU per upload (`scripts/bench-api.sh`, docs/contributing.md). An
/// operator's own `MALLOC_ARENA_MAX` wins.
fn cap_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt sets one parameter of the allocator and touches no
        // memory of ours; arenas made before it keep working.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}
