//! The broker connection: one task drives rumqttc's event loop (connects,
//! reconnects with backoff, reads acknowledgements) and never has its poll
//! cancelled; another hands the outbox's messages to the client while the
//! broker is there, at most [`MAX_UNACKED`] unacknowledged at a time.
//! Messages the client took before a connection dropped are sent again by
//! rumqttc after the reconnect (QoS 1: at least once).

use std::time::Duration;

use rumqttc::{AsyncClient, ConnectionError, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, QoS};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::outbox::Outbox;
use super::settings::{ClientId, MqttUrl};

/// Messages in flight to the broker; the rest wait in the outbox, where
/// the queue limit applies.
pub const MAX_UNACKED: usize = 64;
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Alarms carry identities and a URL; discovery configs are small.
const MAX_PACKET: usize = 1 << 20;

pub const ONLINE: &[u8] = b"online";
pub const OFFLINE: &[u8] = b"offline";

pub struct Connection {
    pub client: AsyncClient,
    pub connected: watch::Receiver<bool>,
    pub driver: JoinHandle<()>,
    pub feeder: JoinHandle<()>,
}

impl Connection {
    /// Starts both tasks; the last will marks `availability` `offline`
    /// (retained) when vigil dies without a word.
    pub fn start(url: &MqttUrl, client_id: &ClientId, availability: String, outbox: Outbox) -> Self {
        let mut options = MqttOptions::new(client_id.as_str(), url.host.clone(), url.port);
        options
            .set_keep_alive(KEEP_ALIVE)
            .set_clean_session(true)
            .set_max_packet_size(MAX_PACKET, MAX_PACKET)
            .set_inflight(MAX_UNACKED as u16)
            .set_last_will(LastWill::new(
                availability.clone(),
                OFFLINE,
                QoS::AtLeastOnce,
                true,
            ));
        if let Some(user) = &url.username {
            options.set_credentials(user.clone(), url.password.clone().unwrap_or_default());
        }
        let (client, events) = AsyncClient::new(options, MAX_UNACKED);
        let (connected_tx, connected) = watch::channel(false);
        let driver = tokio::spawn(drive(
            events,
            url.to_string(),
            availability,
            outbox.clone(),
            connected_tx,
        ));
        let feeder = tokio::spawn(feed(client.clone(), outbox, connected.clone()));
        Self {
            client,
            connected,
            driver,
            feeder,
        }
    }
}

#[tracing::instrument(name = "mqtt_connection", skip_all, fields(broker = %broker))]
async fn drive(
    mut events: EventLoop,
    broker: String,
    availability: String,
    outbox: Outbox,
    connected: watch::Sender<bool>,
) {
    let mut backoff = FIRST_BACKOFF;
    let mut failures = 0u32;
    ::metrics::gauge!("vigil_mqtt_connected").set(0.0);
    loop {
        match events.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                tracing::info!("connected to the MQTT broker");
                backoff = FIRST_BACKOFF;
                failures = 0;
                // The broker may have lost every retained message (a restart
                // without persistence): all of them again, `online` included.
                outbox.set(availability.clone(), ONLINE.to_vec());
                outbox.resend_retained();
                ::metrics::gauge!("vigil_mqtt_connected").set(1.0);
                connected.send_replace(true);
            }
            Ok(Event::Incoming(Packet::PubAck(_))) => outbox.acknowledged(),
            Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                connected.send_replace(false);
                ::metrics::gauge!("vigil_mqtt_connected").set(0.0);
                tracing::info!("disconnected from the MQTT broker");
                return;
            }
            Ok(_) => {}
            Err(err) => {
                let was_connected = connected.send_replace(false);
                ::metrics::gauge!("vigil_mqtt_connected").set(0.0);
                failures += 1;
                report(&err, was_connected, failures, backoff);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Loud on the first failure and then every tenth, so a broker away for
/// a day does not fill the log.
fn report(err: &ConnectionError, was_connected: bool, failures: u32, retry_in: Duration) {
    let queued = "alarms are queued in memory up to --mqtt-queue-limit";
    if was_connected {
        tracing::warn!(error = %err, ?retry_in, "lost the MQTT broker; reconnecting ({queued})");
    } else if failures == 1 || failures.is_multiple_of(10) {
        tracing::warn!(error = %err, failures, ?retry_in, "cannot reach the MQTT broker; retrying ({queued})");
    } else {
        tracing::debug!(error = %err, failures, ?retry_in, "cannot reach the MQTT broker; retrying");
    }
}

#[tracing::instrument(name = "mqtt_feed", skip_all)]
async fn feed(client: AsyncClient, outbox: Outbox, mut connected: watch::Receiver<bool>) {
    loop {
        if *connected.borrow_and_update() {
            while outbox.unacked() < MAX_UNACKED {
                let Some(message) = outbox.next() else { break };
                match client.try_publish(
                    message.topic.clone(),
                    QoS::AtLeastOnce,
                    message.retain,
                    message.payload.clone(),
                ) {
                    Ok(()) => outbox.handed(),
                    Err(_) => {
                        // The request channel is full or closed: later.
                        outbox.put_back(message);
                        break;
                    }
                }
            }
        }
        tokio::select! {
            _ = outbox.wait() => {}
            changed = connected.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            // Acknowledgements free room without waking the outbox.
            _ = tokio::time::sleep(Duration::from_millis(100)), if outbox.unacked() >= MAX_UNACKED => {}
        }
    }
}
