//! Alarms raised on this instance, turned into deliveries: one job per
//! webhook that wants the alarm. Every alarm is raised on exactly one
//! instance, so each is queued once; the unique key on (alarm, webhook)
//! makes a second try of the same pair harmless.

use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tracing::Instrument;

use super::{Webhook, WebhookEvent, Webhooks};
use crate::alarms::{Alarm, AlarmBus};
use crate::detections::Source;
use crate::jobs::{Enqueued, JobQueue, NewJob, Payload};
use crate::users::{UserId, Users};

/// Tries at queueing one alarm's deliveries while the database is away.
const TRIES: u32 = 5;
const PAUSE: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct Dispatcher {
    pub webhooks: Webhooks,
    pub queue: JobQueue,
    pub users: Users,
}

impl Dispatcher {
    /// Follows the bus until it closes.
    pub fn start(self, bus: &AlarmBus) -> tokio::task::JoinHandle<()> {
        let mut alarms = bus.subscribe();
        tokio::spawn(
            async move {
                loop {
                    match alarms.recv().await {
                        Ok(alarm) => self.dispatch(&alarm).await,
                        Err(RecvError::Lagged(missed)) => {
                            tracing::warn!(missed, "alarm bus overflowed: these alarms reach no webhook")
                        }
                        Err(RecvError::Closed) => return,
                    }
                }
            }
            .instrument(tracing::info_span!("webhook_dispatch")),
        )
    }

    /// Queues the alarm for each webhook that wants it: its owner's, or
    /// every admin's for an alarm without owner (a camera's), as admins are
    /// who see those.
    pub async fn dispatch(&self, alarm: &Alarm) {
        for attempt in 1..=TRIES {
            match self.queue_deliveries(alarm).await {
                Ok(0) => return,
                Ok(queued) => {
                    tracing::debug!(alarm = %alarm.id, queued, "alarm queued for webhooks");
                    return;
                }
                Err(err) if attempt < TRIES => {
                    tracing::debug!(alarm = %alarm.id, error = %err, "cannot queue webhook deliveries yet");
                    tokio::time::sleep(PAUSE * attempt).await;
                }
                Err(err) => {
                    tracing::warn!(alarm = %alarm.id, error = %err, "alarm not queued for its webhooks");
                }
            }
        }
    }

    async fn queue_deliveries(&self, alarm: &Alarm) -> Result<usize, String> {
        let owners: Vec<UserId> = match alarm.user_id {
            Some(owner) => vec![owner],
            None => self.users.admin_ids().await.map_err(|e| e.to_string())?,
        };
        if owners.is_empty() {
            return Ok(0);
        }
        let webhooks = self
            .webhooks
            .subscribed(&owners, WebhookEvent::Alarm)
            .await
            .map_err(|e| e.to_string())?;
        let mut queued = 0;
        for webhook in &webhooks {
            if self.enqueue(webhook, alarm).await.map_err(|e| e.to_string())? == Enqueued::New {
                queued += 1;
            }
        }
        Ok(queued)
    }

    async fn enqueue(&self, webhook: &Webhook, alarm: &Alarm) -> Result<Enqueued, crate::db::DbError> {
        self.queue
            .enqueue(NewJob {
                user: webhook.user_id,
                source: Source::parse("webhook").expect("a valid label"),
                payload: Payload::Webhook {
                    webhook: webhook.id.0,
                    alarm: alarm.id,
                },
            })
            .await
    }
}
