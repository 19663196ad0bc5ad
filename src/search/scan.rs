//! The exact scan: every stored face of the window compared with the probe,
//! keeping only the page asked for. Nearest first keeps a bounded heap (the
//! page plus one, to know whether another page follows), so memory does not
//! grow with the number of faces scanned; newest first stops as soon as the
//! page is full, since faces arrive newest first.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use mongodb::bson::oid::ObjectId;
use mongodb::bson::RawDocument;

use vigil_wire::search::SearchOrder;

use super::cursor::SearchCursor;
use crate::db::paging::PageCursor;
use crate::detections::prints::raw_embedding;
use crate::vision::Embedding;

/// What is looked for: one embedding (a face), or several (a subject's
/// faces, whose distances are averaged as recognition averages them).
#[derive(Debug, Clone)]
pub struct ProbeEmbeddings(Vec<Embedding>);

impl ProbeEmbeddings {
    /// `None` for no embedding at all.
    pub fn new(embeddings: Vec<Embedding>) -> Option<Self> {
        (!embeddings.is_empty()).then_some(Self(embeddings))
    }

    pub fn distance(&self, face: &Embedding) -> f32 {
        let sum: f32 = self.0.iter().map(|p| p.distance(face)).sum();
        sum / self.0.len() as f32
    }
}

/// A stored face within reach of the probe.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub id: ObjectId,
    pub detection: ObjectId,
    pub face_index: u32,
    pub at_millis: i64,
    pub distance: f32,
}

impl Candidate {
    fn best_key(&self) -> (f32, ObjectId) {
        (self.distance, self.id)
    }

    /// The distance of a raw `seen_faces` document (as
    /// [`crate::detections::FacePrints::scan`] projects it) to the probe;
    /// `None` for one that is malformed.
    pub fn distance_of(raw: &RawDocument, probe: &ProbeEmbeddings) -> Option<f32> {
        let embedding = raw_embedding(raw.get_binary("embedding").ok()?.bytes)?;
        Some(probe.distance(&embedding))
    }

    /// The rest of the document, read only for a face within reach: most
    /// faces of a long history are far from any one probe.
    pub fn read(raw: &RawDocument, distance: f32) -> Option<Self> {
        let face_index = match raw.get("face_index").ok()?? {
            mongodb::bson::RawBsonRef::Int32(n) => u32::try_from(n).ok()?,
            mongodb::bson::RawBsonRef::Int64(n) => u32::try_from(n).ok()?,
            _ => return None,
        };
        Some(Self {
            id: raw.get_object_id("_id").ok()?,
            detection: raw.get_object_id("detection_id").ok()?,
            face_index,
            at_millis: raw.get_datetime("created_at").ok()?.timestamp_millis(),
            distance,
        })
    }
}

/// A stored face that could not be read (skipped by the scan, not fatal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

fn best_order(a: &(f32, ObjectId), b: &(f32, ObjectId)) -> Ordering {
    a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1))
}

/// Max-heap entry: the worst kept candidate on top, to be pushed out.
struct Kept(Candidate);

impl PartialEq for Kept {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Kept {}
impl PartialOrd for Kept {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Kept {
    fn cmp(&self, other: &Self) -> Ordering {
        best_order(&self.0.best_key(), &other.0.best_key())
    }
}

/// Gathers one page of matches from faces offered in newest-first order.
pub struct Collector {
    order: SearchOrder,
    limit: usize,
    after: Option<SearchCursor>,
    max_distance: f32,
    heap: BinaryHeap<Kept>,
    newest: Vec<Candidate>,
    pub scanned: u64,
}

impl Collector {
    pub fn new(order: SearchOrder, limit: u32, after: Option<SearchCursor>, max_distance: f32) -> Self {
        Self {
            order,
            limit: limit as usize,
            after,
            max_distance,
            heap: BinaryHeap::new(),
            newest: Vec::new(),
            scanned: 0,
        }
    }

    /// Takes one raw stored face, as [`Collector::offer`] does.
    pub fn offer_raw(&mut self, raw: &RawDocument, probe: &ProbeEmbeddings) -> Result<bool, Malformed> {
        let distance = Candidate::distance_of(raw, probe).ok_or(Malformed)?;
        if distance > self.max_distance {
            self.scanned += 1;
            return Ok(false);
        }
        Ok(self.offer(Candidate::read(raw, distance).ok_or(Malformed)?))
    }

    /// Takes one face; true once the page is complete (nothing offered
    /// later can change it).
    pub fn offer(&mut self, candidate: Candidate) -> bool {
        self.scanned += 1;
        if candidate.distance > self.max_distance {
            return false;
        }
        match self.order {
            SearchOrder::Best => {
                if let Some(SearchCursor::Best { distance, id }) = self.after {
                    if best_order(&candidate.best_key(), &(distance, id)) != Ordering::Greater {
                        return false;
                    }
                }
                self.heap.push(Kept(candidate));
                if self.heap.len() > self.limit + 1 {
                    self.heap.pop();
                }
                false
            }
            SearchOrder::Newest => {
                // The database applied the cursor: these come after it.
                self.newest.push(candidate);
                self.newest.len() > self.limit
            }
        }
    }

