//! Recomputing stored embeddings after the model or the alignment changed
//! (`vigil reindex`): from each face's source image and its stored box and
//! landmarks, so nothing has to be enrolled again.

use super::{PeopleError, SubjectFaces};
use crate::media::{ImageKind, MediaId, SharedMediaStore};
use crate::vision::{decode_upload, encode_jpeg, DecodeBudget, ImageLimits, NotEmbedded, RecognizerPool};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReindexReport {
    pub reindexed: usize,
    /// Faces whose source image is gone or no longer gives an embedding;
    /// they stay as they were (and out of matching, when of another model).
    pub failed: Vec<String>,
}

/// Re-embeds the faces of another model than the recognizer's (every face
/// with `all`).
pub async fn reindex(
    faces: &SubjectFaces,
    media: &SharedMediaStore,
    recognizer: &RecognizerPool,
    limits: ImageLimits,
    all: bool,
) -> Result<ReindexReport, PeopleError> {
    let model = recognizer.model_id();
    let ids = if all {
        faces.all_ids().await?
    } else {
        faces.ids_not_of_model(model).await?
    };
    let mut report = ReindexReport::default();
    for id in ids {
        let Some(face) = faces.get(id).await? else {
            continue;
        };
        let Some(bytes) = media.get(face.source_image).await? else {
            report
                .failed
                .push(format!("{id}: the source image {} is gone", face.source_image));
            continue;
        };
        // One image at a time, from the command line: no budget to share.
        let image = match decode_upload(bytes, limits, &DecodeBudget::unlimited()).await {
            Ok(decoded) => decoded.image,
            Err(err) => {
                report.failed.push(format!("{id}: {err}"));
                continue;
            }
        };
        let embedded = match recognizer.embed_one(image, face.face).await? {
            Ok(embedded) => embedded,
            Err(reason @ (NotEmbedded::TooSmall { .. } | NotEmbedded::Unusable(_))) => {
                report.failed.push(format!("{id}: {reason}"));
                continue;
            }
        };
        let crop = MediaId::new(ImageKind::Jpeg);
        media.put(crop, &encode_jpeg(&embedded.chip)?).await?;
        faces.reembed(id, embedded.embedding, model, crop).await?;
        if let Err(err) = media.delete(face.crop).await {
            tracing::warn!(media = %face.crop, error = %err, "could not remove the old crop; the orphan sweep will");
        }
        report.reindexed += 1;
    }
    Ok(report)
}
