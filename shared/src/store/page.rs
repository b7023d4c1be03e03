//! Reading a Query page by page: how much to read, and where the next page starts.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use serde::{Deserialize, Serialize};

use super::error::{Result, StoreError};
use super::table::Item;

/// An opaque position in a Query's results, safe to store and to pass to another process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cursor(String);

impl Cursor {
    pub(super) fn encode(last: &Item) -> Result<Self> {
        let mut map = std::collections::BTreeMap::new();
        for (name, value) in last {
            let text = value.as_s().map_err(|_| {
                StoreError::Corrupt(format!("key attribute {name} is not a string"))
            })?;
            map.insert(name.clone(), text.clone());
        }
        let json = serde_json::to_vec(&map).expect("a map of strings serialises");
        Ok(Cursor(B64URL.encode(json)))
    }

    pub(super) fn decode(&self) -> Result<Item> {
        let corrupt = || StoreError::Rejected("the cursor is not one this store produced".into());
        let json = B64URL.decode(&self.0).map_err(|_| corrupt())?;
        let map: HashMap<String, String> = serde_json::from_slice(&json).map_err(|_| corrupt())?;
        Ok(map
            .into_iter()
            .map(|(k, v)| (k, AttributeValue::S(v)))
            .collect())
    }
}

/// How much of a Query to read.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    pub limit: Option<i32>,
    /// Newest (highest sort key) first.
    pub backwards: bool,
    pub after: Option<Cursor>,
}

#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Cursor>,
}
