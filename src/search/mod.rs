//! Search by face: the stored detections where a person appears, nearest
//! or newest first, within a time range, scoped to what the caller may see
//! (their own detections; every detection for an admin).
//!
//! - [`scan`]: the exact scan over the stored faces of the window.
//! - [`cursor`]: where the next page starts.
//!
//! Every search is written to the audit log before its answer is given.

pub mod cursor;
pub mod scan;

use futures_util::TryStreamExt;
use mongodb::bson::oid::ObjectId;

pub use cursor::SearchCursor;
pub use scan::{Candidate, Collector, ProbeEmbeddings};
pub use vigil_wire::search::{FaceSearchProbe, SearchOrder};

use crate::audit::{AuditAction, AuditLog};
use crate::db::paging::{PageError, PageRequest};
use crate::db::DbError;
use crate::detections::{DetectionId, DetectionRecord, Detections, FacePrints, PrintScope};
use crate::error::{Coded, ErrorCode};
use crate::people::{People, PeopleError, SubjectId};
use crate::users::UserId;

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error(transparent)]
    Page(#[from] PageError),
    #[error("`max_distance` must be a number above 0 and at most {MAX_DISTANCE}")]
    BadMaxDistance,
    #[error("no detection with this id")]
    DetectionNotFound,
    #[error("this face has no stored embedding: it could not be embedded, or it was an unknown face whose embedding expired (--unknown-face-retention-days)")]
    FaceNotStored,
    #[error("the subject has no enrolled face to search with")]
    SubjectHasNoFaces,
    #[error(transparent)]
    People(#[from] PeopleError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl Coded for SearchError {
    fn code(&self) -> ErrorCode {
        match self {
            SearchError::Page(e) => e.code(),
            SearchError::BadMaxDistance => ErrorCode::InvalidQuery,
            SearchError::DetectionNotFound => ErrorCode::NotFound,
            SearchError::FaceNotStored | SearchError::SubjectHasNoFaces => ErrorCode::NoEmbedding,
            SearchError::People(e) => e.code(),
            SearchError::Db(e) => e.code(),
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            SearchError::People(e) => e.retry_after(),
            SearchError::Db(e) => e.retry_after(),
            _ => None,
        }
    }
}

/// The largest `max_distance` accepted: far beyond any two faces of the
/// same person (below 0.6) and any two faces at all (about 1.3).
pub const MAX_DISTANCE: f32 = 4.0;

/// The face to look for, parsed.
#[derive(Debug)]
pub enum Probe {
    /// An image: its largest face.
    Image(Vec<u8>),
    DetectionFace {
        detection: DetectionId,
        face_index: u32,
    },
    Subject(SubjectId),
}

impl Probe {
    /// From the JSON body; an id that is not an ObjectId names nothing (404).
    pub fn from_wire(probe: FaceSearchProbe) -> Result<Self, SearchError> {
        match probe {
            FaceSearchProbe::DetectionFace {
                detection_id,
                face_index,
            } => Ok(Probe::DetectionFace {
                detection: detection_id.parse().map_err(|_| SearchError::DetectionNotFound)?,
                face_index,
            }),
            FaceSearchProbe::Subject { subject_id } => {
                Ok(Probe::Subject(subject_id.parse().map_err(|_| {
                    SearchError::People(PeopleError::SubjectNotFound)
                })?))
            }
        }
    }

    /// What the audit log says was looked for.
    fn describe(&self) -> String {
        match self {
            Probe::Image(_) => "an uploaded image".to_owned(),
            Probe::DetectionFace {
                detection,
                face_index,
            } => {
                format!("face {face_index} of detection {detection}")
            }
            Probe::Subject(subject) => format!("subject {subject}"),
        }
    }
}

/// The page asked for.
#[derive(Debug, Clone)]
pub struct SearchQuery {
    /// `from`, `to` and `limit` (its cursor is not used: see `after`).
    pub window: PageRequest,
    pub order: SearchOrder,
    pub after: Option<SearchCursor>,
    /// `None`: the recognition threshold.
    pub max_distance: Option<f32>,
}

impl SearchQuery {
    /// `window` as the list endpoints parse it, without a cursor.
    pub fn parse(
        window: PageRequest,
        order: Option<SearchOrder>,
        cursor: Option<&str>,
        max_distance: Option<f32>,
    ) -> Result<Self, SearchError> {
        let order = order.unwrap_or_default();
        let after = cursor
            .filter(|c| !c.is_empty())
            .map(|c| SearchCursor::decode(c, order))
            .transpose()?;
        if let Some(d) = max_distance {
            if !(d > 0.0 && d <= MAX_DISTANCE) {
                return Err(SearchError::BadMaxDistance);
            }
        }
        Ok(Self {
            window,
            order,
            after,
            max_distance,
        })
    }
}

/// Who searches: a user sees their own detections, an admin every one.
#[derive(Debug, Clone, Copy)]
pub struct Searcher {
    pub user: UserId,
    pub admin: bool,
}

impl Searcher {
    fn scope(&self) -> PrintScope {
        if self.admin {
            PrintScope::Everyone
        } else {
            PrintScope::Owner(self.user)
        }
    }
}

/// One stored face near the probe, with its detection.
#[derive(Debug, Clone)]
pub struct FaceMatch {
    pub detection: DetectionRecord,
    pub face_index: u32,
    pub distance: f32,
}

#[derive(Debug, Clone)]
pub struct SearchPage {
    pub matches: Vec<FaceMatch>,
    pub next_cursor: Option<String>,
    pub scanned: u64,
}

/// One page of the scan: the matches in order, where the next page
/// starts, how many stored faces were compared.
#[derive(Debug)]
pub struct ScannedPage {
    pub page: Vec<Candidate>,
    pub next: Option<SearchCursor>,
    pub scanned: u64,
}

/// The exact scan of the stored faces of `model` that `scope` may see,
/// over the query's window; `threshold` when the query sets no
/// `max_distance`.
pub async fn scan_prints(
    prints: &FacePrints,
    scope: PrintScope,
    model: &str,
    probe: &ProbeEmbeddings,
    query: &SearchQuery,
    threshold: f32,
) -> Result<ScannedPage, DbError> {
    let mut window = query.window.clone();
    if let Some(SearchCursor::Newest(after)) = query.after {
        window.cursor = Some(after);
    }
    let filter = window.filter("created_at", mongodb::bson::Document::new());
    let mut cursor = prints.scan(scope, model, filter).await?;
    let mut collector = Collector::new(
        query.order,
        query.window.limit,
        query.after,
        query.max_distance.unwrap_or(threshold),
    );
    while let Some(raw) = cursor.try_next().await.map_err(DbError::from_driver)? {
        match collector.offer_raw(&raw, probe) {
            Ok(true) => break,
            Ok(false) => {}
            Err(_) => tracing::warn!("a stored face could not be read; skipped"),
        }
    }
    let scanned = collector.scanned;
    let (page, next) = collector.finish();
    Ok(ScannedPage { page, next, scanned })
}

#[derive(Clone)]
pub struct FaceSearch {
    pub prints: FacePrints,
    pub detections: Detections,
    pub people: People,
    pub audit: AuditLog,
    /// The recognition threshold: the default `max_distance`.
    pub threshold: f32,
}

impl FaceSearch {
    pub async fn search(
        &self,
        searcher: Searcher,
        probe: Probe,
        query: SearchQuery,
    ) -> Result<SearchPage, SearchError> {
        let target = probe.describe();
        let embeddings = self.embeddings(searcher, probe).await?;
        let page = self.scan(searcher.scope(), &embeddings, &query).await?;
        // The answer exists only once the access is on record.
        self.audit
            .record(searcher.user, AuditAction::FaceSearch, target, page.matches.len())
            .await?;
        Ok(page)
    }

    async fn embeddings(&self, searcher: Searcher, probe: Probe) -> Result<ProbeEmbeddings, SearchError> {
        let model = self.people.recognizer.model_id();
        let embeddings = match probe {
            Probe::Image(bytes) => vec![self.people.embed_largest_face(bytes).await?],
            Probe::DetectionFace {
                detection,
                face_index,
            } => {
                let print = self
                    .prints
                    .of_face(searcher.scope(), detection, face_index)
                    .await?;
                match print {
                    Some(print) if print.model == model => vec![print.embedding.0],
                    Some(_) => return Err(SearchError::FaceNotStored),
                    None => {
                        // Tell "no such detection" from "no stored face".
                        let seen = match searcher.scope() {
                            PrintScope::Owner(owner) => self
                                .detections
                                .get(crate::detections::DetectionScope(owner), detection)
                                .await?
                                .is_some(),
                            PrintScope::Everyone => !self.detections.by_ids(&[detection.0]).await?.is_empty(),
                        };
                        return Err(if seen {
                            SearchError::FaceNotStored
                        } else {
                            SearchError::DetectionNotFound
                        });
                    }
                }
            }
            Probe::Subject(subject) => self
                .people
                .faces(searcher.user, subject)
                .await?
                .into_iter()
                .filter(|f| f.model == model)
                .map(|f| f.embedding.0)
                .collect(),
        };
        ProbeEmbeddings::new(embeddings).ok_or(SearchError::SubjectHasNoFaces)
    }

    /// The exact scan over the window, then the page's detections.
    async fn scan(
        &self,
        scope: PrintScope,
        probe: &ProbeEmbeddings,
        query: &SearchQuery,
    ) -> Result<SearchPage, SearchError> {
        let model = self.people.recognizer.model_id();
        let ScannedPage { page, next, scanned } =
            scan_prints(&self.prints, scope, model, probe, query, self.threshold).await?;
        let ids: Vec<ObjectId> = page.iter().map(|c| c.detection).collect();
        let detections = self.detections.by_ids(&ids).await?;
        // A detection deleted since the scan takes its faces with it.
        let matches = page
            .into_iter()
            .filter_map(|c| {
                let detection = detections.iter().find(|d| d.id.0 == c.detection)?.clone();
                Some(FaceMatch {
                    detection,
                    face_index: c.face_index,
                    distance: c.distance,
                })
            })
            .collect();
        Ok(SearchPage {
            matches,
            next_cursor: next.map(|c| c.encode()),
            scanned,
        })
    }
}
