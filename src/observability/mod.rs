//! Prometheus metrics through the `metrics` facade: modules record with the
//! `::metrics` macros and the names of [`series`]; `vigil serve` installs
//! the recorder once per process ([`install`]) and `/metrics` renders it
//! ([`render`]).
//!
//! Figures that are read rather than counted (camera status, the queue's
//! depth, the process's memory) are set at scrape time into a recorder of
//! that scrape only: a camera removed since, or another application in the
//! same process (the API tests run several), leaves nothing behind.

pub mod process;
pub mod series;

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};
use tracing::Instrument;

/// The process's recorder, once [`install`] has run.
static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// How often histogram samples are folded into their buckets between
/// scrapes, so that an unscraped process does not keep every sample.
const UPKEEP: Duration = Duration::from_secs(5);

fn builder() -> Result<PrometheusBuilder, BuildError> {
    series::HISTOGRAM_BUCKETS.iter().try_fold(
        PrometheusBuilder::new().set_buckets(series::LATENCY_BUCKETS)?,
        |builder, (name, buckets)| builder.set_buckets_for_metric(Matcher::Full((*name).to_owned()), buckets),
    )
}

/// Installs the process-wide recorder and its upkeep task. Call once, from
/// inside the runtime; a second call fails (the facade takes one recorder).
pub fn install() -> Result<(), BuildError> {
    let handle = builder()?.install_recorder()?;
    series::describe();
    let upkeep = handle.clone();
    let _ = HANDLE.set(handle);
    tokio::spawn(
        async move {
            let mut every = tokio::time::interval(UPKEEP);
            loop {
                every.tick().await;
                upkeep.run_upkeep();
            }
        }
        .instrument(tracing::info_span!("metrics_upkeep")),
    );
    Ok(())
}

/// The Prometheus text of this scrape: what `scraped` sets (read at scrape
/// time, recorded in a recorder of this scrape only), then the process's
/// recorded series when [`install`] has run.
pub fn render(scraped: impl FnOnce()) -> String {
    // Gauges and counters only: no buckets to set.
    let local = PrometheusBuilder::new().build_recorder();
    metrics::with_local_recorder(&local, || {
        series::describe();
        scraped();
    });
    let mut text = local.handle().render();
    if let Some(handle) = HANDLE.get() {
        text.push_str(&handle.render());
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_buckets_build() {
        assert!(builder().is_ok());
    }

    #[test]
    fn scraped_figures_are_rendered_with_their_help() {
        let text = render(|| {
            ::metrics::gauge!(series::CAMERAS).set(2.0);
            ::metrics::counter!(series::CAMERA_ALARMS, "camera" => "door").absolute(7);
        });
        assert!(
            text.contains("# HELP vigil_cameras Cameras configured."),
            "{text}"
        );
        assert!(
            text.contains("# TYPE vigil_cameras gauge\nvigil_cameras 2\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE vigil_camera_alarms_total counter"),
            "{text}"
        );
        assert!(
            text.contains("vigil_camera_alarms_total{camera=\"door\"} 7\n"),
            "{text}"
        );
        // A second scrape starts afresh: nothing of the first is left.
        assert!(!render(|| {}).contains("vigil_cameras"));
    }
}
