//! `vigil client fib N`: one `fib` command over the hub; the answer goes to
//! this session only.

use std::time::Duration;

use serde_json::{json, Value};
use vigil_wire::hub::{ClientMessage, FibN, ServerMessage};

use super::api::ApiClient;
use super::error::ClientError;
use super::ws::{Heard, HubSession, HubTarget};

#[derive(Debug, clap::Args)]
pub struct FibArgs {
    /// Which Fibonacci number (F(0) = 0, F(1) = 1); the server caps n (VIGIL_FIB_MAX_N, default 100000).
    pub n: u64,

    /// Print `{"n": N, "value": "…"}` instead of the bare number.
    #[arg(long)]
    pub json: bool,
}

/// Longest wait for the answer (F(100000) takes milliseconds; a server
/// configured for far larger n may take seconds).
const ANSWER_WITHIN: Duration = Duration::from_secs(120);

/// F(n) as the server computes it, as a decimal string.
pub async fn compute(api: &ApiClient, n: u64) -> Result<String, ClientError> {
    let target = HubTarget { api, client_id: None };
    let mut session = HubSession::connect(&target).await?;
    let id = Value::from(format!("fib-{}", uuid::Uuid::new_v4().simple()));
    session
        .send(&ClientMessage::Fib {
            id: id.clone(),
            n: FibN::new(n),
        })
        .await?;
    let answer = tokio::time::timeout(ANSWER_WITHIN, async {
        loop {
            match session.next().await? {
                Heard::Message(ServerMessage::FibResult { id: got, value, .. }) if got == id => {
                    return Ok(value)
                }
                Heard::Error {
                    code,
                    message,
                    id: got,
                } if got == id => return Err(ClientError::Refused { code, message }),
                _ => {}
            }
        }
    })
    .await
    .map_err(|_| ClientError::WebSocket(format!("no answer within {} s", ANSWER_WITHIN.as_secs())))?;
    session.close().await;
    answer
}

pub async fn run(api: &ApiClient, args: FibArgs) -> Result<(), ClientError> {
    let value = compute(api, args.n).await?;
    if args.json {
        super::emit(&json!({"n": args.n, "value": value}).to_string());
    } else {
        super::emit(&value);
    }
    Ok(())
}
