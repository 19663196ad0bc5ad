//! mongodump's `<collection>.metadata.json`: the collection's options
//! (validator included) and its indexes, in canonical Extended JSON, so that
//! `mongorestore` recreates the collection as it was, and so does
//! `vigil restore`.

use futures_util::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};
use serde_json::{json, Value};

use super::BackupError;
use crate::db::Database;

/// A collection as `listCollections` and `listIndexes` describe it.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionMetadata {
    pub name: String,
    pub options: Document,
    pub indexes: Vec<Document>,
    pub uuid: Option<String>,
}

/// The collections of the database (views and system collections left
/// out: vigil makes neither), with their options and indexes.
pub async fn read_all(db: &Database) -> Result<Vec<CollectionMetadata>, BackupError> {
    let listed: Vec<Document> = db
        .handle()
        .run_cursor_command(doc! { "listCollections": 1 })
        .await?
        .try_collect()
        .await?;
    let mut collections = Vec::new();
    for spec in listed {
        let name = spec
            .get_str("name")
            .map_err(|_| BackupError::Corrupt(format!("listCollections answered {spec}")))?
            .to_owned();
        let kind = spec.get_str("type").unwrap_or("collection");
        if kind != "collection" || name.starts_with("system.") {
            continue;
        }
        let options = spec.get_document("options").cloned().unwrap_or_default();
        let uuid = match spec.get_document("info").ok().and_then(|info| info.get("uuid")) {
            Some(Bson::Binary(binary)) => Some(hex::encode(&binary.bytes)),
            _ => None,
        };
        let indexes: Vec<Document> = db
            .handle()
            .run_cursor_command(doc! { "listIndexes": &name })
            .await?
            .try_collect()
            .await?;
        collections.push(CollectionMetadata {
            name,
            options,
            indexes,
            uuid,
        });
    }
    collections.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(collections)
}

impl CollectionMetadata {
    /// The file's contents, in mongodump's shape.
    pub fn to_json(&self) -> Value {
        let mut value = json!({
            "options": Bson::Document(self.options.clone()).into_canonical_extjson(),
            "indexes": self
                .indexes
                .iter()
                .map(|index| Bson::Document(index.clone()).into_canonical_extjson())
                .collect::<Vec<_>>(),
            "collectionName": self.name,
            "type": "collection",
        });
        if let Some(uuid) = &self.uuid {
            value["uuid"] = json!(uuid);
        }
        value
    }

    /// Reads a file written by [`Self::to_json`] or by mongodump.
    pub fn from_json(name: &str, bytes: &[u8]) -> Result<Self, BackupError> {
        let bad = |why: String| BackupError::Corrupt(format!("the metadata of {name}: {why}"));
        let value: Value = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        let document = match Bson::try_from(value).map_err(|e| bad(e.to_string()))? {
            Bson::Document(document) => document,
            other => return Err(bad(format!("expected an object, found {other}"))),
        };
        let options = match document.get("options") {
            None | Some(Bson::Null) => Document::new(),
            Some(Bson::Document(options)) => options.clone(),
            Some(other) => return Err(bad(format!("options is {other}"))),
        };
        let indexes = match document.get("indexes") {
            None => Vec::new(),
            Some(Bson::Array(indexes)) => indexes
                .iter()
                .map(|index| match index {
                    Bson::Document(index) if index.contains_key("key") && index.contains_key("name") => {
                        Ok(index.clone())
                    }
                    other => Err(bad(format!("an index without key and name: {other}"))),
                })
                .collect::<Result<_, _>>()?,
            Some(other) => return Err(bad(format!("indexes is {other}"))),
        };
        Ok(Self {
            name: name.to_owned(),
            options,
            indexes,
            uuid: document.get_str("uuid").ok().map(str::to_owned),
        })
    }

    /// The indexes to create after the documents: all but `_id`'s, which
    /// every collection has, without the `ns` field older servers listed
    /// (createIndexes refuses it).
    pub fn secondary_indexes(&self) -> Vec<Document> {
        self.indexes
            .iter()
            .filter(|index| index.get_str("name") != Ok("_id_"))
            .map(|index| {
                let mut index = index.clone();
                index.remove("ns");
                index
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_mongodumps_shape() {
        let metadata = CollectionMetadata {
            name: "ws_messages".into(),
            options: doc! { "validator": { "$jsonSchema": { "bsonType": "object", "required": ["at"] } } },
            indexes: vec![
                doc! { "v": 2, "key": { "_id": 1 }, "name": "_id_" },
                doc! { "v": 2, "key": { "expires_at": 1 }, "name": "expire", "expireAfterSeconds": 0_i64 },
                doc! { "v": 2, "key": { "a": 1 }, "name": "a", "ns": "vigil.ws_messages" },
            ],
            uuid: Some("00112233445566778899aabbccddeeff".into()),
        };
        let json = metadata.to_json();
        assert_eq!(json["indexes"][0]["v"], json!({ "$numberInt": "2" }), "{json}");
        assert_eq!(json["collectionName"], "ws_messages");
        let bytes = serde_json::to_vec(&json).unwrap();
        let back = CollectionMetadata::from_json("ws_messages", &bytes).unwrap();
        assert_eq!(back, metadata);
        let names: Vec<_> = back
            .secondary_indexes()
            .iter()
            .map(|i| (i.get_str("name").unwrap().to_owned(), i.contains_key("ns")))
            .collect();
        assert_eq!(names, [("expire".to_owned(), false), ("a".to_owned(), false)]);
    }

    #[test]
    fn reads_mongodumps_own_files_and_refuses_garbage() {
        let dumped = br#"{"indexes":[{"v":{"$numberInt":"2"},"key":{"_id":{"$numberInt":"1"}},"name":"_id_"}],"uuid":"d2f9","collectionName":"users","type":"collection"}"#;
        let metadata = CollectionMetadata::from_json("users", dumped).unwrap();
        assert!(metadata.options.is_empty());
        assert_eq!(metadata.indexes.len(), 1);
        for bad in [&b"[]"[..], b"{\"indexes\": 3}", b"{\"indexes\": [{}]}", b"{nope"] {
            let err = CollectionMetadata::from_json("users", bad)
                .unwrap_err()
                .to_string();
            assert!(err.contains("the metadata of users"), "{err}");
        }
    }
}
