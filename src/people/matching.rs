//! The open-set decision: is this face one of the owner's subjects, and
//! which one?
//!
//! A face is subject X only when (1) its mean distance to X's enrolled
//! faces is below `threshold`, and (2) the next-nearest subject is at least
//! `margin` further away. The mean over all of X's faces (not the single
//! nearest photo) keeps one unlucky enrolment photo from pulling strangers
//! in; the margin refuses faces that sit between two people. Everything
//! else is `unknown`. docs/recognition.md gives the numbers behind the
//! defaults.
//!
//! A subject whose "not this person" corrections are nearer to the face
//! than the subject's own faces are (see [`SubjectDistance::contradicted`])
//! is out of the running before the rule applies: the stranger once taken
//! for them is not taken for them again, and the next-nearest subject is
//! judged as if the contradicted one were not enrolled.

use vigil_wire::people::{Identity, Recognised};

use super::gallery::SubjectDistance;
use super::SubjectId;

/// How wide the confidence curve is around the threshold.
const CONFIDENCE_SCALE: f32 = 0.05;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MatchRule {
    /// Largest mean distance at which a face is the subject.
    pub threshold: f32,
    /// How much nearer than the next subject it must be.
    pub margin: f32,
}

impl MatchRule {
    pub const DEFAULT_THRESHOLD: f32 = 0.55;
    pub const DEFAULT_MARGIN: f32 = 0.05;

    /// `nearest_first` as [`super::Gallery::distances`] returns it; `name`
    /// looks a subject's name up (a subject deleted meanwhile has none, and
    /// is no answer).
    pub fn decide(
        &self,
        nearest_first: &[SubjectDistance],
        name: impl Fn(SubjectId) -> Option<String>,
    ) -> Identity {
        let mut candidates = nearest_first.iter().filter(|d| !d.contradicted());
        let Some(best) = candidates.next() else {
            return Identity::unknown();
        };
        if best.mean >= self.threshold {
            return Identity::unknown();
        }
        if let Some(second) = candidates.next() {
            if second.mean - best.mean < self.margin {
                return Identity::unknown();
            }
        }
        let Some(name) = name(best.subject) else {
            return Identity::unknown();
        };
        Identity::Recognised(Recognised {
            subject_id: best.subject.to_string(),
            name,
            distance: best.mean,
            confidence: self.confidence(best.mean),
        })
    }

    /// A logistic curve of the distance: 0.5 at the threshold, 0.98 at
    /// 0.2 below it. Above 0.5 for every recognised face, by construction.
    pub fn confidence(&self, distance: f32) -> f32 {
        1.0 / (1.0 + ((distance - self.threshold) / CONFIDENCE_SCALE).exp())
    }
}

impl Default for MatchRule {
    fn default() -> Self {
        Self {
            threshold: Self::DEFAULT_THRESHOLD,
            margin: Self::DEFAULT_MARGIN,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(subject: SubjectId, mean: f32) -> SubjectDistance {
        SubjectDistance {
            subject,
            mean,
            nearest: mean,
            faces: 3,
            nearest_negative: f32::INFINITY,
        }
    }

    #[test]
    fn a_face_is_named_only_below_the_threshold_and_clear_of_the_next() {
        let rule = MatchRule::default();
        let (alice, bob) = (SubjectId::new(), SubjectId::new());
        let name = |s: SubjectId| Some(if s == alice { "Alice" } else { "Bob" }.to_owned());
        let named = rule.decide(&[at(alice, 0.35), at(bob, 0.7)], name);
        let known = named.recognised().expect("recognised");
        assert_eq!(known.name, "Alice");
        assert!(known.confidence > 0.95 && known.confidence <= 1.0);

        assert_eq!(
            rule.decide(&[at(alice, 0.56)], name),
            Identity::unknown(),
            "above the threshold"
        );
        assert_eq!(
            rule.decide(&[at(alice, 0.40), at(bob, 0.43)], name),
            Identity::unknown(),
            "between two people"
        );
        assert_eq!(rule.decide(&[], name), Identity::unknown(), "empty gallery");
        assert_eq!(
            rule.decide(&[at(alice, 0.3)], |_| None),
            Identity::unknown(),
            "deleted meanwhile"
        );
        assert!((rule.confidence(rule.threshold) - 0.5).abs() < 1e-6);
    }

    #[test]
    fn a_contradicted_subject_is_passed_over() {
        let rule = MatchRule::default();
        let (alice, bob) = (SubjectId::new(), SubjectId::new());
        let name = |s: SubjectId| Some(if s == alice { "Alice" } else { "Bob" }.to_owned());
        let contradicted = SubjectDistance {
            nearest_negative: 0.2,
            ..at(alice, 0.45)
        };
        assert_eq!(rule.decide(&[contradicted], name), Identity::unknown());
        // Bob, 0.48 away, would have been too close to Alice to name; with
        // Alice out of the running he is the answer.
        let named = rule.decide(&[contradicted, at(bob, 0.48)], name);
        assert_eq!(named.recognised().map(|r| r.name.as_str()), Some("Bob"));
        // A correction further away than her own faces changes nothing.
        let uncontradicted = SubjectDistance {
            nearest_negative: 0.6,
            ..at(alice, 0.45)
        };
        assert_eq!(
            rule.decide(&[uncontradicted], name)
                .recognised()
                .map(|r| r.name.as_str()),
            Some("Alice")
        );
    }
}
