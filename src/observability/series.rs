//! Every series vigil exports: its name, what it means, and the buckets of
//! the histograms. Modules record with the `::metrics` macros and these
//! names, so that `docs/metrics.md` and the Grafana dashboard have one
//! list to follow.

use metrics::{describe_counter, describe_gauge, describe_histogram};

// HTTP (src/api/request_metrics.rs).
pub const HTTP_REQUESTS: &str = "vigil_http_requests_total";
pub const HTTP_REQUEST_DURATION: &str = "vigil_http_request_duration_seconds";

// Detector and recognizer (src/vision/slots.rs), and detector slots (scraped).
pub const DETECTOR_DURATION: &str = "vigil_detector_duration_seconds";
pub const DETECTOR_QUEUE_WAIT: &str = "vigil_detector_queue_wait_seconds";
pub const RECOGNIZER_DURATION: &str = "vigil_recognizer_duration_seconds";
pub const RECOGNIZER_QUEUE_WAIT: &str = "vigil_recognizer_queue_wait_seconds";
pub const DETECTOR_SLOTS: &str = "vigil_detector_slots";
pub const DETECTOR_SLOTS_FREE: &str = "vigil_detector_slots_free";

// WebSocket hub (src/hub/).
pub const WS_SESSIONS: &str = "vigil_ws_sessions";
pub const WS_SLOW_CLIENTS_DROPPED: &str = "vigil_ws_slow_clients_dropped_total";
pub const WS_LOG_ENTRIES: &str = "vigil_ws_log_entries_total";
pub const WS_LOG_SPILLED: &str = "vigil_ws_log_spilled_entries";

// MongoDB (src/db/command_events.rs).
pub const DB_COMMAND_ERRORS: &str = "vigil_db_command_errors_total";
pub const DB_COMMAND_DURATION: &str = "vigil_db_command_duration_seconds";

// Cameras (scraped from their status).
pub const CAMERA_FRAMES_CAPTURED: &str = "vigil_camera_frames_captured_total";
pub const CAMERA_FRAMES_PROCESSED: &str = "vigil_camera_frames_processed_total";
pub const CAMERA_FRAMES_DROPPED: &str = "vigil_camera_frames_dropped_total";
pub const CAMERA_ALARMS: &str = "vigil_camera_alarms_total";
pub const CAMERA_RESTARTS: &str = "vigil_camera_restarts_total";
pub const CAMERA_STATE: &str = "vigil_camera_state";
pub const CAMERA_LAST_FRAME: &str = "vigil_camera_last_frame_timestamp_seconds";
pub const CAMERAS: &str = "vigil_cameras";

// Jobs: the queue's depth is scraped, the rest is this instance's workers.
pub const JOBS: &str = "vigil_jobs";
pub const JOBS_RUNNING: &str = "vigil_jobs_running";
pub const JOBS_LOST: &str = "vigil_jobs_lost_total";
pub const JOBS_ENDED: &str = "vigil_jobs_ended_total";
pub const JOB_DURATION: &str = "vigil_job_duration_seconds";

// The process (scraped from /proc).
pub const PROCESS_RESIDENT_MEMORY: &str = "process_resident_memory_bytes";
pub const PROCESS_THREADS: &str = "process_threads";
pub const PROCESS_OPEN_FDS: &str = "process_open_fds";

// MQTT (src/mqtt/).
pub const MQTT_MESSAGES: &str = "vigil_mqtt_messages_total";
pub const MQTT_CONNECTED: &str = "vigil_mqtt_connected";
pub const MQTT_QUEUED: &str = "vigil_mqtt_queued";

// Webhooks.
pub const WEBHOOK_DELIVERIES: &str = "vigil_webhook_deliveries_total";
pub const WEBHOOK_DELIVERY_DURATION: &str = "vigil_webhook_delivery_seconds";

// Retention and the disk guard.
pub const RETENTION_DELETED: &str = "vigil_retention_deleted_total";
pub const STORAGE_PAUSED: &str = "vigil_storage_paused";
pub const DISK_FREE: &str = "vigil_disk_free_bytes";

/// Latencies of work done for a request, from a few milliseconds (a small
/// upload's detection) to the longest a client waits.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Waits for a detector or recognizer slot: zero when idle, so the lowest
/// buckets tell "no queue" from "a short one".
pub const QUEUE_WAIT_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// One MongoDB command: sub-millisecond on a local server.
pub const DB_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];
/// A job runs from a second (an image) to an hour (a long video).
pub const JOB_BUCKETS: &[f64] = &[0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0];

