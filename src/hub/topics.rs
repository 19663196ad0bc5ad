//! The sessions of this instance and fan-out to them.
//!
//! Every producer (clock, alarm feed, the session's own replies) hands a
//! frame to a session through its bounded queue with `try_send`: nothing
//! here ever waits for a client. A session whose queue is full is too slow;
//! it is told to close with 1013 and the producer moves on.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use bytes::Bytes;
use bytestring::ByteString;
use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, watch};
use vigil_wire::hub::{close, ClientId, Topic};

use crate::alarms::{Alarm, AlarmScope};
use crate::auth::Principal;
use crate::observability::series;
use crate::users::UserId;

/// Why the server ends a session (the WebSocket close code it sends).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closing {
    /// The client does not read fast enough.
    TooSlow,
    /// Too many bad messages in a row, or no `auth` when it is required.
    Policy,
    /// Messages kept coming over the rate limit ([`super::rate`]).
    Flood,
    /// The server is shutting down.
    GoingAway,
}

impl Closing {
    pub fn close_code(self) -> u16 {
        match self {
            Closing::TooSlow => close::TRY_AGAIN_LATER,
            Closing::Policy | Closing::Flood => close::POLICY,
            Closing::GoingAway => close::GOING_AWAY,
        }
    }
}

/// A topic as a bit of a session's subscription set.
fn bit(topic: Topic) -> u8 {
    match topic {
        Topic::Alarms => 1,
        Topic::Clock => 2,
        Topic::Telemetry => 4,
        Topic::Jobs => 8,
    }
}

/// A frame on its way to one client.
#[derive(Debug)]
pub enum Outgoing {
    Text(ByteString),
    Ping,
    Pong(Bytes),
}

/// Who the session belongs to once it has authenticated.
#[derive(Debug, Clone, Copy)]
pub struct Viewer {
    pub user_id: UserId,
    pub scope: AlarmScope,
}

impl Viewer {
    pub fn of(principal: &Principal) -> Self {
        Self {
            user_id: principal.user_id,
            scope: AlarmScope::of(principal),
        }
    }

    pub fn may_see(&self, alarm: &Alarm) -> bool {
        match self.scope {
            AlarmScope::All => true,
            AlarmScope::Owner(user) => alarm.user_id == Some(user),
        }
    }
}

/// The part of a session that producers can reach.
pub struct SessionHandle {
    /// Also the `_id` of its `ws_clients` row.
    pub session_id: String,
    pub client_id: ClientId,
    pub connected_at: DateTime<Utc>,
    pub remote_addr: Option<String>,
    pub viewer: OnceLock<Viewer>,
    topics: AtomicU8,
    out: mpsc::Sender<Outgoing>,
    closing: watch::Sender<Option<Closing>>,
}

impl SessionHandle {
    pub fn new(
        session_id: String,
        client_id: ClientId,
        remote_addr: Option<String>,
        queue: usize,
    ) -> (
        Arc<Self>,
        mpsc::Receiver<Outgoing>,
        watch::Receiver<Option<Closing>>,
    ) {
        let (out, rx) = mpsc::channel(queue.max(1));
        let (closing, closing_rx) = watch::channel(None);
        let handle = Arc::new(Self {
            session_id,
            client_id,
            connected_at: Utc::now(),
            remote_addr,
            viewer: OnceLock::new(),
            topics: AtomicU8::new(bit(Topic::Clock)),
            out,
            closing,
        });
        (handle, rx, closing_rx)
    }

    pub fn user_id(&self) -> Option<UserId> {
        self.viewer.get().map(|v| v.user_id)
    }

    pub fn wants(&self, topic: Topic) -> bool {
        self.topics.load(Ordering::Relaxed) & bit(topic) != 0
    }

    pub fn topics(&self) -> Vec<Topic> {
        Topic::ALL.into_iter().filter(|t| self.wants(*t)).collect()
    }

