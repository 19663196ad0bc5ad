//! Open-set evaluation: the server's own decision ([`Gallery`] distances
//! and [`MatchRule`]) run on a user's photos, to say how often a known
//! person gets their name and how often a stranger gets someone's.
//!
//! Pair accuracy (`vigil eval-recognizer DIR`) says how well the model
//! separates faces; it does not say what a household sees, where most
//! faces at the door belong to nobody enrolled. This does: the gallery is
//! enrolled as subjects, each probe must come back as its own subject, and
//! each stranger must come back unknown.

use std::collections::HashMap;

use mongodb::bson::oid::ObjectId;

use super::gallery::{GalleryFace, SubjectDistance};
use super::{Gallery, Identity, MatchRule, SubjectFaceId, SubjectId};
use crate::users::UserId;
use crate::vision::Embedding;

/// A labelled face: the person's name (their folder) and its embedding.
pub type Labelled = (String, Embedding);

/// What the rule made of the probes and strangers.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenSetReport {
    pub rule: MatchRule,
    /// Probes of enrolled people.
    pub probes: usize,
    /// Probes given their own name.
    pub accepted: usize,
    /// Probes given somebody else's name (a false accept too).
    pub misnamed: usize,
    pub strangers: usize,
    /// Strangers given an enrolled person's name.
    pub strangers_named: usize,
}

impl OpenSetReport {
    /// True accept rate: the share of known people recognised as themselves.
    pub fn tar(&self) -> f64 {
        ratio(self.accepted, self.probes)
    }

    /// False accept rate: the share of strangers taken for someone enrolled.
    pub fn far(&self) -> f64 {
        ratio(self.strangers_named, self.strangers)
    }

    /// The machine-readable line (`missed`: photos without an embedding).
    pub fn summary_line(&self, missed: usize) -> String {
        format!(
            "tar={:.4} far={:.4} threshold={:.3} margin={:.3} probes={} strangers={} misnamed={} missed={}",
            self.tar(),
            self.far(),
            self.rule.threshold,
            self.rule.margin,
            self.probes,
            self.strangers,
            self.misnamed,
            missed
        )
    }
}

fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// The gallery enrolled as one owner's subjects (one per person), and every
/// probe's and stranger's distances to them, computed once so that several
/// rules can be tried.
pub struct OpenSet {
    gallery: Gallery,
    names: HashMap<SubjectId, String>,
    probes: Vec<(String, Vec<SubjectDistance>)>,
    strangers: Vec<Vec<SubjectDistance>>,
}

impl OpenSet {
    pub fn new(gallery: &[Labelled], probes: &[Labelled], strangers: &[Embedding]) -> Self {
        let owner = UserId(ObjectId::new());
        let mut subjects: HashMap<&str, SubjectId> = HashMap::new();
        let mut faces = Vec::with_capacity(gallery.len());
        for (person, embedding) in gallery {
            let subject = *subjects.entry(person.as_str()).or_default();
            faces.push(GalleryFace {
                owner,
                subject,
                face: SubjectFaceId::new(),
                embedding: *embedding,
            });
        }
        let names: HashMap<SubjectId, String> = subjects
            .iter()
            .map(|(person, id)| (*id, (*person).to_owned()))
            .collect();
        let enrolled = Gallery::default();
        enrolled.load(faces, names.clone());
        let distances = |e: &Embedding| enrolled.distances(&[owner], e);
        Self {
            probes: probes
                .iter()
                .map(|(person, e)| (person.clone(), distances(e)))
                .collect(),
            strangers: strangers.iter().map(distances).collect(),
            gallery: enrolled,
            names,
        }
    }

    /// How many people are enrolled.
    pub fn people(&self) -> usize {
        self.names.len()
    }

    pub fn report(&self, rule: MatchRule) -> OpenSetReport {
        let name_of = |distances: &[SubjectDistance]| match rule.decide(distances, |s| self.gallery.name(s)) {
            Identity::Recognised(r) => Some(r.name),
            Identity::Unknown(_) | Identity::Erased(_) => None,
        };
        let mut report = OpenSetReport {
            rule,
            probes: self.probes.len(),
            accepted: 0,
            misnamed: 0,
            strangers: self.strangers.len(),
            strangers_named: 0,
        };
        for (person, distances) in &self.probes {
            match name_of(distances) {
                Some(name) if name == *person => report.accepted += 1,
                Some(_) => report.misnamed += 1,
                None => {}
            }
        }
        report.strangers_named = self.strangers.iter().filter(|d| name_of(d).is_some()).count();
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::recognizer::EMBEDDING_LEN;

    /// A point on axis `axis`, `length` from the origin.
    fn at(axis: usize, length: f32) -> Embedding {
        let mut v = [0f32; EMBEDDING_LEN];
        v[axis] = length;
        Embedding::from_array(v)
    }

    fn labelled(person: &str, e: Embedding) -> Labelled {
        (person.to_owned(), e)
    }

    #[test]
    fn probes_and_strangers_are_judged_by_the_server_s_rule() {
        // Ann's faces around axis 0, Bob's around axis 1: 1.0 apart plus spread.
        let gallery = [
            labelled("ann", at(0, 1.0)),
            labelled("ann", at(0, 1.2)),
            labelled("bob", at(1, 1.0)),
        ];
        let probes = [
            // Mean distance to Ann 0.1 (0.0 and 0.2): hers.
            labelled("ann", at(0, 1.0)),
            // Bob's own face: his.
            labelled("bob", at(1, 1.0)),
            // Sits on Ann's faces but is labelled Bob: misnamed.
            labelled("bob", at(0, 1.1)),
        ];
        // A stranger near Ann (0.15 and 0.05 away: mean 0.1) is taken for her;
        // one far from everyone is not.
        let strangers = [at(0, 1.05 + 0.1), at(2, 5.0)];
        let set = OpenSet::new(&gallery, &probes, &strangers);
        assert_eq!(set.people(), 2);

        let report = set.report(MatchRule::default());
        assert_eq!(
            (
                report.probes,
                report.accepted,
                report.misnamed,
                report.strangers,
                report.strangers_named
            ),
            (3, 2, 1, 2, 1),
            "{report:?}"
        );
        assert!((report.tar() - 2.0 / 3.0).abs() < 1e-9);
        assert!((report.far() - 0.5).abs() < 1e-9);
        assert_eq!(
            report.summary_line(4),
            "tar=0.6667 far=0.5000 threshold=0.550 margin=0.050 probes=3 strangers=2 misnamed=1 missed=4"
        );

        // No distance is below 0: nobody is named, strangers included.
        let strict = set.report(MatchRule {
            threshold: 0.0,
            margin: 0.05,
        });
        assert_eq!(
            (strict.accepted, strict.misnamed, strict.strangers_named),
            (0, 0, 0)
        );
        assert_eq!((strict.tar(), strict.far()), (0.0, 0.0));
    }
}
