//! What waits to be published: alarms in order, up to a limit (the oldest
//! are dropped beyond it, and counted), and the retained state (camera
//! status, face present, discovery configs…), of which only the latest
//! value per topic matters, so it is kept whole and sent again after every
//! reconnect: a broker that restarted without persistence has lost it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
}

#[derive(Clone)]
pub struct Outbox {
    state: Arc<Mutex<State>>,
    ready: Arc<Notify>,
}

struct State {
    events: VecDeque<Message>,
    limit: usize,
    /// The current value of every retained topic vigil owns; an empty
    /// payload deletes the topic's retained message and is forgotten once sent.
    retained: BTreeMap<String, Vec<u8>>,
    /// Retained topics whose value the broker has not been sent yet.
    dirty: BTreeSet<String>,
    /// Handed to the client, not yet acknowledged by the broker.
    unacked: usize,
}

impl State {
    fn queued(&self) -> usize {
        self.events.len() + self.dirty.len() + self.unacked
    }
}

impl Outbox {
    pub fn new(limit: usize) -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                events: VecDeque::new(),
                limit: limit.max(1),
                retained: BTreeMap::new(),
                dirty: BTreeSet::new(),
                unacked: 0,
            })),
            ready: Arc::new(Notify::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `change`, then publishes the queue's length and wakes the sender.
    fn change<T>(&self, change: impl FnOnce(&mut State) -> T) -> T {
        let (out, queued) = {
            let mut state = self.lock();
            let out = change(&mut state);
            (out, state.queued())
        };
        ::metrics::gauge!("vigil_mqtt_queued").set(queued as f64);
        self.ready.notify_one();
        out
    }

    /// An event (an alarm): sent once, in order. Beyond the limit the oldest
    /// waiting one is dropped; returns how many were (0 or 1).
    pub fn event(&self, topic: String, payload: Vec<u8>) -> u64 {
        let dropped = self.change(|state| {
            let mut dropped = 0;
            while state.events.len() >= state.limit {
                state.events.pop_front();
                dropped += 1;
            }
            state.events.push_back(Message {
                topic,
                payload,
                retain: false,
            });
            dropped
        });
        if dropped > 0 {
            ::metrics::counter!("vigil_mqtt_messages_total", "outcome" => "dropped").increment(dropped);
            tracing::warn!(
                dropped,
                "MQTT queue full: the oldest alarm waiting for the broker was dropped"
            );
        }
        dropped
    }

    /// Counts alarms lost before they reached the outbox (a listener that fell behind).
    pub fn lost(&self, count: u64) {
        ::metrics::counter!("vigil_mqtt_messages_total", "outcome" => "dropped").increment(count);
    }

    /// The retained value of `topic`; nothing is sent when it is unchanged.
    pub fn set(&self, topic: String, payload: Vec<u8>) {
        if self.lock().retained.get(&topic) == Some(&payload) {
            return;
        }
        self.change(|state| {
            state.dirty.insert(topic.clone());
            state.retained.insert(topic, payload);
        });
    }

    /// Deletes `topic`'s retained message on the broker.
    pub fn clear(&self, topic: String) {
        self.set(topic, Vec::new());
    }

    /// Stops owning `topic` without touching the broker (another instance
    /// writes it now): it is not sent again after a reconnect.
    pub fn forget(&self, topic: &str) {
        self.change(|state| {
            state.retained.remove(topic);
            state.dirty.remove(topic);
        });
    }

    /// After a (re)connect: every retained value is sent again.
    pub fn resend_retained(&self) {
        self.change(|state| {
            let topics: Vec<String> = state.retained.keys().cloned().collect();
            state.dirty.extend(topics);
        });
    }

    /// The next message to send: retained state first (it is small and
    /// describes what the alarms refer to), then alarms in order.
    pub fn next(&self) -> Option<Message> {
        let mut state = self.lock();
        if let Some(topic) = state.dirty.pop_first() {
            let payload = state.retained.get(&topic).cloned().unwrap_or_default();
            if payload.is_empty() {
                state.retained.remove(&topic);
            }
            return Some(Message {
                topic,
                payload,
                retain: true,
            });
        }
        state.events.pop_front()
    }

    /// A message the client could not take: first in line again.
    pub fn put_back(&self, message: Message) {
        self.change(|state| {
            if message.retain {
                // A newer value may have been set meanwhile: it wins.
                state
                    .retained
                    .entry(message.topic.clone())
                    .or_insert(message.payload);
                state.dirty.insert(message.topic);
            } else {
                state.events.push_front(message);
            }
        });
    }

    /// The client took a message; it counts as queued until the broker acknowledges it.
    pub fn handed(&self) {
        self.change(|state| state.unacked += 1);
    }

    /// The broker acknowledged a message.
    pub fn acknowledged(&self) {
        ::metrics::counter!("vigil_mqtt_messages_total", "outcome" => "published").increment(1);
        let queued = {
            let mut state = self.lock();
            state.unacked = state.unacked.saturating_sub(1);
            state.queued()
        };
        ::metrics::gauge!("vigil_mqtt_queued").set(queued as f64);
    }

    pub fn unacked(&self) -> usize {
        self.lock().unacked
    }

    /// Nothing waits to be handed to the client.
    pub fn is_idle(&self) -> bool {
        let state = self.lock();
        state.events.is_empty() && state.dirty.is_empty()
    }

    /// Resolves when something may be ready to send.
    pub async fn wait(&self) {
        self.ready.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(outbox: &Outbox) -> Vec<(String, String, bool)> {
        std::iter::from_fn(|| outbox.next())
            .map(|m| (m.topic, String::from_utf8(m.payload).unwrap(), m.retain))
            .collect()
    }

    #[test]
    fn events_keep_their_order_and_the_oldest_go_beyond_the_limit() {
        let outbox = Outbox::new(2);
        assert_eq!(outbox.event("a".into(), b"1".to_vec()), 0);
        assert_eq!(outbox.event("a".into(), b"2".to_vec()), 0);
        assert_eq!(outbox.event("a".into(), b"3".to_vec()), 1);
        let sent: Vec<String> = drain(&outbox).into_iter().map(|m| m.1).collect();
        assert_eq!(sent, ["2", "3"]);
    }

    #[test]
    fn retained_values_coalesce_go_first_and_come_back_after_a_reconnect() {
        let outbox = Outbox::new(10);
        outbox.event("alarms".into(), b"x".to_vec());
        outbox.set("status".into(), b"starting".to_vec());
        outbox.set("status".into(), b"running".to_vec());
        assert_eq!(
            drain(&outbox),
            [
                ("status".into(), "running".into(), true),
                ("alarms".into(), "x".into(), false)
            ]
        );
        outbox.set("status".into(), b"running".to_vec());
        assert!(outbox.is_idle(), "an unchanged value is not sent again");
        outbox.resend_retained();
        assert_eq!(drain(&outbox), [("status".into(), "running".into(), true)]);
    }

    #[test]
    fn a_cleared_topic_is_sent_empty_once_and_a_forgotten_one_not_at_all() {
        let outbox = Outbox::new(10);
        outbox.set("gone".into(), b"1".to_vec());
        outbox.set("moved".into(), b"1".to_vec());
        drain(&outbox);
        outbox.clear("gone".into());
        outbox.forget("moved");
        assert_eq!(drain(&outbox), [("gone".into(), "".into(), true)]);
        outbox.resend_retained();
        assert!(drain(&outbox).is_empty());
    }

    #[test]
    fn a_message_put_back_is_next_unless_its_value_changed() {
        let outbox = Outbox::new(10);
        outbox.event("a".into(), b"1".to_vec());
        outbox.event("a".into(), b"2".to_vec());
        let first = outbox.next().unwrap();
        outbox.put_back(first);
        assert_eq!(outbox.next().unwrap().payload, b"1");
        outbox.set("s".into(), b"old".to_vec());
        let old = outbox.next().unwrap();
        outbox.set("s".into(), b"new".to_vec());
        outbox.put_back(old);
        assert_eq!(outbox.next().unwrap().payload, b"new");
    }

    #[test]
    fn unacknowledged_messages_count_as_queued() {
        let outbox = Outbox::new(10);
        outbox.handed();
        outbox.handed();
        outbox.acknowledged();
        assert_eq!(outbox.unacked(), 1);
    }
}
