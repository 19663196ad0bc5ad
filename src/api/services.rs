//! What the handlers use, built once at startup and shared by every worker.
//! Each service is app data of its own, so a handler's signature says which
//! ones it touches.

use actix_web::dev::{ServiceFactory, ServiceRequest};
use actix_web::web;
use utoipa_actix_web::UtoipaApp;

use crate::agents::AlarmIngest;
use crate::alarm_rules::AlarmRules;
use crate::audit::AuditLog;
use crate::auth::AuthService;
use crate::capture::Cameras;
use crate::dashboard::Assets;
use crate::db::health::Readiness;
use crate::detections::{Recorder, UploadService};
use crate::disk::Storage;
use crate::hub::Hub;
use crate::jobs::JobService;
use crate::media::signed::UrlSigner;
use crate::media::SharedMediaStore;
use crate::notify::webhooks::WebhookService;
use crate::people::People;
use crate::search::FaceSearch;
use crate::telemetry::Telemetry;
use crate::vision::{DetectorPool, ImageLimits, RecognizerPool};
use crate::visitors::VisitorService;

#[derive(Clone)]
pub struct Services {
    pub auth: web::Data<AuthService>,
    pub uploads: web::Data<UploadService>,
    pub recorder: web::Data<Recorder>,
    pub signer: web::Data<UrlSigner>,
    pub media: web::Data<SharedMediaStore>,
    pub hub: web::Data<Hub>,
    pub cameras: web::Data<Cameras>,
    pub readiness: web::Data<Readiness>,
    pub detector: web::Data<DetectorPool>,
    pub recognizer: web::Data<RecognizerPool>,
    pub people: web::Data<People>,
    pub telemetry: web::Data<Telemetry>,
    pub assets: web::Data<Assets>,
    pub limits: web::Data<ImageLimits>,
    pub jobs: web::Data<JobService>,
    pub ingest: web::Data<AlarmIngest>,
    pub webhooks: web::Data<WebhookService>,
    pub alarm_rules: web::Data<AlarmRules>,
    pub storage: web::Data<Storage>,
    pub search: web::Data<FaceSearch>,
    pub audit: web::Data<AuditLog>,
    pub visitors: web::Data<VisitorService>,
}

impl Services {
    pub fn register<T>(&self, app: UtoipaApp<T>) -> UtoipaApp<T>
    where
        T: ServiceFactory<ServiceRequest, Config = (), Error = actix_web::Error, InitError = ()>,
    {
        let Services {
            auth,
            uploads,
            recorder,
            signer,
            media,
            hub,
            cameras,
            readiness,
            detector,
            recognizer,
            people,
            telemetry,
            assets,
            limits,
            jobs,
            ingest,
            webhooks,
            alarm_rules,
            storage,
            search,
            audit,
            visitors,
        } = self.clone();
        app.app_data(auth)
            .app_data(uploads)
            .app_data(recorder)
            .app_data(signer)
            .app_data(media)
            .app_data(hub)
            .app_data(cameras)
            .app_data(readiness)
            .app_data(detector)
            .app_data(recognizer)
            .app_data(people)
            .app_data(telemetry)
            .app_data(assets)
            .app_data(limits)
            .app_data(jobs)
            .app_data(ingest)
            .app_data(webhooks)
            .app_data(alarm_rules)
            .app_data(storage)
            .app_data(search)
            .app_data(audit)
            .app_data(visitors)
    }
}
