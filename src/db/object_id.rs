//! Id newtypes over MongoDB's ObjectId, shown to clients as 24 hex digits.

/// Declares `pub struct $name(pub ObjectId)` with `new`, `FromStr` and
/// `Display`, serialised as the ObjectId itself.
#[macro_export]
macro_rules! object_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub mongodb::bson::oid::ObjectId);

        impl $name {
            pub fn new() -> Self {
                Self(mongodb::bson::oid::ObjectId::new())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl std::str::FromStr for $name {
            type Err = mongodb::bson::oid::Error;

            fn from_str(raw: &str) -> Result<Self, Self::Err> {
                mongodb::bson::oid::ObjectId::parse_str(raw).map(Self)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0.to_hex())
            }
        }
    };
}
