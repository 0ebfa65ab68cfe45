//! Placeholder until the shared Vault layer (transit's branch) is merged.

pub mod kv;
