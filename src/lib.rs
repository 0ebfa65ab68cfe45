//! Gatehouse: sign-in, access control, encryption at rest and a tamper-evident
//! audit log in one binary. Layers, top to bottom: `cli`/`app` → `web` →
//! domain modules (`identity`, `authn`, `access`, `tokens`, `keys`, `audit`, `sso`,
//! `ops`) → `store` → `crypto`; `config`, `clock`, `error` are leaves.

pub mod access;
pub mod app;
pub mod audit;
pub mod authn;
pub mod cli;
pub mod clock;
pub mod config;
pub mod control;
pub mod crypto;
pub mod error;
pub mod identity;
pub mod keys;
pub mod notify;
pub mod ops;
pub mod policy;
pub mod ratelimit;
pub mod service;
pub mod sso;
pub mod store;
pub mod telemetry;
pub mod tokens;
pub mod web;
