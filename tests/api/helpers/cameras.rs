//! Cameras as the tests read them (`GET /api/v1/cameras`, as an admin): one
//! camera's status, and waiting for it to reach a state.

use std::time::{Duration, Instant};

use super::app::{Api, TestUser};
use super::bodies::Camera;

impl Api {
    pub async fn cameras(&self, admin: &TestUser) -> Vec<Camera> {
        self.fetch_as("/api/v1/cameras", &admin.access_token).await
    }

    pub async fn camera(&self, admin: &TestUser, id: &str) -> Camera {
        self.cameras(admin)
            .await
            .into_iter()
            .find(|c| c.id == id)
            .unwrap_or_else(|| panic!("no camera {id}"))
    }

    /// Polls the camera until `done` holds, failing after `within`.
    pub async fn wait_for_camera(
        &self,
        admin: &TestUser,
        id: &str,
        within: Duration,
        done: impl Fn(&Camera) -> bool,
    ) -> Camera {
        let started = Instant::now();
        loop {
            let status = self.camera(admin, id).await;
            if done(&status) {
                return status;
            }
            assert!(
                started.elapsed() < within,
                "camera {id} never got there: {status:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