    /// The page, in order, and the cursor of the next one.
    pub fn finish(self) -> (Vec<Candidate>, Option<SearchCursor>) {
        let mut page: Vec<Candidate> = match self.order {
            SearchOrder::Best => {
                let mut all: Vec<Candidate> = self.heap.into_iter().map(|k| k.0).collect();
                all.sort_by(|a, b| best_order(&a.best_key(), &b.best_key()));
                all
            }
            SearchOrder::Newest => self.newest,
        };
        let more = page.len() > self.limit;
        page.truncate(self.limit);
        let next = more.then(|| page.last()).flatten().map(|last| match self.order {
            SearchOrder::Best => SearchCursor::Best {
                distance: last.distance,
                id: last.id,
            },
            SearchOrder::Newest => SearchCursor::Newest(PageCursor {
                at_millis: last.at_millis,
                id: last.id,
            }),
        });
        (page, next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidates(distances: &[f32]) -> Vec<Candidate> {
        // Newest first, as the scan reads them.
        distances
            .iter()
            .enumerate()
            .map(|(i, &distance)| Candidate {
                id: ObjectId::new(),
                detection: ObjectId::new(),
                face_index: 0,
                at_millis: 1_000_000 - i as i64,
                distance,
            })
            .collect()
    }

    fn pages(order: SearchOrder, all: &[Candidate], limit: u32, max: f32) -> Vec<Vec<f32>> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let mut collector = Collector::new(order, limit, after, max);
            for c in all {
                // What the database's cursor filter does for newest first.
                if let Some(SearchCursor::Newest(cur)) = after {
                    if (c.at_millis, c.id) >= (cur.at_millis, cur.id) {
                        continue;
                    }
                }
                if collector.offer(*c) {
                    break;
                }
            }
            let (page, next) = collector.finish();
            out.push(page.iter().map(|c| c.distance).collect());
            match next {
                Some(next) => after = Some(next),
                None => return out,
            }
        }
    }

    #[test]
    fn nearest_first_pages_cover_every_match_once_in_order() {
        let all = candidates(&[0.5, 0.2, 0.9, 0.2, 0.1, 0.45, 0.3]);
        assert_eq!(
            pages(SearchOrder::Best, &all, 2, 0.6),
            vec![vec![0.1, 0.2], vec![0.2, 0.3], vec![0.45, 0.5]]
        );
    }

    #[test]
    fn newest_first_pages_keep_arrival_order_and_skip_far_faces() {
        let all = candidates(&[0.5, 0.2, 0.9, 0.2, 0.1, 0.45, 0.3]);
        assert_eq!(
            pages(SearchOrder::Newest, &all, 4, 0.6),
            vec![vec![0.5, 0.2, 0.2, 0.1], vec![0.45, 0.3]]
        );
    }

    #[test]
    fn the_heap_never_holds_more_than_a_page() {
        let all = candidates(&vec![0.3; 10_000]);
        let mut collector = Collector::new(SearchOrder::Best, 5, None, 0.6);
        for c in &all {
            collector.offer(*c);
            assert!(collector.heap.len() <= 6);
        }
        assert_eq!(collector.scanned, 10_000);
        let (page, next) = collector.finish();
        assert_eq!(page.len(), 5);
        assert!(next.is_some());
    }

    /// A stored face as the scan reads it; without `face_index` when `None`.
    fn stored(embedding: &Embedding, face_index: Option<i32>) -> mongodb::bson::RawDocumentBuf {
        let bytes: Vec<u8> = embedding
            .as_array()
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let mut raw = mongodb::bson::rawdoc! {
            "_id": ObjectId::new(),
            "detection_id": ObjectId::new(),
            "created_at": mongodb::bson::DateTime::now(),
            "embedding": mongodb::bson::Binary { subtype: mongodb::bson::spec::BinarySubtype::Generic, bytes },
        };
        if let Some(index) = face_index {
            raw.append("face_index", index);
        }
        raw
    }

    #[test]
    fn raw_faces_are_read_fully_only_when_near_and_bad_ones_are_refused() {
        let origin = Embedding::from_array([0.0; crate::vision::EMBEDDING_LEN]);
        let mut far = [0.0; crate::vision::EMBEDDING_LEN];
        far[3] = 2.0;
        let probe = ProbeEmbeddings::new(vec![origin]).unwrap();
        let mut collector = Collector::new(SearchOrder::Best, 10, None, 0.6);
        assert_eq!(collector.offer_raw(&stored(&origin, Some(2)), &probe), Ok(false));
        // Far: its other fields are not even looked at.
        assert_eq!(
            collector.offer_raw(&stored(&Embedding::from_array(far), None), &probe),
            Ok(false)
        );
        let mut short = mongodb::bson::RawDocumentBuf::new();
        short.append(
            "embedding",
            mongodb::bson::Binary {
                subtype: mongodb::bson::spec::BinarySubtype::Generic,
                bytes: vec![0; 12],
            },
        );
        assert_eq!(collector.offer_raw(&short, &probe), Err(Malformed));
        assert_eq!(
            collector.offer_raw(&stored(&origin, None), &probe),
            Err(Malformed)
        );
        assert_eq!(
            collector.offer_raw(&stored(&origin, Some(-1)), &probe),
            Err(Malformed)
        );
        assert_eq!(collector.scanned, 2);
        let (page, next) = collector.finish();
        assert_eq!(page.len(), 1);
        assert_eq!((page[0].face_index, page[0].distance), (2, 0.0));
        assert!(next.is_none());
    }

    #[test]
    fn a_subject_probe_averages_its_faces() {
        let a = Embedding::from_array([0.0; crate::vision::EMBEDDING_LEN]);
        let mut far = [0.0; crate::vision::EMBEDDING_LEN];
        far[0] = 1.0;
        let b = Embedding::from_array(far);
        let probe = ProbeEmbeddings::new(vec![a, b]).unwrap();
        assert!((probe.distance(&a) - 0.5).abs() < 1e-6);
        assert!(ProbeEmbeddings::new(Vec::new()).is_none());
    }
}
