//! `PyO3` binding for sealbus-core: conversions, GIL release, error mapping, nothing
//! else. Each submodule binds one core module and registers its classes here.

use pyo3::prelude::*;

// The publish and delivery paths allocate and free batch-sized buffers from several
// threads at once (producer, consumers, log leader); glibc's arenas spent ~13% of the
// durable run in malloc/free/consolidate. mimalloc's thread-local free lists do not.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod aio;
mod alert;
mod args;
mod audit;
mod bridge;
mod e2e_delivery;
mod error;
mod export;
mod gil;
mod identity;
mod import;
mod jsonenc;
mod keyfile;
mod lent;
mod log;
mod outbuf;
mod pattern;
mod pinned;
mod pool;
mod router;
mod schema;
mod seal;
mod select;
mod wire;

#[pymodule]
fn _sealbus(m: &Bound<'_, PyModule>) -> PyResult<()> {
    pool::init();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    pattern::register(m)?;
    audit::register(m)?;
    identity::register(m)?;
    alert::register(m)?;
    schema::register(m)?;
    seal::register(m)?;
    keyfile::register(m)?;
    log::register(m)?;
    router::register(m)?;
    select::register(m)?;
    aio::register(m)?;
    jsonenc::register(m)?;
    wire::register(m)?;
    export::register(m)?;
    import::register(m)?;
    Ok(())
}
