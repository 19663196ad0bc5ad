//! Who the faces of a new detection are: embed each face, match it against
//! the gallery of whoever may see the detection.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use image::RgbImage;
use vigil_wire::people::Identity;

use super::{Gallery, MatchRule};
use crate::detections::{FaceIdentifier, Viewer};
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
    ) -> Vec<Option<Identity>> {
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
        embeddings
            .iter()
            .map(|embedding| Some(self.identity_of(&owners, embedding.as_ref()?)))
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
    ) -> BoxFuture<'_, Vec<Option<Identity>>> {
        Box::pin(self.identify_faces(viewer, image, faces))
    }
}
