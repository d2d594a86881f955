//! TEMPORARY scaffold with the agreed API so the router compiles while the real
//! registry is built on the `schema` branch (which replaces this file).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compatibility {
    None,
    Backward,
    Forward,
    Full,
}

impl std::str::FromStr for Compatibility {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "none" => Ok(Self::None),
            "backward" => Ok(Self::Backward),
            "forward" => Ok(Self::Forward),
            "full" => Ok(Self::Full),
            _ => Err(Error::InvalidArgument {
                name: "compatibility".into(),
                reason: s.into(),
            }),
        }
    }
}

#[derive(Debug)]
pub struct CompiledSchema {
    version: u32,
}

impl CompiledSchema {
    pub fn version(&self) -> u32 {
        self.version
    }
    pub fn validate(&self, _data: &serde_json::Value, _index: usize) -> Result<()> {
        Ok(())
    }
    /// The real registry's zero-copy entry point (same signature): here only a
    /// well-formedness check that builds no `Value`.
    pub fn validate_json(&self, bytes: &[u8], index: usize) -> Result<()> {
        serde_json::from_slice::<serde::de::IgnoredAny>(bytes)
            .map(|_| ())
            .map_err(|e| Error::Validation {
                event_type: String::new(),
                version: self.version,
                instance_path: String::new(),
                schema_path: String::new(),
                reason: format!("data is not JSON: {e}"),
                index,
            })
    }
}

#[derive(Default, Debug)]
pub struct SchemaRegistry {
    map: RwLock<HashMap<String, Vec<(u32, serde_json::Value, Arc<CompiledSchema>)>>>,
}

impl SchemaRegistry {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn register(
        &self,
        event_type: &str,
        schema: &serde_json::Value,
        version: Option<u32>,
        _c: Compatibility,
    ) -> Result<u32> {
        let mut m = self.map.write().map_err(|_| Error::Closed {
            what: "schemas".into(),
        })?;
        let list = m.entry(event_type.to_owned()).or_default();
        let v = version.unwrap_or(list.len() as u32 + 1);
        list.push((v, schema.clone(), Arc::new(CompiledSchema { version: v })));
        Ok(v)
    }
    pub fn latest_version(&self, t: &str) -> Option<u32> {
        self.map.read().ok()?.get(t)?.last().map(|x| x.0)
    }
    pub fn validator(&self, t: &str, version: Option<u32>) -> Result<Arc<CompiledSchema>> {
        let m = self.map.read().map_err(|_| Error::Closed {
            what: "schemas".into(),
        })?;
        let nf = || Error::SchemaNotFound {
            event_type: t.into(),
            version,
        };
        let list = m.get(t).ok_or_else(nf)?;
        let e = match version {
            Some(v) => list.iter().find(|x| x.0 == v),
            None => list.last(),
        };
        e.map(|x| x.2.clone()).ok_or_else(nf)
    }
}
