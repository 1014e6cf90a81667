//! pairscale's Lambda handlers. Each binary in `src/bin/` is a screen long: it reads its
//! [`config::Config`] once, builds its clients once and hands a handler from [`handlers`] to
//! [`runtime::run`]. Tests call the handlers directly.
//!
//! Layout:
//! - [`config`]: environment variables (the same names Terraform sets), parsed once.
//! - [`contract`]: each handler's actions as a typed enum, with errors that name the field and
//!   the value; [`schema`]: the JSON schemas of those contracts, for docs/handlers.md.
//! - [`metrics`]: fleet metrics as CloudWatch embedded-metric-format lines.
//! - [`runtime`]: the Lambda loop, fixed `errorType` names, panics caught and named.
//! - [`handlers`]: `lock`, `state`, `drain` and `build`.

pub mod config;
pub mod contract;
pub mod handlers;
pub mod metrics;
pub mod runtime;
pub mod schema;
