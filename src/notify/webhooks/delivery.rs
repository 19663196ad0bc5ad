//! One attempt at delivering an alarm to a webhook, as a job of the queue:
//! the webhook and the alarm read again (either may be gone), the address
//! checked again, the body signed with a fresh timestamp, the answer
//! written to the delivery log. 2xx is delivered; any other answer, a
//! refused address, a network error or no answer within 10 s is retried
//! as the queue's policy for webhooks says (backoff, for up to an hour).

use std::time::Instant;

use chrono::Utc;
use futures_util::future::BoxFuture;
use mongodb::bson::oid::ObjectId;
use reqwest::header::CONTENT_TYPE;
use vigil_wire::jobs::JobError;
use vigil_wire::webhooks::{
    WebhookPayload, DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};
use vigil_wire::ErrorCode;

use super::repository::DeliveryRecord;
use super::{
    address, signature, DeliveryLog, DeliveryOutcome, Webhook, WebhookError, WebhookEvent, WebhookId,
    WebhookScope, WebhookSettings, Webhooks, DELIVERY_TIMEOUT,
};
use crate::alarms::{AlarmScope, Alarms};
use crate::jobs::{JobId, JobResult, KindHandler, Payload, Run, Stop};
use crate::media::signed::UrlSigner;

pub struct WebhookDeliveries {
    pub webhooks: Webhooks,
    pub alarms: Alarms,
    pub log: DeliveryLog,
    /// Signs the alarm's image URL, as the API does.
    pub signer: UrlSigner,
    http: reqwest::Client,
    allow_private: bool,
}

impl WebhookDeliveries {
    pub fn new(
        webhooks: Webhooks,
        alarms: Alarms,
        log: DeliveryLog,
        signer: UrlSigner,
        settings: WebhookSettings,
    ) -> Self {
        Self {
            webhooks,
            alarms,
            log,
            signer,
            http: address::client(settings.allow_private),
            allow_private: settings.allow_private,
        }
    }

    async fn deliver(&self, run: &Run<'_>) -> Result<JobResult, Stop> {
        let job = run.job;
        let Payload::Webhook { webhook, alarm } = &job.payload else {
            return Err(Stop::failed(ErrorCode::Internal, "not a webhook delivery"));
        };
        let Some(hook) = self.webhooks.get(WebhookScope::All, WebhookId(*webhook)).await? else {
            return Err(Stop::failed(ErrorCode::NotFound, "the webhook was deleted"));
        };
        let Some(alarm) = self.alarms.get(AlarmScope::All, *alarm).await? else {
            return Err(Stop::failed(ErrorCode::NotFound, "the alarm was deleted"));
        };
        let payload = WebhookPayload {
            event: WebhookEvent::Alarm,
            webhook_id: hook.id.to_string(),
            delivery_id: job.id.to_string(),
            alarm: alarm.view(&self.signer),
        };
        let body =
            serde_json::to_vec(&payload).map_err(|e| Stop::failed(ErrorCode::Internal, e.to_string()))?;
        let at = Utc::now();
        let started = Instant::now();
        let answer = self.send(&hook, job.id, at.timestamp(), body).await;
        let took = started.elapsed();
        ::metrics::histogram!("vigil_webhook_delivery_seconds").record(took.as_secs_f64());

        let (status, error) = match answer {
            Ok(status) => (Some(status), None),
            Err(error) => (None, Some(error)),
        };
        let delivered = status.is_some_and(|s| (200..300).contains(&s));
        let retry = if delivered { None } else { run.retry_delay() };
        let outcome = match (delivered, retry) {
            (true, _) => DeliveryOutcome::Delivered,
            (false, Some(_)) => DeliveryOutcome::Retry,
            (false, None) => DeliveryOutcome::GaveUp,
        };
        ::metrics::counter!("vigil_webhook_deliveries_total", "outcome" => outcome.as_str()).increment(1);
        let entry = DeliveryRecord {
            id: ObjectId::new(),
            webhook_id: hook.id,
            user_id: hook.user_id,
            delivery_id: job.id.0,
            event: WebhookEvent::Alarm,
            alarm_id: alarm.id,
            attempt: job.attempts,
            at: crate::db::paging::bson_precision(at),
            duration_ms: took.as_secs_f64() * 1000.0,
            status,
            error: error.clone(),
            outcome,
        };
        if let Err(err) = self.log.append(&entry).await {
            tracing::warn!(error = %err, "could not write the delivery log");
        }
        tracing::info!(
            webhook = %hook.id,
            alarm = %alarm.id,
            attempt = job.attempts,
            status,
            error = error.as_deref(),
            outcome = outcome.as_str(),
            ?took,
            "webhook delivery attempted"
        );
        if delivered {
            return Ok(JobResult::default());
        }
        let message = match (status, error) {
            (Some(status), _) => format!("the receiver answered {status}"),
            (None, Some(error)) => error,
            (None, None) => "no answer".to_owned(),
        };
        let error = JobError {
            code: ErrorCode::WebhookDeliveryFailed,
            message,
        };
        Err(match retry {
            Some(delay) => Stop::RetryIn(error, delay),
            None => Stop::Failed(error),
        })
    }

    /// POSTs the body; the receiver's status, or why there is none.
    async fn send(
        &self,
        hook: &Webhook,
        delivery: JobId,
        timestamp: i64,
        body: Vec<u8>,
    ) -> Result<u16, String> {
        let url =
            reqwest::Url::parse(&hook.url).map_err(|e| format!("the stored URL does not parse: {e}"))?;
        address::check_literal(&url, self.allow_private).map_err(|e| e.to_string())?;
        let signature = signature::sign(&hook.secret, timestamp, &body);
        let response = self
            .http
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signature)
            .header(EVENT_HEADER, WebhookEvent::Alarm.as_str())
            .header(DELIVERY_HEADER, delivery.to_string())
            .body(body)
            .send()
            .await
            .map_err(describe)?;
        Ok(response.status().as_u16())
    }
}

impl KindHandler for WebhookDeliveries {
    fn run<'a>(&'a self, run: &'a Run<'a>) -> BoxFuture<'a, Result<JobResult, Stop>> {
        Box::pin(self.deliver(run))
    }
}

/// A failed request in words: the guard's refusal as it is, otherwise
/// reqwest's error with its causes (which say "connection refused").
fn describe(err: reqwest::Error) -> String {
    if err.is_timeout() {
        return format!("no answer within {} s", DELIVERY_TIMEOUT.as_secs());
    }
    let mut text = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<WebhookError>() {
            return refused.to_string();
        }
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
