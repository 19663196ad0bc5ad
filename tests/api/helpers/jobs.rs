//! The job queue as the tests speak it: submitting videos and asynchronous
//! uploads, and waiting for a job to reach a state.

use std::path::Path;
use std::time::{Duration, Instant};

use vigil_wire::jobs::{JobState, JobView};

use super::app::{body, Api};

impl Api {
    /// The portrait as a raw PNG upload to `/api/v1/detections?{query}`,
    /// with an `Idempotency-Key` when given; whatever the answer.
    pub async fn post_portrait(&self, token: &str, query: &str, key: Option<&str>) -> reqwest::Response {
        let mut request = self
            .http
            .post(self.url(&format!("/api/v1/detections?{query}")))
            .bearer_auth(token)
            .header("content-type", "image/png")
            .body(super::test_asset("astronaut.png"));
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        request.send().await.unwrap()
    }

    /// `POST /api/v1/videos` with the file as multipart `video`, whatever the answer.
    pub async fn submit_video(&self, token: &str, file: &Path, fps: &str) -> reqwest::Response {
        let bytes = std::fs::read(file).expect("the clip");
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let form = reqwest::multipart::Form::new()
            .part("video", reqwest::multipart::Part::bytes(bytes).file_name(name))
            .text("fps", fps.to_owned());
        self.http
            .post(self.url("/api/v1/videos"))
            .bearer_auth(token)
            .multipart(form)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST /api/v1/videos: {e:?}"))
    }

    /// Submits a video and returns its job, which must have been accepted.
    pub async fn video_job(&self, token: &str, file: &Path, fps: &str) -> JobView {
        let response = self.submit_video(token, file, fps).await;
        assert_eq!(
            response.status(),
            202,
            "video: {}",
            response.text().await.unwrap()
        );
        body(response).await
    }

    /// `GET /api/v1/jobs/{id}`.
    pub async fn job(&self, token: &str, id: &str) -> JobView {
        self.fetch_as(&format!("/api/v1/jobs/{id}"), token).await
    }

    /// Polls the job until `done(job)` holds; fails with the last state after `within`.
    pub async fn wait_for_job(
        &self,
        token: &str,
        id: &str,
        within: Duration,
        done: impl Fn(&JobView) -> bool,
    ) -> JobView {
        let started = Instant::now();
        loop {
            let job = self.job(token, id).await;
            if done(&job) {
                return job;
            }
            assert!(
                started.elapsed() < within,
                "job not there within {within:?}: {job:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for the job to end (done, failed or cancelled).
    pub async fn job_ended(&self, token: &str, id: &str, within: Duration) -> JobView {
        self.wait_for_job(token, id, within, |j| j.state.is_final()).await
    }
}

/// Whether the job is running now.
pub fn running(job: &JobView) -> bool {
    job.state == JobState::Running
}
