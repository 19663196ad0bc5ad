//! The hand-off between a source and the detector: one slot, newest frame
//! wins. A slow detector therefore sees fresh frames and memory stays at one
//! frame per camera, however far behind it falls.

use std::sync::Mutex;

use tokio::sync::Notify;

pub struct Latest<T> {
    state: Mutex<State<T>>,
    notify: Notify,
}

struct State<T> {
    value: Option<T>,
    closed: bool,
}

impl<T> Default for Latest<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Latest<T> {
    pub fn new() -> Self {
        Self {
            state: Mutex::new(State {
                value: None,
                closed: false,
            }),
            notify: Notify::new(),
        }
    }

    /// Offers a frame; returns true when it replaced one nobody took (a drop).
    /// Callable from blocking threads (no await).
    pub fn put(&self, value: T) -> bool {
        let replaced = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.value.replace(value).is_some()
        };
        self.notify.notify_one();
        replaced
    }

    /// No more frames will come; `next` returns what is left, then `None`.
    pub fn close(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).closed = true;
        self.notify.notify_one();
    }

    /// The newest frame, waiting for one if needed; `None` once closed and empty.
    pub async fn next(&self) -> Option<T> {
        loop {
            {
                let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(value) = state.value.take() {
                    return Some(value);
                }
                if state.closed {
                    return None;
                }
            }
            // notify_one stores a permit when nobody waits, so a put between
            // the check above and this await is not lost.
            self.notify.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn the_newest_frame_wins_and_drops_are_reported() {
        let slot = Latest::new();
        assert!(!slot.put(1));
        assert!(slot.put(2));
        assert!(slot.put(3));
        assert_eq!(slot.next().await, Some(3));
        slot.put(4);
        slot.close();
        assert_eq!(
            slot.next().await,
            Some(4),
            "a frame put before close is delivered"
        );
        assert_eq!(slot.next().await, None);
    }

    #[tokio::test]
    async fn a_waiting_consumer_wakes_on_put_from_another_thread() {
        let slot = Arc::new(Latest::new());
        let producer = slot.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            producer.put("frame");
        });
        let got = tokio::time::timeout(Duration::from_secs(2), slot.next()).await;
        assert_eq!(got.unwrap(), Some("frame"));
    }

    #[tokio::test]
    async fn a_slow_consumer_sees_bounded_fresh_frames() {
        let slot = Arc::new(Latest::new());
        let mut dropped = 0;
        for i in 0..1000 {
            if slot.put(i) {
                dropped += 1;
            }
        }
        assert_eq!(dropped, 999);
        assert_eq!(slot.next().await, Some(999));
    }
}
