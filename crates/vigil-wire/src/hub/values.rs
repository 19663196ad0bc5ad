//! The values the protocol carries, each with its rule stated once: a
//! value of these types is valid, and parsing one says why it is not.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Parity {
    Even,
    Odd,
}

impl Parity {
    pub fn of(value: u8) -> Self {
        if value.is_multiple_of(2) {
            Parity::Even
        } else {
            Parity::Odd
        }
    }
}

/// A drawn number, as the HTTP API and the `number` message return it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NumberView {
    pub kind: Parity,
    /// In 0–99, with the asked parity.
    #[schema(example = 42, minimum = 0, maximum = 99)]
    pub value: u8,
}

/// A value of the counter protocol: an integer from 0 to 99.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(try_from = "Value", into = "u8")]
pub struct CounterValue(u8);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("value must be an integer from 0 to 99")]
pub struct InvalidCounterValue;

impl CounterValue {
    pub const MAX: u8 = 99;

    pub fn new(value: u8) -> Result<Self, InvalidCounterValue> {
        if value <= Self::MAX {
            Ok(Self(value))
        } else {
            Err(InvalidCounterValue)
        }
    }

    pub fn get(self) -> u8 {
        self.0
    }

    /// `self + increment`, wrapped into 0–99 (98 + 5 = 3): every step has
    /// the same size.
    pub fn wrapping_add(self, increment: u8) -> Self {
        Self(((u16::from(self.0) + u16::from(increment)) % (u16::from(Self::MAX) + 1)) as u8)
    }
}

impl TryFrom<&Value> for CounterValue {
    type Error = InvalidCounterValue;

    fn try_from(value: &Value) -> Result<Self, Self::Error> {
        let small = value.as_u64().and_then(|v| u8::try_from(v).ok());
        small.ok_or(InvalidCounterValue).and_then(Self::new)
    }
}

impl TryFrom<Value> for CounterValue {
    type Error = InvalidCounterValue;

    fn try_from(value: Value) -> Result<Self, Self::Error> {
        Self::try_from(&value)
    }
}

impl From<CounterValue> for u8 {
    fn from(value: CounterValue) -> Self {
        value.0
    }
}

/// The `n` of a Fibonacci request: a non-negative integer. How large it may
/// be is the server's setting (`--fib-max-n`), checked where it is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "Value", into = "u64")]
pub struct FibN(u64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidFibN {
    #[error("n must not be negative")]
    Negative,
    #[error("n must be a non-negative integer")]
    NotAnInteger,
}

impl FibN {
    pub fn new(n: u64) -> Self {
        Self(n)
    }

    pub fn get(self) -> u64 {
        self.0
    }
}

impl TryFrom<&Value> for FibN {
    type Error = InvalidFibN;

    fn try_from(value: &Value) -> Result<Self, Self::Error> {
        match value {
            Value::Number(number) => match number.as_u64() {
                Some(n) => Ok(Self(n)),
                None if number.as_i64().is_some_and(|n| n < 0) => Err(InvalidFibN::Negative),
                None if number.as_f64().is_some_and(|n| n < 0.0) => Err(InvalidFibN::Negative),
                None => Err(InvalidFibN::NotAnInteger),
            },
            _ => Err(InvalidFibN::NotAnInteger),
        }
    }
}

impl TryFrom<Value> for FibN {
    type Error = InvalidFibN;

    fn try_from(value: Value) -> Result<Self, Self::Error> {
        Self::try_from(&value)
    }
}

impl From<FibN> for u64 {
    fn from(n: FibN) -> Self {
        n.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counter_values_are_0_to_99_and_wrap() {
        for good in [json!(0), json!(99)] {
            assert!(CounterValue::try_from(&good).is_ok(), "{good}");
        }
        for bad in [
            json!(100),
            json!(-1),
            json!(1.5),
            json!("7"),
            json!(null),
            json!(256),
        ] {
            assert_eq!(CounterValue::try_from(&bad), Err(InvalidCounterValue), "{bad}");
        }
        let v = CounterValue::new(98).unwrap();
        assert_eq!(v.wrapping_add(5).get(), 3);
        assert_eq!(v.wrapping_add(1).get(), 99);
        assert_eq!(serde_json::to_value(v).unwrap(), json!(98));
    }

    #[test]
    fn fib_n_is_a_non_negative_integer() {
        assert_eq!(FibN::try_from(&json!(90)).map(FibN::get), Ok(90));
        assert_eq!(FibN::try_from(&json!(-1)), Err(InvalidFibN::Negative));
        assert_eq!(FibN::try_from(&json!(-1.5)), Err(InvalidFibN::Negative));
        for bad in [json!(1e30), json!(2.5), json!("7"), json!(null), json!([1])] {
            assert_eq!(FibN::try_from(&bad), Err(InvalidFibN::NotAnInteger), "{bad}");
        }
    }
}
