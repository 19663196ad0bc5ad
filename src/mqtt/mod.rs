//! Alarms on an MQTT broker, with Home Assistant discovery (`--mqtt-url`).
//!
//! ```text
//! AlarmBus ─┐
//! Cameras ──┼▶ publisher ─▶ outbox (alarms: bounded FIFO; retained state: latest per topic)
//! Gallery ──┘                 │
//!                             ▼
//!                 feeder ─▶ rumqttc client ◀─ driver (event loop: connect, backoff, acks)
//! ```
//!
//! - [`settings`]: the broker URL (its password never printed), topic prefixes, client id.
//! - [`topics`]: every topic name.
//! - [`outbox`]: what waits for the broker, the queue limit and its drops.
//! - [`connection`]: the connection, reconnects, the last will.
//! - [`publisher`]: alarms, camera status, "face present", subjects' last sightings.
//! - [`discovery`]: Home Assistant's config messages.
//!
//! docs/mqtt.md describes the topics and payloads for users.

mod connection;
mod discovery;
mod outbox;
mod publisher;
pub mod settings;
mod topics;

use std::time::{Duration, Instant};

use tokio::sync::broadcast;
use tokio::task::JoinHandle;

pub use settings::{ClientId, MqttSettings, MqttUrl, MqttUrlError, TopicError, TopicPrefix};

use crate::alarms::Alarm;
use crate::capture::Cameras;
use crate::media::signed::UrlSigner;
use crate::people::Gallery;
use connection::Connection;
use outbox::Outbox;
use publisher::Publisher;
use topics::Topics;

/// How long a clean shutdown waits for the queue and `offline` to reach the broker.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(3);

/// What the publisher reads.
pub struct MqttSources {
    /// Subscribed before any alarm can be raised, so none is missed.
    pub alarms: broadcast::Receiver<Alarm>,
    pub cameras: Cameras,
    pub gallery: Gallery,
    pub signer: UrlSigner,
}

/// The running publisher and its connection.
pub struct Mqtt {
    client_id: ClientId,
    availability: String,
    outbox: Outbox,
    connection: Connection,
    publisher: JoinHandle<()>,
}

impl Mqtt {
    /// Starts publishing; the broker need not be up (alarms wait for it, up
    /// to the queue limit). `port`: the HTTP port, for the default client id.
    pub fn start(settings: &MqttSettings, port: u16, sources: MqttSources) -> Self {
        let client_id = settings
            .client_id
            .clone()
            .unwrap_or_else(|| ClientId::derived(port));
        let topics = Topics::new(&settings.prefix, &client_id, settings.discovery_prefix.as_ref());
        let availability = topics.availability();
        let outbox = Outbox::new(settings.queue_limit);
        tracing::info!(
            broker = %settings.url,
            client_id = client_id.as_str(),
            prefix = settings.prefix.as_str(),
            discovery = settings.discovery_prefix.as_ref().map(TopicPrefix::as_str).unwrap_or("off"),
            queue_limit = settings.queue_limit,
            "publishing alarms on MQTT"
        );
        let connection = Connection::start(&settings.url, &client_id, availability.clone(), outbox.clone());
        let publisher = tokio::spawn(
            Publisher {
                topics,
                outbox: outbox.clone(),
                alarms: sources.alarms,
                cameras: sources.cameras,
                gallery: sources.gallery,
                signer: sources.signer,
            }
            .run(),
        );
        Self {
            client_id,
            availability,
            outbox,
            connection,
            publisher,
        }
    }

    pub fn client_id(&self) -> &ClientId {
        &self.client_id
    }

    /// Stops publishing; while the broker is there, sends what is queued
    /// and `offline` (within a few seconds), then disconnects, which leaves
    /// the last will unsent.
    pub async fn shutdown(self) {
        self.publisher.abort();
        let _ = self.publisher.await;
        let mut driver = self.connection.driver;
        if !*self.connection.connected.borrow() {
            // The broker is away: nothing can be sent now.
            self.connection.feeder.abort();
            driver.abort();
            return;
        }
        let deadline = Instant::now() + SHUTDOWN_FLUSH;
        self.outbox
            .set(self.availability.clone(), connection::OFFLINE.to_vec());
        while !(self.outbox.is_idle() && self.outbox.unacked() == 0) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if !self.outbox.is_idle() || self.outbox.unacked() > 0 {
            tracing::warn!("the MQTT broker did not take everything before shutdown");
        }
        let _ = self.connection.client.disconnect().await;
        self.connection.feeder.abort();
        // The driver ends once the disconnect is out.
        if tokio::time::timeout(Duration::from_secs(1), &mut driver)
            .await
            .is_err()
        {
            driver.abort();
        }
    }
}
