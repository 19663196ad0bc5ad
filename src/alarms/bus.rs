use tokio::sync::broadcast;

use super::Alarm;

/// In-process fan-out of new alarms to whoever listens (the WebSocket hub).
/// A broadcast channel: publishing never waits for a slow listener; one that
/// falls more than `capacity` behind is told how many it missed.
#[derive(Clone)]
pub struct AlarmBus {
    tx: broadcast::Sender<Alarm>,
}

impl AlarmBus {
    pub fn new(capacity: usize) -> Self {
        Self {
            tx: broadcast::channel(capacity.max(1)).0,
        }
    }

    /// Returns how many listeners got it (0 is fine: nobody is watching).
    pub fn publish(&self, alarm: Alarm) -> usize {
        self.tx.send(alarm).unwrap_or(0)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Alarm> {
        self.tx.subscribe()
    }
}