    pub fn subscribe(&self, topics: &[Topic]) {
        let bits = topics.iter().fold(0, |acc, t| acc | bit(*t));
        self.topics.fetch_or(bits, Ordering::Relaxed);
    }

    pub fn unsubscribe(&self, topics: &[Topic]) {
        let bits = topics.iter().fold(0, |acc, t| acc | bit(*t));
        self.topics.fetch_and(!bits, Ordering::Relaxed);
    }

    /// Queues a frame without waiting. False when the session is closing or
    /// was just found too slow (and told to close).
    pub fn push(&self, frame: Outgoing) -> bool {
        match self.out.try_send(frame) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                if self.close(Closing::TooSlow) {
                    ::metrics::counter!(series::WS_SLOW_CLIENTS_DROPPED).increment(1);
                    tracing::warn!(
                        session = %self.session_id,
                        client = %self.client_id,
                        queue = self.out.max_capacity(),
                        "WebSocket client too slow: its queue is full; closing it with 1013"
                    );
                }
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Asks the session to end; the first reason wins. True when this call decided it.
    pub fn close(&self, why: Closing) -> bool {
        self.closing.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(why);
                true
            } else {
                false
            }
        })
    }
}

#[derive(Default)]
pub struct Registry {
    sessions: RwLock<HashMap<u64, Arc<SessionHandle>>>,
    next: AtomicU64,
}

impl Registry {
    pub fn insert(&self, handle: Arc<SessionHandle>) -> u64 {
        let key = self.next.fetch_add(1, Ordering::Relaxed);
        self.sessions
            .write()
            .expect("registry lock poisoned")
            .insert(key, handle);
        key
    }

    pub fn remove(&self, key: u64) {
        self.sessions
            .write()
            .expect("registry lock poisoned")
            .remove(&key);
    }

    pub fn len(&self) -> usize {
        self.sessions.read().expect("registry lock poisoned").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A snapshot, so that callers never hold the lock while they work.
    pub fn snapshot(&self) -> Vec<Arc<SessionHandle>> {
        self.sessions
            .read()
            .expect("registry lock poisoned")
            .values()
            .cloned()
            .collect()
    }

    /// Offers one already-serialised frame to every session `select` picks;
    /// returns the sessions that took it.
    pub fn fan_out(
        &self,
        frame: &ByteString,
        mut select: impl FnMut(&SessionHandle) -> bool,
    ) -> Vec<Arc<SessionHandle>> {
        let sessions = self.sessions.read().expect("registry lock poisoned");
        sessions
            .values()
            .filter(|s| select(s))
            .filter(|s| s.push(Outgoing::Text(frame.clone())))
            .cloned()
            .collect()
    }

    pub fn close_all(&self, why: Closing) {
        for session in self.snapshot() {
            session.close(why);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(id: &str) -> ClientId {
        ClientId::parse(id).unwrap()
    }

    #[test]
    fn a_full_queue_closes_the_session_as_too_slow_and_spares_the_others() {
        let registry = Registry::default();
        let (slow, _slow_rx, slow_closing) = SessionHandle::new("s".into(), client("slow"), None, 2);
        let (fast, mut fast_rx, fast_closing) = SessionHandle::new("f".into(), client("fast"), None, 2);
        registry.insert(slow.clone());
        registry.insert(fast.clone());
        let frame = ByteString::from("{}");
        for _ in 0..3 {
            registry.fan_out(&frame, |s| s.wants(Topic::Clock));
            while fast_rx.try_recv().is_ok() {}
        }
        assert_eq!(*slow_closing.borrow(), Some(Closing::TooSlow));
        assert_eq!(*fast_closing.borrow(), None);
    }

    #[test]
    fn topics_default_to_the_clock() {
        let (s, _rx, _c) = SessionHandle::new("s".into(), client("c"), None, 1);
        assert_eq!(s.topics(), vec![Topic::Clock]);
        s.subscribe(&[Topic::Alarms]);
        s.unsubscribe(&[Topic::Clock]);
        assert_eq!(s.topics(), vec![Topic::Alarms]);
    }
}
