//! The even/odd number services: a uniformly drawn number in 0–99 with the
//! asked parity (50 candidates each).

use rand::Rng;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Parity {
    Even,
    Odd,
}

impl Parity {
    pub fn draw(self) -> u8 {
        let half: u8 = rand::thread_rng().gen_range(0..50);
        half * 2 + u8::from(self == Parity::Odd)
    }
}

/// A drawn number, as the HTTP API and the `number` message return it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
pub struct NumberView {
    pub kind: Parity,
    /// In 0–99, with the asked parity.
    #[schema(example = 42, minimum = 0, maximum = 99)]
    pub value: u8,
}

impl NumberView {
    pub fn draw(kind: Parity) -> Self {
        Self {
            kind,
            value: kind.draw(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_of_the_parity_comes_up_and_nothing_else() {
        for kind in [Parity::Even, Parity::Odd] {
            let mut seen = [0u32; 100];
            for _ in 0..20_000 {
                seen[usize::from(kind.draw())] += 1;
            }
            for (value, count) in seen.iter().enumerate() {
                let right_parity = (value % 2 == 1) == (kind == Parity::Odd);
                if right_parity {
                    // 400 expected each; 200 is > 10 standard deviations away.
                    assert!(*count > 200, "{kind:?} {value} drawn {count} times");
                } else {
                    assert_eq!(*count, 0, "{kind:?} drew {value}");
                }
            }
        }
    }
}
