//! `vigil client counter`: the even/odd counter protocol (docs/websocket.md).
//!
//! Start from `hello.value` (the server's last value for this client id);
//! every 500 ms add the increment (first 1) and report the sum in a `value`
//! message; every 3–5 s (uniformly random) ask for an even or an odd number
//! (a coin toss) and make the answer the new increment. Values stay in 0–99
//! by wrapping modulo 100: 98 + 5 is 3. Wrapping keeps every step the same
//! size, where clamping would stick at 99 and bouncing would reverse.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use serde_json::json;
use tokio::time::{Instant, MissedTickBehavior};

use vigil_wire::hub::{ClientId, ClientMessage, CounterValue, Parity, ServerMessage, Topic};

use super::api::ApiClient;
use super::backoff::Backoff;
use super::error::ClientError;
use super::ws::{Heard, HubSession, HubTarget};
use super::{Ending, Interrupt};

/// Values are kept in 0..MODULUS.
pub const MODULUS: u8 = CounterValue::MAX + 1;
pub const STEP_EVERY: Duration = Duration::from_millis(500);
/// The wait between two asks is drawn from this range.
pub const ASK_EVERY_MIN: Duration = Duration::from_secs(3);
pub const ASK_EVERY_MAX: Duration = Duration::from_secs(5);

/// The client's state between steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counter {
    value: CounterValue,
    increment: u8,
}

impl Counter {
    /// Starts at the server's value with increment 1.
    pub fn new(start: CounterValue) -> Self {
        Self {
            value: start,
            increment: 1,
        }
    }

    pub fn value(&self) -> CounterValue {
        self.value
    }

    pub fn increment(&self) -> u8 {
        self.increment
    }

    /// One step: the new value, wrapped into 0–99.
    pub fn step(&mut self) -> CounterValue {
        self.value = self.value.wrapping_add(self.increment);
        self.value
    }

    /// The server's number becomes the increment (wrapped, should a server
    /// ever send more than 99).
    pub fn set_increment(&mut self, number: u8) {
        self.increment = number % MODULUS;
    }

    /// A new session may start from another value (another client with the
    /// same id moved it): the server's value wins, the increment stays.
    pub fn resume_at(&mut self, value: CounterValue) {
        self.value = value;
    }
}

/// The wait before the next ask: uniform in 3–5 s.
pub fn ask_delay(rng: &mut impl Rng) -> Duration {
    let min = ASK_EVERY_MIN.as_millis() as u64;
    let max = ASK_EVERY_MAX.as_millis() as u64;
    Duration::from_millis(rng.gen_range(min..=max))
}

/// Even or odd, a fair coin.
pub fn ask_kind(rng: &mut impl Rng) -> Parity {
    if rng.gen_bool(0.5) {
        Parity::Even
    } else {
        Parity::Odd
    }
}

#[derive(Debug, clap::Args)]
pub struct CounterArgs {
    /// Your client id (1-64 of A-Z a-z 0-9 . _ : -); the server keeps the last value per id
    /// (per user when logged in), so the same id resumes where it stopped.
    #[arg(long, default_value = "vigil-client")]
    pub client_id: ClientId,

    /// Stop after this long (e.g. 30s, 2m, 500ms; plain numbers are seconds); default: until Ctrl-C.
    #[arg(long, value_parser = super::parse_duration)]
    pub duration: Option<Duration>,

    /// Print JSON lines instead of text.
    #[arg(long)]
    pub json: bool,
}

/// What happened, printed as text or as a JSON line.
enum Step<'a> {
    Start {
        value: u8,
        client_id: &'a str,
        resumed: bool,
    },
    Value {
        value: u8,
        increment: u8,
    },
    Ask {
        kind: Parity,
    },
    Increment {
        kind: Parity,
        value: u8,
    },
    Stop {
        value: u8,
    },
}

fn kind_name(kind: Parity) -> &'static str {
    match kind {
        Parity::Even => "even",
        Parity::Odd => "odd",
    }
}

