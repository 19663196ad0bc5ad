//! Following a collection's change stream for as long as the process runs:
//! reopened after an error from the last resume token, so a blip loses
//! nothing, or from now when the server no longer knows that token.

use std::future::Future;
use std::time::Duration;

use futures_util::StreamExt;
use mongodb::bson::Document;
use mongodb::change_stream::event::{ChangeStreamEvent, ResumeToken};
use mongodb::change_stream::ChangeStream;
use mongodb::Collection;

use super::DbError;

pub type Changes = ChangeStream<ChangeStreamEvent<Document>>;

/// Opens the stream of the changes `pipeline` keeps.
pub async fn open(
    collection: &Collection<Document>,
    pipeline: &[Document],
    resume: Option<ResumeToken>,
) -> Result<Changes, DbError> {
    collection
        .watch()
        .pipeline(pipeline.to_vec())
        .resume_after(resume)
        .await
        .map_err(DbError::from_driver)
}

/// Hands every change to `on_change`, in order, forever. `first` is a
/// stream opened before the caller started serving (so that nothing from
/// then on is missed); without one the stream is opened here, retried with
/// a backoff while the database is away.
pub async fn follow<F, Fut>(
    collection: Collection<Document>,
    pipeline: Vec<Document>,
    mut first: Option<Changes>,
    mut on_change: F,
) where
    F: FnMut(ChangeStreamEvent<Document>) -> Fut,
    Fut: Future<Output = ()>,
{
    const MAX_BACKOFF: Duration = Duration::from_secs(30);
    let mut backoff = Duration::from_millis(250);
    let mut resume: Option<ResumeToken> = None;
    loop {
        let opened = match first.take() {
            Some(stream) => Ok(stream),
            None => open(&collection, &pipeline, resume.clone()).await,
        };
        let mut stream = match opened {
            Ok(stream) => stream,
            Err(err) => {
                if resume.take().is_some() {
                    tracing::warn!(error = %err, "cannot resume; following from now on");
                } else {
                    tracing::debug!(error = %err, ?backoff, "cannot open the change stream yet; retrying");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        while let Some(event) = stream.next().await {
            match event {
                Ok(event) => {
                    resume = stream.resume_token();
                    backoff = Duration::from_millis(250);
                    on_change(event).await;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "change stream failed; reopening");
                    break;
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}
