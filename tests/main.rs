//! The one integration-test binary: black-box tests that start Gatehouse on
//! port 0 with a fresh data directory (in-process, or the real executable) and
//! talk HTTP or run the CLI, like an operator or a client would.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod access;
mod access_sec;
mod api;
mod attacks;
mod audit_stream;
mod authn_sec;
mod c14n_sec;
mod cli;
mod codes;
mod common;
mod console;
mod console_c;
mod f1_sec;
mod f3_sec;
mod f4_sec;
mod first_hour;
mod first_hour_api;
mod first_hour_b;
mod first_hour_c;
mod forward_auth;
mod hardening;
mod hb_domain_ops;
mod kv;
mod mfa;
mod perf_ops;
mod policy;
mod r345_sec;
mod r3_sec;
mod r4_sec;
mod r5_sec;
mod r5b_sec;
mod r6_limits_sec;
mod r6_sec;
mod rest_sec;
mod sa1_sec;
mod sa2_sec;
mod saml;
mod sb_sec;
mod sso;
mod sso_sec;
mod sw_sec;
mod tls;
mod token_algs;
mod tokens_sec;
mod transit;
mod wsfed;
mod xml_budget_sec;