fn print(step: Step<'_>, as_json: bool) {
    let line = match (step, as_json) {
        (
            Step::Start {
                value,
                client_id,
                resumed,
            },
            true,
        ) => json!({"event": "start", "client_id": client_id, "value": value, "reconnected": resumed})
            .to_string(),
        (
            Step::Start {
                value,
                client_id,
                resumed,
            },
            false,
        ) => {
            let how = if resumed { "reconnected" } else { "connected" };
            format!("{how} as {client_id}: starting at {value}")
        }
        (Step::Value { value, increment }, true) => {
            json!({"event": "value", "value": value, "increment": increment}).to_string()
        }
        (Step::Value { value, increment }, false) => format!("value {value} (+{increment})"),
        (Step::Ask { kind }, true) => json!({"event": "ask", "kind": kind_name(kind)}).to_string(),
        (Step::Ask { kind }, false) => format!("asking for an {} number", kind_name(kind)),
        (Step::Increment { kind, value }, true) => {
            json!({"event": "increment", "kind": kind_name(kind), "value": value}).to_string()
        }
        (Step::Increment { kind, value }, false) => {
            format!("got {} number {value}: increment is now {value}", kind_name(kind))
        }
        (Step::Stop { value }, true) => json!({"event": "stop", "value": value}).to_string(),
        (Step::Stop { value }, false) => format!("stopped at {value}"),
    };
    super::emit(&line);
}

/// How one session ended.
enum Ended {
    /// The duration is over or Ctrl-C: the last value is kept by the server.
    Stopped(Ending),
    /// The connection broke; reconnect and resume.
    Lost(ClientError),
}

pub async fn run(api: &ApiClient, args: CounterArgs) -> Result<Ending, ClientError> {
    let interrupt = Interrupt::listen();
    let deadline = args.duration.map(|d| Instant::now() + d);
    let mut counter: Option<Counter> = None;
    let mut backoff = Backoff::default();
    loop {
        let target = HubTarget {
            api,
            client_id: Some(&args.client_id),
        };
        let Some(connected) = interrupt.or(HubSession::connect(&target)).await else {
            return Ok(Ending::Interrupted);
        };
        let outcome = match connected {
            Ok(session) => {
                let outcome =
                    session_loop(session, &args, &mut counter, deadline, &mut backoff, &interrupt).await;
                match outcome {
                    Ok(Ended::Stopped(ending)) => return Ok(ending),
                    Ok(Ended::Lost(e)) => e,
                    Err(e) => return Err(e),
                }
            }
            Err(e) if e.is_transient() => e,
            Err(e) => return Err(e),
        };
        let wait = backoff.next_random();
        if deadline.is_some_and(|d| Instant::now() + wait >= d) {
            return Err(outcome);
        }
        eprintln!("counter: {outcome}; reconnecting in {:.1} s", wait.as_secs_f64());
        if interrupt.or(tokio::time::sleep(wait)).await.is_none() {
            return Ok(Ending::Interrupted);
        }
    }
}

async fn session_loop(
    mut session: HubSession,
    args: &CounterArgs,
    counter: &mut Option<Counter>,
    deadline: Option<Instant>,
    backoff: &mut Backoff,
    interrupt: &Interrupt,
) -> Result<Ended, ClientError> {
    let lost = |e: ClientError| {
        if e.is_transient() {
            Ok(Ended::Lost(e))
        } else {
            Err(e)
        }
    };
    let hello = interrupt.or(async {
        loop {
            if let Heard::Message(ServerMessage::Hello { value, .. }) = session.next().await? {
                return Ok(value);
            }
        }
    });
    let start = match hello.await {
        // Nothing was counted in this session: no value to confirm.
        None => {
            session.close().await;
            return Ok(Ended::Stopped(Ending::Interrupted));
        }
        Some(Ok(value)) => value,
        Some(Err(e)) => return lost(e),
    };
    backoff.reset();
    // The clock is not needed; fewer messages to read.
    if let Err(e) = session
        .send(&ClientMessage::Unsubscribe {
            topics: vec![Topic::Clock],
        })
        .await
    {
        return lost(e);
    }
    let resumed = counter.is_some();
    let state = counter.get_or_insert_with(|| Counter::new(start));
    state.resume_at(start);
    print(
        Step::Start {
            value: state.value().get(),
            client_id: args.client_id.as_str(),
            resumed,
        },
        args.json,
    );

    let mut rng = rand::rngs::StdRng::from_entropy();
    let mut steps = tokio::time::interval_at(Instant::now() + STEP_EVERY, STEP_EVERY);
    steps.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let ask = tokio::time::sleep(ask_delay(&mut rng));
    tokio::pin!(ask);
    let end = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(end);

    let ending = loop {
        tokio::select! {
            _ = steps.tick() => {
                let increment = state.increment();
                let value = state.step();
                if let Err(e) = session.send(&ClientMessage::Value { value }).await {
                    return lost(e);
                }
                print(Step::Value { value: value.get(), increment }, args.json);
            }
            _ = &mut ask => {
                let kind = ask_kind(&mut rng);
                if let Err(e) = session.send(&ClientMessage::Number { kind }).await {
                    return lost(e);
                }
                print(Step::Ask { kind }, args.json);
                ask.as_mut().reset(Instant::now() + ask_delay(&mut rng));
            }
            event = session.next() => match event {
                Ok(Heard::Message(ServerMessage::Number { kind, value })) => {
                    state.set_increment(value);
                    print(Step::Increment { kind, value }, args.json);
                }
                Ok(Heard::Error { code, message, .. }) => {
                    eprintln!("counter: the server refused a message: {code}: {message}");
                }
                Ok(_) => {}
                Err(e) => return lost(e),
            },
            _ = &mut end => break Ending::Done,
            () = interrupt.wait() => break Ending::Interrupted,
        }
    };
    finish(session, state.value(), args.json).await;
    Ok(Ended::Stopped(ending))
}

