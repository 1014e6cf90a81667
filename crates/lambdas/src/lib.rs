//! pairscale's Lambda handlers. Each binary in `src/bin/` is a screen long: it reads its
//! [`config::Config`] once, builds its clients once and hands a handler from [`handlers`] to
//! [`runtime::run`]. Tests call the handlers directly.
//!
//! Layout:
//! - [`config`]: environment variables (the same names Terraform sets), parsed once.
//! - [`input`]: JSON input → typed action, with errors that name the field and the value.
//! - [`metrics`]: fleet metrics as CloudWatch embedded-metric-format lines.
//! - [`runtime`]: the Lambda loop, fixed `errorType` names, panics caught and named.
//! - [`handlers`]: `lock`, `state`, `drain` and `build`.

pub mod config;
pub mod handlers;
pub mod input;
pub mod metrics;
pub mod runtime;