/// The buckets of each histogram; any other is given [`LATENCY_BUCKETS`].
pub const HISTOGRAM_BUCKETS: &[(&str, &[f64])] = &[
    (HTTP_REQUEST_DURATION, LATENCY_BUCKETS),
    (DETECTOR_DURATION, LATENCY_BUCKETS),
    (RECOGNIZER_DURATION, LATENCY_BUCKETS),
    (DETECTOR_QUEUE_WAIT, QUEUE_WAIT_BUCKETS),
    (RECOGNIZER_QUEUE_WAIT, QUEUE_WAIT_BUCKETS),
    (DB_COMMAND_DURATION, DB_BUCKETS),
    (JOB_DURATION, JOB_BUCKETS),
    (WEBHOOK_DELIVERY_DURATION, LATENCY_BUCKETS),
];

/// Gives every series its HELP text in the current recorder.
pub fn describe() {
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by method, route pattern and status."
    );
    describe_histogram!(
        HTTP_REQUEST_DURATION,
        "Time from a request's arrival to its answer, by method and route pattern."
    );
    describe_histogram!(
        DETECTOR_DURATION,
        "Time one face detection ran (decoding included)."
    );
    describe_histogram!(
        DETECTOR_QUEUE_WAIT,
        "Time a detection waited for a free detector slot."
    );
    describe_histogram!(RECOGNIZER_DURATION, "Time one face embedding call ran.");
    describe_histogram!(
        RECOGNIZER_QUEUE_WAIT,
        "Time an embedding call waited for a free recognizer slot."
    );
    describe_gauge!(DETECTOR_SLOTS, "Detections that may run at once.");
    describe_gauge!(DETECTOR_SLOTS_FREE, "Detection slots free right now.");
    describe_gauge!(WS_SESSIONS, "WebSocket sessions open on this instance.");
    describe_counter!(
        WS_SLOW_CLIENTS_DROPPED,
        "WebSocket clients closed with 1013 because their queue was full."
    );
    describe_counter!(
        WS_LOG_ENTRIES,
        "Message log entries, by outcome: written to ws_messages, spilled to the local file while the database fell behind, or dropped."
    );
    describe_gauge!(
        WS_LOG_SPILLED,
        "Message log entries waiting in the local spill file for the database."
    );
    describe_counter!(
        DB_COMMAND_ERRORS,
        "MongoDB commands that failed, by command name."
    );
    describe_histogram!(
        DB_COMMAND_DURATION,
        "Time of one MongoDB command, by command name."
    );
    describe_counter!(CAMERA_FRAMES_CAPTURED, "Frames read from the camera's source.");
    describe_counter!(CAMERA_FRAMES_PROCESSED, "Frames searched for faces.");
    describe_counter!(
        CAMERA_FRAMES_DROPPED,
        "Frames replaced by a newer one before detection."
    );
    describe_counter!(CAMERA_ALARMS, "Alarms raised by the camera.");
    describe_counter!(
        CAMERA_RESTARTS,
        "Times the camera's source was reopened after a failure."
    );
    describe_gauge!(CAMERA_STATE, "1 for the camera's current state.");
    describe_gauge!(CAMERA_LAST_FRAME, "Unix time of the camera's last frame.");
    describe_gauge!(CAMERAS, "Cameras configured.");
    describe_gauge!(JOBS, "Jobs in the queue (every instance's), by state.");
    describe_gauge!(JOBS_RUNNING, "Jobs this instance's workers are running.");
    describe_counter!(
        JOBS_LOST,
        "Jobs stopped here because they were cancelled or taken over."
    );
    describe_counter!(JOBS_ENDED, "Jobs that ended here, by kind and outcome.");
    describe_histogram!(JOB_DURATION, "Time from a job's start here to its end, by kind.");
    describe_gauge!(PROCESS_RESIDENT_MEMORY, "Resident memory size in bytes.");
    describe_gauge!(PROCESS_THREADS, "OS threads of the process.");
    describe_gauge!(PROCESS_OPEN_FDS, "Open file descriptors.");
    describe_counter!(
        MQTT_MESSAGES,
        "MQTT messages published, or dropped while the broker was away."
    );
    describe_gauge!(MQTT_CONNECTED, "1 while the MQTT broker is connected.");
    describe_gauge!(MQTT_QUEUED, "MQTT messages waiting for the broker.");
    describe_counter!(WEBHOOK_DELIVERIES, "Webhook delivery attempts, by outcome.");
    describe_histogram!(WEBHOOK_DELIVERY_DURATION, "Time of one webhook delivery attempt.");
    describe_counter!(RETENTION_DELETED, "Records deleted by retention, by kind.");
    describe_gauge!(
        STORAGE_PAUSED,
        "1 while images are not stored because the disk is nearly full."
    );
    describe_gauge!(DISK_FREE, "Free bytes in the data directory's file system.");
}
