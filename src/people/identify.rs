//! Who the faces of a new detection are: embed each face, match it against
//! the gallery of whoever may see the detection.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use image::RgbImage;
use vigil_wire::people::Identity;

use super::{Gallery, MatchRule};
use crate::detections::{FaceIdentifier, Identified, Viewer};
use crate::users::{UserId, Users};
use crate::vision::{Embedding, Face, RecognizerPool};

#[derive(Clone)]
pub struct Recognition {
    pub recognizer: RecognizerPool,
    pub gallery: Gallery,
    pub rule: MatchRule,
    pub users: Users,
}

impl Recognition {
    async fn owners(&self, viewer: Viewer) -> Vec<UserId> {
        match viewer {
            Viewer::User(user) => vec![user],
            Viewer::Cameras => match self.users.admin_ids().await {
                Ok(admins) => admins,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot list the admins; camera faces stay unnamed this time");
                    Vec::new()
                }
            },
        }
    }

    async fn identify_faces(
        &self,
        viewer: Viewer,
        image: Arc<RgbImage>,
        faces: Vec<Face>,
    ) -> Vec<Option<Identified>> {
        let count = faces.len();
        if count == 0 {
            return Vec::new();
        }
        let embeddings = match self.recognizer.embed(image, faces).await {
            Ok(embeddings) => embeddings,
            Err(err) => {
                tracing::warn!(error = %err, "face embedding failed; the faces are stored without identity");
                return vec![None; count];
            }
        };
        let owners = self.owners(viewer).await;
        let model = self.recognizer.model_id();
        embeddings
            .into_iter()
            .map(|embedding| {
                let embedding = embedding?;
                Some(Identified {
                    identity: self.identity_of(&owners, &embedding),
                    embedding,
                    model,
                })
            })
            .collect()
    }

    /// Who an embedded face is among the subjects of `owners`.
    pub fn identity_of(&self, owners: &[UserId], embedding: &Embedding) -> Identity {
        let nearest = self.gallery.distances(owners, embedding);
        self.rule.decide(&nearest, |s| self.gallery.name(s))
    }
}

impl FaceIdentifier for Recognition {
    fn identify(
        &self,
        viewer: Viewer,
        image: Arc<RgbImage>,
        faces: Vec<Face>,
    ) -> BoxFuture<'_, Vec<Option<Identified>>> {
        Box::pin(self.identify_faces(viewer, image, faces))
    }
}
