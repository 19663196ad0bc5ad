//! Builds the application from a [`Config`]: the database handle, the
//! migrations, the shared state, the background tasks and the HTTP server.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use tokio::task::JoinHandle;
use tracing::Instrument;
use utoipa_actix_web::AppExt;

use crate::agents::AlarmIngest;
use crate::alarm_rules::AlarmRules;
use crate::alarms::AlarmBus;
use crate::api::{self, Services};
use crate::audit::AuditLog;
use crate::auth::AuthService;
use crate::capture::{CameraLeases, Cameras, CaptureDeps, RecorderSink};
use crate::config::{Config, SecretSource};
use crate::db::health::ReadyState;
use crate::db::health::{HealthMonitor, Readiness};
use crate::db::migrations::{MigrationError, MigrationSet, Migrator};
use crate::db::{Database, DbError};
use crate::detections::{FacePrints, NoGrouping, Recorder, Strangers, UploadService};
use crate::disk::{DataDirProbe, DiskGuard, Storage};
use crate::hub::Hub;
use crate::idempotency::IdempotencyKeys;
use crate::jobs::videos::VideoStore;
use crate::jobs::{DetectJobs, Handlers, JobQueue, JobService, VideoJobs, Workers};
use crate::media::signed::UrlSigner;
use crate::media::{sweep_orphans, FileStore, GridFsStore, MediaBackend, MediaReferences, SharedMediaStore};
use crate::mqtt::{Mqtt, MqttSources};
use crate::notify::webhooks::{
    DeliveryLog, Dispatcher, WebhookDeliveries, WebhookLimits, WebhookService, Webhooks,
};
use crate::people::erase::Erasure;
use crate::people::{Gallery, GallerySync, People, PeopleLimits, Recognition, SubjectFaces, Subjects};
use crate::retention::{CameraRetention, Retention};
use crate::search::FaceSearch;
use crate::telemetry::{PhotoImages, Telemetry, TelemetryDeps, TelemetrySettings};
use crate::users::DirectorySync;
use crate::vision::recognizer::RecognizerLoadError;
use crate::vision::{DetectorPool, RecognizerPool};
use crate::visitors::{Grouping, VisitorService, Visitors};
use vigil_ffmpeg::sampling::Tools;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Database(#[from] DbError),
    #[error(transparent)]
    Migration(#[from] MigrationError),
    #[error(transparent)]
    Model(#[from] crate::vision::ModelError),
    #[error(transparent)]
    Recognizer(#[from] RecognizerLoadError),
    #[error("cannot open the image folder: {0}")]
    Media(#[source] std::io::Error),
    #[error("TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// How long shutdown waits for the database driver's own cleanup.
const DRIVER_SHUTDOWN: Duration = Duration::from_secs(2);

/// How often the disk guard measures the data folder: a camera at full rate
/// writes a few MB in this time, far less than any sensible threshold.
const DISK_CHECK_INTERVAL: Duration = Duration::from_secs(10);

/// The running cameras' own retention, for the sweep.
struct CameraDays(Cameras);

impl CameraRetention for CameraDays {
    fn camera_days(&self) -> Vec<(String, u32)> {
        self.0
            .retention_days()
            .into_iter()
            .map(|(id, days)| (id.to_string(), days))
            .collect()
    }
}

pub struct Application {
    port: u16,
    server: Server,
    background: Vec<JoinHandle<()>>,
    services: Services,
    db: Database,
    workers: Workers,
    mqtt: Option<Mqtt>,
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let config = Arc::new(config);
        let instance_id = uuid::Uuid::new_v4().simple().to_string();
        if config.secret_source == SecretSource::Generated {
            tracing::warn!(
                "VIGIL_JWT_SECRET is not set: using a random secret for this run only. \
                 Every token and media URL dies on restart and instances cannot share them. \
                 Set VIGIL_JWT_SECRET (≥ 32 bytes) for anything but local development."
            );
        }

        // First: a bad certificate stops startup at once, instead of after
        // the model loads, or as a port that fails every handshake.
        let tls = config.tls.as_ref().map(crate::tls::server_config).transpose()?;
        let assets = crate::dashboard::Assets::new(config.static_dir.as_deref());
        assets.check().map_err(|e| StartupError::Config(e.to_string()))?;
        if let Some(dir) = &config.static_dir {
            tracing::info!(dir = %dir.display(), "dashboard files are read from disk (--static-dir)");
        }

        let db = Database::connect(&config.database).await?;
        let migrations = Arc::new(MigrationSet::embedded()?);
        let migrated = migrate_if_reachable(&db, &migrations, &instance_id, &config).await?;

        let readiness = Readiness::new();
        let monitor = HealthMonitor {
            db: db.clone(),
            migrations,
            readiness: readiness.clone(),
            instance_id: instance_id.clone(),
            interval: config.health_interval,
            ping_timeout: config
                .database
                .server_selection_timeout
                .min(Duration::from_secs(3)),
            migrated,
        };

        let auth = AuthService::new(&db, &config.auth, &config.jwt_secret)
            .map_err(|e| StartupError::Config(e.to_string()))?;
        let limiter = auth.limiter.clone();
        let auth_directory = auth.accounts.clone();
        let detector = DetectorPool::load(&config.models_dir, &config.detector).await?;
        let recognizer = RecognizerPool::load(&config.models_dir, &config.recognizer).await?;
        // The folder store also has temp files of interrupted writes to sweep.
        let (media, folder): (SharedMediaStore, Option<Arc<FileStore>>) = match config.media.backend {
            MediaBackend::Fs => {
                let store =
                    Arc::new(FileStore::open(config.data_dir.join("images")).map_err(StartupError::Media)?);
                (store.clone(), Some(store))
            }
            MediaBackend::Gridfs => (Arc::new(GridFsStore::new(&db)), None),
        };
        let storage = Storage::new(config.min_free_disk_bytes);
        let alarm_bus = AlarmBus::new(1024);
        let gallery = Gallery::default();
        let recognition = Recognition {
            recognizer: recognizer.clone(),
            gallery: gallery.clone(),
            rule: config.matching,
            users: auth.users.clone(),
        };
        let signer = UrlSigner::new(config.jwt_secret.as_bytes(), config.media.url_ttl);
        let telemetry = Telemetry::new(
            &db,
            TelemetryDeps {
                detector: detector.clone(),
                recognition: recognition.clone(),
                media: media.clone(),
                users: auth.users.clone(),
                signer: signer.clone(),
                storage: storage.clone(),
            },
            TelemetrySettings {
                skew: config.telemetry_skew,
                image_limits: config.uploads,
            },
        );
        let alarm_rules = AlarmRules::new(&db, Arc::new(Subjects::new(&db)));
        let visitors = Visitors::new(&db);
        let strangers: Arc<dyn Strangers> = if config.visitor_distance > 0.0 {
            Arc::new(Grouping::new(
                visitors.clone(),
                media.clone(),
                config.visitor_distance,
            ))
        } else {
            Arc::new(NoGrouping)
        };
        let recorder = Recorder::new(
            &db,
            media.clone(),
            alarm_bus.clone(),
            Arc::new(recognition),
            Arc::new(alarm_rules.clone()),
            strangers,
            storage.clone(),
        );
        let audit = AuditLog::new(&db);
        let people = People {
            db: db.clone(),
            subjects: Subjects::new(&db),
            faces: SubjectFaces::new(&db),
            gallery: gallery.clone(),
            detector: detector.clone(),
            recognizer: recognizer.clone(),
            media: media.clone(),
            detections: recorder.detections.clone(),
            image_limits: config.uploads,
            limits: PeopleLimits::default(),
            erasure: Erasure {
                db: db.clone(),
                subjects: Subjects::new(&db),
                faces: SubjectFaces::new(&db),
                media: media.clone(),
                detections: recorder.detections.clone(),
                alarms: recorder.alarms.clone(),
            },
            audit: audit.clone(),
        };
        let visitor_service = VisitorService {
            visitors,
            prints: FacePrints::new(&db),
            detections: recorder.detections.clone(),
            alarms: recorder.alarms.clone(),
            people: people.clone(),
            rule: config.matching,
            media: media.clone(),
        };
        let search = FaceSearch {
            prints: FacePrints::new(&db),
            detections: recorder.detections.clone(),
            people: people.clone(),
            audit: audit.clone(),
            threshold: config.matching.threshold,
        };
        let gallery_sync = GallerySync {
            db: db.clone(),
            gallery,
            subjects: people.subjects.clone(),
            faces: people.faces.clone(),
            model: recognizer.model_id(),
        };
        let first_gallery_streams = if migrated {
            match gallery_sync.prepare().await {
                Ok(streams) => Some(streams),
                Err(err) => {
                    tracing::warn!(error = %err, "cannot load the gallery yet; retrying in the background");
                    None
                }
            }
        } else {
            None
        };
        let uploads = UploadService {
            detector: detector.clone(),
            recorder: recorder.clone(),
            users: auth.users.clone(),
            limits: config.uploads,
            keys: IdempotencyKeys::new(&db),
            storage: storage.clone(),
        };
        let tools = Tools {
            ffmpeg: config.capture.ffmpeg.clone(),
            ffprobe: config.capture.ffprobe.clone(),
        };
        let videos = Arc::new(
            VideoStore::open(config.media.backend, &config.data_dir, &db).map_err(StartupError::Media)?,
        );
        // The data folder exists now (the stores made it). With GridFS it
        // still takes videos as they arrive and their temp files, so the
        // guard watches it whatever the image store. It measures even when
        // off (`--min-free-disk-mb 0`), for `vigil_disk_free_bytes`.
        let disk_guard = DiskGuard {
            probe: Arc::new(DataDirProbe::new(&config.data_dir)),
            storage: storage.clone(),
            interval: DISK_CHECK_INTERVAL,
        };
        disk_guard.check();
        let job_queue = JobQueue::new(&db, config.jobs);
        let jobs = JobService {
            db: db.clone(),
            queue: job_queue.clone(),
            media: media.clone(),
            videos: videos.clone(),
            users: auth.users.clone(),
            keys: IdempotencyKeys::new(&db),
            limits: config.uploads,
            decode_budget: detector.decode_budget().clone(),
            tools: tools.clone(),
            storage: storage.clone(),
        };
        let ingest = AlarmIngest {
            detector: detector.clone(),
            recorder: recorder.clone(),
            users: auth.users.clone(),
            keys: IdempotencyKeys::new(&db),
            limits: config.uploads,
            settings: config.agents,
            storage: storage.clone(),
        };
        let webhook_limits = WebhookLimits::default();
        let webhooks = WebhookService {
            webhooks: Webhooks::new(&db),
            log: DeliveryLog::new(&db, webhook_limits.log_entries),
            queue: job_queue.clone(),
            settings: config.webhooks,
            limits: webhook_limits,
        };
        let dispatcher = Dispatcher {
            webhooks: webhooks.webhooks.clone(),
            queue: job_queue.clone(),
            users: auth.users.clone(),
        };
        let workers = Workers {
            queue: job_queue.clone(),
            handlers: Arc::new(Handlers {
                detect: DetectJobs {
                    media: media.clone(),
                    detector: detector.clone(),
                    recorder: recorder.clone(),
                    limits: config.uploads,
                },
                video: VideoJobs {
                    videos: videos.clone(),
                    detector: detector.clone(),
                    recorder: recorder.clone(),
                    users: auth.users.clone(),
                    tools,
                    cooldown: crate::capture::spec::DEFAULT_COOLDOWN,
                },
                webhook: Arc::new(WebhookDeliveries::new(
                    webhooks.webhooks.clone(),
                    recorder.alarms.clone(),
                    webhooks.log.clone(),
                    signer.clone(),
                    config.webhooks,
                )),
            }),
            holder: instance_id.clone(),
            db: db.clone(),
            users: auth.users.clone(),
        };
        // Leased cameras renew on the instance heartbeat and lapse after
        // three missed ones, like the instance's WebSocket clients.
        let camera_leases = config
            .capture
            .leases
            .enabled()
            .then(|| CameraLeases::new(&db, &instance_id, config.hub.instance_heartbeat));
        let cameras = Cameras::for_instance(
            CaptureDeps {
                detector: detector.clone(),
                sink: Arc::new(RecorderSink(recorder.clone())),
                ffmpeg: config.capture.ffmpeg.clone(),
            },
            &instance_id,
            camera_leases,
        );
        // The queue first: a job's image only ever becomes a detection's, so
        // asked in this order an image moving from one to the other is seen.
        let media_holders: Vec<Arc<dyn MediaReferences>> = vec![
            Arc::new(job_queue.clone()),
            Arc::new(recorder.detections.clone()),
            Arc::new(people.faces.clone()),
            Arc::new(PhotoImages(telemetry.photos.clone())),
            Arc::new(visitor_service.visitors.clone()),
        ];
        let retention = Retention {
            db: db.clone(),
            media: media.clone(),
            holders: media_holders.clone(),
            settings: config.retention,
            cameras: Arc::new(CameraDays(cameras.clone())),
            readiness: readiness.clone(),
        };
        let sweeper = sweep_orphans_when_ready(
            media.clone(),
            folder,
            (videos.clone(), job_queue.clone()),
            media_holders,
            readiness.clone(),
        );
        let hub = Hub::new(
            &db,
            config.hub.clone(),
            &instance_id,
            signer.clone(),
            auth.clone(),
            ingest.clone(),
        );
        let first_alarm_stream = if migrated { hub.prepare().await } else { None };
        // Subscribed before anything can raise an alarm.
        let dispatch_task = dispatcher.start(&alarm_bus);
        // Before the hub takes the bus: no alarm is raised before this.
        let mqtt_alarms = config.mqtt.as_ref().map(|_| alarm_bus.subscribe());
        let mqtt_gallery = people.gallery.clone();
        let mut hub_tasks = hub.start(alarm_bus, first_alarm_stream);
        hub_tasks.push(dispatch_task);
        hub_tasks.extend(crate::telemetry::live::start(hub.clone(), telemetry.clone(), &db, migrated).await);
        hub_tasks.push(crate::jobs::live::start(hub.clone(), job_queue.clone(), &db, migrated).await);
        let services = Services {
            auth: web::Data::new(auth),
            uploads: web::Data::new(uploads),
            recorder: web::Data::new(recorder),
            signer: web::Data::new(signer),
            media: web::Data::new(media),
            hub: web::Data::new(hub),
            cameras: web::Data::new(cameras),
            readiness: web::Data::new(readiness),
            detector: web::Data::new(detector),
            recognizer: web::Data::new(recognizer),
            people: web::Data::new(people),
            telemetry: web::Data::new(telemetry),
            assets: web::Data::new(assets),
            limits: web::Data::new(config.uploads),
            jobs: web::Data::new(jobs),
            ingest: web::Data::new(ingest),
            webhooks: web::Data::new(webhooks),
            alarm_rules: web::Data::new(alarm_rules),
            storage: web::Data::new(storage),
            search: web::Data::new(search),
            visitors: web::Data::new(visitor_service),
            audit: web::Data::new(audit),
        };

        let listener = TcpListener::bind(config.bind).map_err(|source| StartupError::Bind {
            addr: config.bind,
            source,
        })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Bind {
                addr: config.bind,
                source,
            })?
            .port();
        let app_services = services.clone();
        let server = HttpServer::new(move || {
            let app = App::new()
                .wrap(from_fn(api::db_gate::database_gate))
                .wrap(from_fn(api::request_metrics::request_metrics))
                .wrap(from_fn(api::request_span::request_span))
                .into_utoipa_app();
            api::routes(app_services.register(app)).into_app()
        })
        .workers(config.workers)
        .shutdown_timeout(config.shutdown_timeout.as_secs());
        let scheme = if tls.is_some() { "https" } else { "http" };
        let server = match tls {
            Some(tls) => server.listen_rustls_0_23(listener, tls),
            None => server.listen(listener),
        }
        .map_err(|source| StartupError::Bind {
            addr: config.bind,
            source,
        })?
        .run();
        tracing::info!(address = %config.bind, port, scheme, "listening");

        let mqtt = config.mqtt.as_ref().zip(mqtt_alarms).map(|(settings, alarms)| {
            Mqtt::start(
                settings,
                port,
                MqttSources {
                    alarms,
                    cameras: services.cameras.get_ref().clone(),
                    gallery: mqtt_gallery,
                    signer: services.signer.get_ref().clone(),
                },
            )
        });

        // Ids were checked unique in config; a source that cannot be opened
        // shows in the camera's status, it never stops the server. Leased
        // cameras start on standby and capture once their lease is taken.
        for spec in &config.capture.cameras {
            if let Err(err) = services.cameras.add(spec.clone()) {
                tracing::error!(camera = %spec.id, error = %err, "camera not started");
            }
        }

        let mut background = vec![
            tokio::spawn(monitor.run()),
            tokio::spawn(limiter.evict_forever(Duration::from_secs(60))),
            tokio::spawn(sweeper),
            tokio::spawn(retention.run()),
            tokio::spawn(gallery_sync.run(first_gallery_streams)),
            // Until it has loaded, lookups read the database.
            tokio::spawn(
                DirectorySync {
                    db: db.clone(),
                    directory: auth_directory,
                }
                .run(None),
            ),
        ];
        background.push(tokio::spawn(
            disk_guard.run().instrument(tracing::info_span!("disk_guard")),
        ));
        background.extend(hub_tasks);
        background.extend(workers.clone().start());
        Ok(Self {
            port,
            server,
            background,
            services,
            db,
            workers,
            mqtt,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The services the handlers use (tests reach the database and the hub through them).
    pub fn services(&self) -> &Services {
        &self.services
    }

    /// Serves until SIGINT/SIGTERM (or the server handle stops it), then lets
    /// in-flight requests finish within the configured shutdown timeout.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        // Before the cameras stop: their cameras stay announced, shown
        // unavailable by `offline`, instead of withdrawn on every restart.
        if let Some(mqtt) = self.mqtt {
            mqtt.shutdown().await;
        }
        // Before the runtime goes away: every ffmpeg child killed and reaped.
        self.services.cameras.shutdown().await;
        self.services.hub.shutdown().await;
        for task in &self.background {
            task.abort();
        }
        for task in self.background {
            let _ = task.await;
        }
        // The workers have stopped: their jobs go back to the queue now
        // rather than when their leases expire.
        self.workers.release().await;
        // A request cancelled mid-transaction (by the shutdown timeout, or
        // the database gate) leaves the driver a task that aborts it; run on
        // a runtime that is going away, that task finds the connection pool
        // gone and panics inside the driver. The driver's own shutdown waits
        // for such tasks while the runtime still runs them; bounded, since it
        // also waits for the database when it is away.
        if tokio::time::timeout(DRIVER_SHUTDOWN, self.db.client().clone().shutdown())
            .await
            .is_err()
        {
            tracing::warn!(timeout = ?DRIVER_SHUTDOWN, "database driver did not shut down in time");
        }
        tracing::info!("stopped");
        result
    }
}

/// Applies migrations now when the database answers, so that a broken
/// migration history stops startup; when the database is down, vigil serves
/// anyway and the health monitor migrates once it is reachable.
async fn migrate_if_reachable(
    db: &Database,
    migrations: &MigrationSet,
    instance_id: &str,
    config: &Config,
) -> Result<bool, StartupError> {
    let timeout = config.database.server_selection_timeout;
    match tokio::time::timeout(timeout, db.ping()).await {
        Ok(Ok(())) => {
            let report = Migrator::new(db, migrations, instance_id).run().await?;
            tracing::info!(applied = ?report.applied, already_applied = report.already_applied.len(), "migrations checked");
            Ok(true)
        }
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "database not reachable at startup; serving and retrying in the background");
            Ok(false)
        }
        Err(_) => {
            tracing::warn!(
                ?timeout,
                "database did not answer at startup; serving and retrying in the background"
            );
            Ok(false)
        }
    }
}

/// At startup, then hourly: removes the folder store's temp files of
/// writes whose process died (and the video store's), and, once the
/// database is ready, orphan images (older than an hour, referenced by no
/// job, detection, enrolled face or telemetry photo) and videos no queued
/// or running job needs (older than an hour).
async fn sweep_orphans_when_ready(
    media: SharedMediaStore,
    folder: Option<Arc<FileStore>>,
    (videos, queue): (Arc<VideoStore>, JobQueue),
    holders: Vec<Arc<dyn MediaReferences>>,
    readiness: Readiness,
) {
    const AGE: Duration = Duration::from_secs(3600);
    let mut ready = readiness.subscribe();
    loop {
        if let Some(folder) = &folder {
            if let Err(err) = folder.remove_abandoned_writes().await {
                tracing::warn!(error = %err, "could not remove abandoned temp files; retrying in an hour");
            }
        }
        if let Err(err) = videos.remove_abandoned().await {
            tracing::warn!(error = %err, "could not remove abandoned video files; retrying in an hour");
        }
        if ready.wait_for(|s| *s == ReadyState::Ready).await.is_err() {
            return;
        }
        if let Err(err) = sweep_orphans(&media, &holders, AGE).await {
            tracing::warn!(error = %err, "orphan sweep failed; retrying in an hour");
        }
        if let Err(err) = crate::jobs::sweep_orphan_videos(&videos, &queue, AGE).await {
            tracing::warn!(error = %err, "orphan video sweep failed; retrying in an hour");
        }
        tokio::time::sleep(AGE).await;
    }
}
