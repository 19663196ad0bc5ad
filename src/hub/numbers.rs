//! The even/odd number services: a uniformly drawn number in 0–99 with the
//! asked parity (50 candidates each).

use rand::Rng;

pub use vigil_wire::hub::{NumberView, Parity};

/// A number in 0–99 of the given parity, every one equally likely.
pub fn draw(kind: Parity) -> NumberView {
    let half: u8 = rand::thread_rng().gen_range(0..50);
    NumberView {
        kind,
        value: half * 2 + u8::from(kind == Parity::Odd),
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
                let number = draw(kind);
                assert_eq!(number.kind, kind);
                seen[usize::from(number.value)] += 1;
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
