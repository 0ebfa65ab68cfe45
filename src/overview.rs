//! The installation at a glance, as the console's dashboard shows it: user
//! counts, failed sign-ins of the last day, the active data key, the size of
//! the audit log and the latest security events; each figure costs a look-up
//! or a read of recent events, never a scan of every user or event. The
//! dashboard is for someone who may see the console (`ViewConsole`).

use crate::access::{Actor, Permission, Resource};
use crate::audit::{self, Event, Filter};
use crate::error::Result;
use crate::identity::{self, UserCounts};
use crate::service::Service;
use crate::store::{Reader, Table};

/// Failed sign-ins are counted up to this many.
pub const FAILED_SIGN_INS_CAP: usize = 10_000;

pub struct Overview {
    pub users: std::sync::Arc<UserCounts>,
    /// Failed password sign-ins in the last 24 hours (at most `FAILED_SIGN_INS_CAP`).
    pub failed_sign_ins: usize,
    pub key_version: u32,
    pub audit_events: u64,
    /// The ten latest sign-in events.
    pub recent: Vec<Event>,
}

/// The dashboard's figures, for someone who may see the console.
pub fn dashboard(svc: &Service, actor: &Actor) -> Result<Overview> {
    actor.authorize(svc, Permission::ViewConsole, Resource::Platform)?;
    overview(svc)
}

/// The figures without a permission check (the dashboard's is `dashboard`;
/// `benches/raw.rs` times this).
pub fn overview(svc: &Service) -> Result<Overview> {
    let users = identity::user_counts(svc)?;
    let r = svc.store.read()?;
    let security = Filter {
        action: Some("auth.".into()),
        ..Default::default()
    };
    let (recent, _) = audit::query(&r, &security, 0, 10)?;
    let failed = Filter {
        action: Some("auth.login".into()),
        outcome: Some("failure".into()),
        ..Default::default()
    };
    let failed_sign_ins = audit::count_since(&r, &failed, svc.now() - 86_400, FAILED_SIGN_INS_CAP)?;
    Ok(Overview {
        users,
        failed_sign_ins,
        key_version: svc.store.active_key_version()?,
        audit_events: r.count(Table::Audit)?,
        recent,
    })
}
