//! `vigil serve`: the HTTP server with everything it runs.

use std::process::ExitCode;

use crate::config::ServeArgs;
use crate::startup::Application;

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
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
