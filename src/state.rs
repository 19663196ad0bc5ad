//! What every handler can reach: built once in `startup`, shared by reference.

use std::sync::Arc;

use crate::alarms::AlarmBus;
use crate::auth::AuthService;
use crate::capture::Cameras;
use crate::config::Config;
use crate::db::health::Readiness;
use crate::db::Database;
use crate::detections::{Recorder, UploadService};
use crate::hub::Hub;
use crate::media::signed::UrlSigner;
use crate::media::SharedMediaStore;
use crate::vision::DetectorPool;

pub struct AppState {
    pub config: Arc<Config>,
    pub db: Database,
    pub readiness: Readiness,
    pub auth: AuthService,
    pub detector: DetectorPool,
    pub media: SharedMediaStore,
    pub signer: UrlSigner,
    pub alarm_bus: AlarmBus,
    /// Stores detections and alarms (uploads and cameras).
    pub recorder: Recorder,
    pub uploads: UploadService,
    /// The WebSocket hub: sessions, presence, fan-out.
    pub hub: Hub,
    /// Camera and video capture tasks.
    pub cameras: Cameras,
    /// Identifies this process among several sharing one database.
    pub instance_id: String,
}
