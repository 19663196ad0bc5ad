//! The image formats vigil accepts and stores; the media type of a raw
//! upload body and the extension of a stored image both come from here.

/// An image format an upload may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageKind {
    Jpeg,
    Png,
    Webp,
    Bmp,
    Gif,
}

impl ImageKind {
    pub const ALL: [ImageKind; 5] = [Self::Jpeg, Self::Png, Self::Webp, Self::Bmp, Self::Gif];

    pub fn extension(self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Png => "png",
            Self::Webp => "webp",
            Self::Bmp => "bmp",
            Self::Gif => "gif",
        }
    }

    /// The media type of a raw upload body of this kind.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Webp => "image/webp",
            Self::Bmp => "image/bmp",
            Self::Gif => "image/gif",
        }
    }

    /// The kind a media type (`image/png`, any case, parameters ignored) names.
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let essence = content_type.split(';').next().unwrap_or("").trim();
        Self::ALL
            .into_iter()
            .find(|kind| kind.content_type().eq_ignore_ascii_case(essence))
    }

    #[cfg(feature = "image")]
    pub fn from_image_format(format: image::ImageFormat) -> Option<Self> {
        Some(match format {
            image::ImageFormat::Jpeg => Self::Jpeg,
            image::ImageFormat::Png => Self::Png,
            image::ImageFormat::WebP => Self::Webp,
            image::ImageFormat::Bmp => Self::Bmp,
            image::ImageFormat::Gif => Self::Gif,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_name_their_kind() {
        for kind in ImageKind::ALL {
            assert_eq!(ImageKind::from_content_type(kind.content_type()), Some(kind));
        }
        assert_eq!(
            ImageKind::from_content_type("IMAGE/PNG; q=1"),
            Some(ImageKind::Png)
        );
        assert_eq!(ImageKind::from_content_type("image/tiff"), None);
    }
}
