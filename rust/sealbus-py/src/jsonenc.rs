//! Producer data to JSON without the `json` module: exact dicts with string keys,
//! lists, tuples, strings, integers, finite floats, booleans and None are written
//! straight into one buffer, the same JSON value that
//! `json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)`
//! gives (floats may differ in form, `1e16` for `1e+16`, never in value).
//!
//! Anything else (a subclass, a non-string key, an integer beyond 64 bits, NaN, a
//! lone surrogate, nesting deeper than the router accepts) answers `None`, and the
//! caller encodes with `json` as before: so what is accepted, and the error for what
//! is not, stay `json`'s.

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

/// Deeper than this is left to `json` (and then refused by the router's parser).
const MAX_DEPTH: usize = 128;

struct Value<'a, 'py> {
    obj: &'a Bound<'py, PyAny>,
    depth: usize,
}

/// Not ours to encode: the caller falls back to `json`.
fn other<E: serde::ser::Error>() -> E {
    E::custom("outside the fast path")
}

impl Serialize for Value<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let o = self.obj;
        if let Ok(v) = o.cast_exact::<PyString>() {
            return s.serialize_str(v.to_str().map_err(|_| other::<S::Error>())?);
        }
        if let Ok(d) = o.cast_exact::<PyDict>() {
            let depth = self.nested::<S::Error>()?;
            let mut m = s.serialize_map(Some(d.len()))?;
            for (k, v) in d.iter() {
                let k = k
                    .cast_exact::<PyString>()
                    .map_err(|_| other::<S::Error>())?;
                m.serialize_entry(
                    k.to_str().map_err(|_| other::<S::Error>())?,
                    &Value { obj: &v, depth },
                )?;
            }
            return m.end();
        }
        if let Ok(i) = o.cast_exact::<PyInt>() {
            if let Ok(v) = i.extract::<i64>() {
                return s.serialize_i64(v);
            }
            return match i.extract::<u64>() {
                Ok(v) => s.serialize_u64(v),
                Err(_) => Err(other()),
            };
        }
        if let Ok(f) = o.cast_exact::<PyFloat>() {
            let v = f.value();
            return if v.is_finite() {
                s.serialize_f64(v)
            } else {
                Err(other())
            };
        }
        if let Ok(l) = o.cast_exact::<PyList>() {
            return self.array(s, l.len(), l.iter());
        }
        if let Ok(b) = o.cast_exact::<PyBool>() {
            return s.serialize_bool(b.is_true());
        }
        if o.is_none() {
            return s.serialize_unit();
        }
        if let Ok(t) = o.cast_exact::<PyTuple>() {
            return self.array(s, t.len(), t.iter());
        }
        Err(other())
    }
}

impl<'py> Value<'_, 'py> {
    /// A list or a tuple, as a JSON array.
    fn array<S: Serializer>(
        &self,
        s: S,
        len: usize,
        items: impl Iterator<Item = Bound<'py, PyAny>>,
    ) -> Result<S::Ok, S::Error> {
        let depth = self.nested::<S::Error>()?;
        let mut q = s.serialize_seq(Some(len))?;
        for v in items {
            q.serialize_element(&Value { obj: &v, depth })?;
        }
        q.end()
    }

    fn nested<E: serde::ser::Error>(&self) -> Result<usize, E> {
        if self.depth >= MAX_DEPTH {
            Err(other())
        } else {
            Ok(self.depth + 1)
        }
    }
}

/// `obj` as a JSON value, or None when `json` must encode it.
pub fn to_value(obj: &Bound<'_, PyAny>) -> Option<serde_json::Value> {
    serde_json::to_value(Value { obj, depth: 0 }).ok()
}

fn encode_into(obj: &Bound<'_, PyAny>, out: &mut Vec<u8>) -> bool {
    serde_json::to_writer(&mut *out, &Value { obj, depth: 0 }).is_ok()
}

/// `data` as compact JSON bytes, or None when `json` must encode it.
#[pyfunction]
fn encode_json<'py>(py: Python<'py>, data: &Bound<'py, PyAny>) -> Option<Bound<'py, PyBytes>> {
    let mut out = Vec::with_capacity(256);
    encode_into(data, &mut out).then(|| PyBytes::new(py, &out))
}

/// A batch's data as one buffer and n + 1 offsets, or None when an item needs
/// `json` (or is not JSON data at all).
#[pyfunction]
fn encode_json_batch<'py>(
    py: Python<'py>,
    items: &Bound<'py, PyAny>,
) -> Option<(Bound<'py, PyBytes>, Vec<usize>)> {
    let mut out = Vec::new();
    let mut offsets = vec![0];
    let mut add = |item: Bound<'py, PyAny>| {
        let ok = encode_into(&item, &mut out);
        offsets.push(out.len());
        ok
    };
    let all = if let Ok(l) = items.cast_exact::<PyList>() {
        l.iter().all(&mut add)
    } else if let Ok(t) = items.cast_exact::<PyTuple>() {
        t.iter().all(&mut add)
    } else {
        false
    };
    all.then(|| (PyBytes::new(py, &out), offsets))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(encode_json, m)?)?;
    m.add_function(wrap_pyfunction!(encode_json_batch, m)?)?;
    Ok(())
}
