//! The date-time broadcast: one `clock` message per second to every session
//! subscribed to `clock`, on the wall clock's second boundary so that all
//! clients (and all instances) tick together.

use std::time::Duration;

use chrono::{Timelike, Utc};

use vigil_wire::hub::{ServerMessage, Topic};

use super::Hub;

/// How long until the next whole second of the wall clock.
fn until_next_second() -> Duration {
    let nanos = Utc::now().nanosecond() % 1_000_000_000;
    Duration::from_nanos(u64::from(1_000_000_000 - nanos))
}

#[tracing::instrument(name = "clock", skip_all)]
pub async fn tick_forever(hub: Hub) {
    loop {
        tokio::time::sleep(until_next_second()).await;
        let message = ServerMessage::Clock { now: Utc::now() };
        let frame = message.text().into();
        let delivered = hub.registry().fan_out(&frame, |s| s.wants(Topic::Clock));
        if hub.log().log_clock {
            hub.log().record_broadcast(&delivered, &message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_waits_more_than_a_second() {
        for _ in 0..100 {
            let wait = until_next_second();
            assert!(
                wait > Duration::ZERO && wait <= Duration::from_secs(1),
                "{wait:?}"
            );
        }
    }
}
