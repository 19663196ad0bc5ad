//! Open-set evaluation: the server's own decision ([`Gallery`] distances
//! and [`MatchRule`]) run on a user's photos, to say how often a known
//! person gets their name and how often a stranger gets someone's.
//!
//! Pair accuracy (`vigil eval-recognizer DIR`) says how well the model
//! separates faces; it does not say what a household sees, where most
//! faces at the door belong to nobody enrolled. This does: the gallery is
//! enrolled as subjects, each probe must come back as its own subject, and
//! each stranger must come back unknown.
//!
//! It also measures what "not" corrections do ([`OpenSet::feedback`]): a
//! stranger's first photo, for as long as it is taken for someone, is
//! corrected as the owner would correct it, and the same stranger's other
//! photos are judged again.

use std::collections::{HashMap, HashSet};

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

/// What "not" corrections on strangers' first photos did to their later
/// photos, and to the known people's.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedbackReport {
    /// "Not" corrections made on first photos (one per name each got).
    pub corrections: usize,
    /// Photos of strangers after their first.
    pub later_visits: usize,
    /// Later visits given a name without the corrections, and with them.
    pub named_before: usize,
    pub named_after: usize,
    pub probes: usize,
    /// Probes given their own name without the corrections, and with them.
    pub accepted_before: usize,
    pub accepted_after: usize,
}

impl FeedbackReport {
    pub fn summary_line(&self) -> String {
        format!(
            "feedback: corrections={} later_visits={} far_before={:.4} far_after={:.4} \
             false_accepts_removed={} tar_before={:.4} tar_after={:.4}",
            self.corrections,
            self.later_visits,
            ratio(self.named_before, self.later_visits),
            ratio(self.named_after, self.later_visits),
            self.named_before.saturating_sub(self.named_after),
            ratio(self.accepted_before, self.probes),
            ratio(self.accepted_after, self.probes),
        )
    }
}

/// The gallery enrolled as one owner's subjects (one per person), and every
/// probe's and stranger's distances to them, computed once so that several
/// rules can be tried.
pub struct OpenSet {
    owner: UserId,
    faces: Vec<GalleryFace>,
    gallery: Gallery,
    names: HashMap<SubjectId, String>,
    probes: Vec<(String, Vec<SubjectDistance>)>,
    probe_faces: Vec<Labelled>,
    strangers: Vec<Vec<SubjectDistance>>,
    stranger_faces: Vec<Labelled>,
}

impl OpenSet {
    /// `strangers` are labelled by folder: photos with the same non-empty
    /// label are one person's visits, in the given order.
    pub fn new(gallery: &[Labelled], probes: &[Labelled], strangers: &[Labelled]) -> Self {
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
                negative: false,
            });
        }
        let names: HashMap<SubjectId, String> = subjects
            .iter()
            .map(|(person, id)| (*id, (*person).to_owned()))
            .collect();
        let enrolled = Gallery::default();
        enrolled.load(faces.clone(), names.clone());
        let distances = |e: &Embedding| enrolled.distances(&[owner], e);
        Self {
            owner,
            probes: probes
                .iter()
                .map(|(person, e)| (person.clone(), distances(e)))
                .collect(),
            probe_faces: probes.to_vec(),
            strangers: strangers.iter().map(|(_, e)| distances(e)).collect(),
            stranger_faces: strangers.to_vec(),
            faces,
            gallery: enrolled,
            names,
        }
    }

    /// Each stranger's first photo is corrected ("not" that subject) for
    /// every name `rule` gives it; then the strangers' later photos and the
    /// probes are judged with and without the corrections.
    pub fn feedback(&self, rule: MatchRule) -> FeedbackReport {
        let named = |gallery: &Gallery, embedding: &Embedding| -> Option<SubjectId> {
            let distances = gallery.distances(&[self.owner], embedding);
            match rule.decide(&distances, |s| gallery.name(s)) {
                Identity::Recognised(r) => r.subject_id.parse().ok(),
                Identity::Unknown(_) | Identity::Erased(_) => None,
            }
        };
        let corrected = Gallery::default();
        corrected.load(self.faces.iter().cloned(), self.names.clone());
        let mut seen: HashSet<&str> = HashSet::new();
        let mut corrections = 0;
        let mut later = Vec::new();
        for (person, embedding) in &self.stranger_faces {
            let first_visit = person.is_empty() || seen.insert(person.as_str());
            if !first_visit {
                later.push(embedding);
                continue;
            }
            // As the owner would: "not X" for each name the photo gets,
            // until it gets none (once per subject: a photo identical to
            // one of X's own faces cannot be corrected away).
            let mut corrected_for: HashSet<SubjectId> = HashSet::new();
            while let Some(subject) = named(&corrected, embedding).filter(|s| corrected_for.insert(*s)) {
                corrected.insert(GalleryFace {
                    owner: self.owner,
                    subject,
                    face: SubjectFaceId::new(),
                    embedding: *embedding,
                    negative: true,
                });
                corrections += 1;
            }
        }
        let own_name = |gallery: &Gallery| {
            self.probe_faces
                .iter()
                .filter(|(person, e)| named(gallery, e).and_then(|s| self.names.get(&s)) == Some(person))
                .count()
        };
        FeedbackReport {
            corrections,
            later_visits: later.len(),
            named_before: later.iter().filter(|e| named(&self.gallery, e).is_some()).count(),
            named_after: later.iter().filter(|e| named(&corrected, e).is_some()).count(),
            probes: self.probe_faces.len(),
            accepted_before: own_name(&self.gallery),
            accepted_after: own_name(&corrected),
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
        let strangers = [labelled("zed", at(0, 1.05 + 0.1)), labelled("", at(2, 5.0))];
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

    #[test]
    fn a_not_correction_on_a_first_visit_keeps_that_stranger_unnamed_and_the_known_named() {
        // Ann's faces on axis 0; everyone else a little off it.
        let near_ann = |axis: usize, off: f32| {
            let mut v = *at(0, 1.1).as_array();
            v[axis] = off;
            Embedding::from_array(v)
        };
        let gallery = [labelled("ann", at(0, 1.0)), labelled("ann", at(0, 1.2))];
        // 0.1 from her faces on average, 0.11 and more from every correction.
        let probes = [labelled("ann", at(0, 1.0))];
        // Zed's first photo (0.11 from Ann's faces) is taken for her and
        // corrected; his second, 0.01 from the first, is judged again. Yan's
        // only photo has no later visit; loose photos are never visits of
        // one person. Theirs are nearer to Zed's than to Ann's faces: the
        // one correction keeps them unnamed too.
        let strangers = [
            labelled("zed", near_ann(3, 0.05)),
            labelled("zed", near_ann(3, 0.06)),
            labelled("yan", near_ann(3, 0.2)),
            labelled("", near_ann(5, 0.1)),
            labelled("", near_ann(6, 0.1)),
        ];
        let set = OpenSet::new(&gallery, &probes, &strangers);
        let report = set.feedback(MatchRule::default());
        assert_eq!(
            report,
            FeedbackReport {
                corrections: 1,
                later_visits: 1,
                named_before: 1,
                named_after: 0,
                probes: 1,
                accepted_before: 1,
                accepted_after: 1,
            }
        );
        assert_eq!(
            report.summary_line(),
            "feedback: corrections=1 later_visits=1 far_before=1.0000 far_after=0.0000 \
             false_accepts_removed=1 tar_before=1.0000 tar_after=1.0000"
        );
    }
}
