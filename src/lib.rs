//! Gatehouse: sign-in, access control, encryption at rest and a tamper-evident
//! audit log in one binary. Layers, top to bottom: `cli`/`app` → `web` →
//! domain modules (`users`, `identity`, `authn`, `access`, `tokens`, `keys`, `audit`, `sinks`,
//! `sso`, `vault`, `ops`) → `principal` (the user vocabulary) → `store` → `crypto`; `config`,
//! `clock`, `error` are leaves. `service` holds each domain module's state as
//! one field per module; no import cycle between domain modules
//! (`scripts/check-layers.sh`).
//!
//! A module is `pub` only where tests/ or benches/ reach into it (or, for `cli`,
//! main.rs); the rest are `pub(crate)`, so an item nobody calls shows up as dead code.

pub mod access;
pub mod app;
pub mod audit;
pub mod authn;
pub mod cli;
pub mod clock;
pub mod config;
pub(crate) mod control;
pub mod crypto;
pub(crate) mod error;
pub mod identity;
pub(crate) mod keys;
pub(crate) mod notify;
pub(crate) mod ops;
pub mod overview;
pub mod policy;
pub(crate) mod principal;
pub(crate) mod ratelimit;
pub(crate) mod rollout;
pub mod service;
pub(crate) mod sinks;
pub mod sso;
pub mod store;
pub(crate) mod telemetry;
pub mod tls;
pub mod tokens;
pub mod users;
pub mod vault;
pub mod web;