/// Messages are handled in order, so once the `pong` of a last `ping`
/// arrives the server has kept the last value; then the session closes.
async fn finish(mut session: HubSession, value: CounterValue, as_json: bool) {
    let id = serde_json::Value::from("counter-stop");
    let synced = tokio::time::timeout(Duration::from_secs(5), async {
        session.send(&ClientMessage::Ping { id: id.clone() }).await?;
        loop {
            match session.next().await? {
                Heard::Message(ServerMessage::Pong { id: got }) if got == id => {
                    return Ok::<(), ClientError>(())
                }
                Heard::Error { code, message, .. } => {
                    eprintln!("counter: the server refused a message: {code}: {message}");
                }
                _ => {}
            }
        }
    })
    .await;
    match synced {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("counter: could not confirm the last value was kept: {e}"),
        Err(_) => eprintln!("counter: no answer to the final ping within 5 s"),
    }
    session.close().await;
    print(Step::Stop { value: value.get() }, as_json);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(n: u8) -> CounterValue {
        CounterValue::new(n).unwrap()
    }

    #[test]
    fn steps_add_the_increment_and_wrap_at_100() {
        let mut counter = Counter::new(value(97));
        assert_eq!(counter.increment(), 1);
        assert_eq!(counter.step().get(), 98);
        assert_eq!(counter.step().get(), 99);
        assert_eq!(counter.step().get(), 0);
        counter.set_increment(98);
        assert_eq!(counter.step().get(), 98);
        assert_eq!(counter.step().get(), 96);
        counter.set_increment(0);
        assert_eq!(counter.step().get(), 96);
    }

    #[test]
    fn every_value_stays_in_range_whatever_the_increment() {
        for start in 0..MODULUS {
            let mut counter = Counter::new(value(start));
            for increment in [0u8, 1, 2, 49, 50, 98, 99, 150, 255] {
                counter.set_increment(increment);
                assert!(counter.increment() < MODULUS, "{increment}");
                for _ in 0..3 {
                    assert!(counter.step().get() < MODULUS);
                }
            }
        }
    }

    #[test]
    fn resuming_keeps_the_increment() {
        let mut counter = Counter::new(value(10));
        counter.set_increment(7);
        counter.resume_at(value(40));
        assert_eq!(counter.step().get(), 47);
    }

    #[test]
    fn asks_come_every_three_to_five_seconds_for_either_parity() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let (mut even, mut shortest, mut longest) = (0, Duration::MAX, Duration::ZERO);
        for _ in 0..2000 {
            let delay = ask_delay(&mut rng);
            shortest = shortest.min(delay);
            longest = longest.max(delay);
            if ask_kind(&mut rng) == Parity::Even {
                even += 1;
            }
        }
        assert!(
            shortest >= ASK_EVERY_MIN && shortest < Duration::from_millis(3100),
            "{shortest:?}"
        );
        assert!(
            longest <= ASK_EVERY_MAX && longest > Duration::from_millis(4900),
            "{longest:?}"
        );
        // 1000 expected; 850 is more than 6 standard deviations away.
        assert!((850..=1150).contains(&even), "{even} even of 2000");
    }
}
