//! PyO3 binding for sealbus-core: conversions, GIL release, error mapping, nothing
//! else. Each submodule binds one core module and registers its classes here.

use pyo3::prelude::*;

mod error;
mod gil;
mod log;
mod pattern;
mod router;
mod schema;
mod seal;

#[pymodule]
fn _sealbus(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    pattern::register(m)?;
    schema::register(m)?;
    seal::register(m)?;
    log::register(m)?;
    router::register(m)?;
    Ok(())
}
