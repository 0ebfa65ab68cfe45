//! The installation at a glance, as the console's dashboard shows it: user
//! counts, failed sign-ins of the last day, the active data key, the size of
//! the audit log and the latest security events; each figure costs a look-up
//! or a read of recent events, never a scan of every user or event. The
//! dashboard is for someone who may see the console (`ViewConsole`). Also the
//! sign-in activity of the last 24 hours and 7 days (the dashboard's chart)
//! and the names of the ids audit events carry (the audit log's columns).

use std::collections::HashMap;
use std::ops::ControlFlow;

use crate::access::{Actor, Permission, Resource};
use crate::audit::{self, Event, Filter, Outcome};
use crate::clock::Timestamp;
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

// ---- names for the ids events carry ----

/// The display name of each id the events name as actor or target: a user's
/// e-mail, a workspace's, API app's, service account's, role's or group's
/// name, an SSO connection's name (for `sso.` events). Read in one snapshot,
/// one look-up per distinct id (a page of events, so bounded); an id that no
/// longer exists has no name.
pub fn names(svc: &Service, events: &[Event]) -> Result<HashMap<String, String>> {
    let r = svc.store.read()?;
    let mut out = HashMap::new();
    let mut seen = std::collections::HashSet::new();
    for e in events {
        let ids = [
            e.actor_id.as_deref().map(|i| (i, false)),
            e.target
                .as_deref()
                .map(|i| (i, e.action.starts_with("sso."))),
            e.workspace.as_ref().map(|i| (i.as_str(), false)),
        ];
        for (id, sso) in ids.into_iter().flatten() {
            if !seen.insert(id.to_string()) {
                continue;
            }
            if let Some(n) = name_of(&r, id, sso)? {
                out.insert(id.to_string(), n);
            }
        }
    }
    Ok(out)
}

fn name_of(r: &impl Reader, id: &str, sso: bool) -> Result<Option<String>> {
    use crate::access::{credentials, workspaces};
    let key = id.as_bytes();
    Ok(if id.starts_with("usr_") {
        match crate::principal::UserId::parse(id) {
            Ok(uid) => identity::get(r, &uid)
                .ok()
                .map(|u| u.email.as_str().to_string()),
            Err(_) => None,
        }
    } else if id.starts_with("ws_") {
        r.get::<workspaces::Workspace>(Table::Workspaces, key)?
            .map(|w| w.name)
    } else if id.starts_with("app_") {
        r.get::<credentials::ApiApp>(Table::ApiApps, key)?
            .map(|a| a.name)
    } else if id.starts_with("sa_") {
        r.get::<credentials::ServiceAccount>(Table::ServiceAccounts, key)?
            .map(|a| a.name)
    } else if id.starts_with("rol_") {
        r.get::<workspaces::CustomRole>(Table::Roles, key)?
            .map(|a| a.name)
    } else if id.starts_with("grp_") {
        r.get::<workspaces::Group>(Table::Groups, key)?
            .map(|a| a.name)
    } else if sso {
        crate::sso::get(r, id).ok().map(|c| c.name)
    } else {
        None
    })
}

// ---- sign-in activity, for the dashboard's chart ----

/// Events one read for the activity chart takes at most (newest first):
/// past it the chart covers only the newest ones and says so.
pub const ACTIVITY_SCAN_MAX: usize = 100_000;
/// How far back past the chart's start a scan keeps reading (events are in
/// commit order; a slow request may commit an older time).
const ACTIVITY_SKEW_SECS: i64 = 300;
const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

/// Sign-ins and failed sign-ins in one bucket of time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bucket {
    /// Start of the bucket (Unix seconds, UTC).
    pub start: Timestamp,
    pub sign_ins: u32,
    pub failures: u32,
}

/// The last 24 hours by hour and the last 7 days by day, oldest first.
#[derive(Debug, Clone)]
pub struct Activity {
    pub hours: Vec<Bucket>,
    pub days: Vec<Bucket>,
    /// False when a read stopped at `ACTIVITY_SCAN_MAX` events inside the 7
    /// days: buckets before that point count fewer than happened.
    pub complete: bool,
}

/// This module's state in `Service` (`svc.overview`): the chart's counts
/// per hour up to the newest event read, so a dashboard reads only the
/// events written since the last one (the first reads the week).
#[derive(Default)]
pub struct Cache {
    tally: std::sync::Mutex<Option<Tally>>,
}

struct Tally {
    /// The newest event counted.
    last_id: u64,
    /// Hour start → (sign-ins, failures), for the 7 days and a day before.
    hours: std::collections::BTreeMap<Timestamp, (u32, u32)>,
    /// Events before this time were not all read (a read hit its cap).
    gap_before: Option<Timestamp>,
}

/// What an event counts as on the chart: a sign-in (a password or SSO
/// sign-in that succeeded), a failure (a refused password, second factor or
/// SSO sign-in), or neither.
fn kind(e: &Event) -> Option<bool> {
    match (e.action.as_str(), e.outcome) {
        ("auth.login" | "sso.login", Outcome::Success) => Some(true),
        ("auth.login" | "auth.mfa" | "sso.login", Outcome::Failure | Outcome::Denied) => {
            Some(false)
        }
        _ => None,
    }
}

/// Sign-ins and failures of the last 24 hours (by hour) and 7 days (by UTC
/// day). The counts per hour are kept between calls: each call reads newest
/// first only the events written since the last one (the first call: back
/// to the start of the 7 days), at most `ACTIVITY_SCAN_MAX`, so a dashboard
/// costs the events since the previous one, not the week.
pub fn activity(svc: &Service) -> Result<Activity> {
    let r = svc.store.read()?;
    let now = svc.now();
    let mut guard = svc
        .overview
        .tally
        .lock()
        .map_err(|_| crate::error::Error::internal("activity cache poisoned"))?;
    let tally = guard.get_or_insert_with(|| Tally {
        last_id: 0,
        hours: Default::default(),
        gap_before: None,
    });
    update(&r, tally, now, ACTIVITY_SCAN_MAX)?;
    Ok(buckets(tally, now))
}

fn update(r: &impl Reader, t: &mut Tally, now: Timestamp, max: usize) -> Result<()> {
    let day0 = now - now.rem_euclid(DAY) - 6 * DAY;
    let (mut newest, mut oldest_read, mut read) = (None, None, 0usize);
    let mut fresh = Vec::new();
    let mut restarted = false;
    r.scan_rev(Table::Audit, &mut |_, e: Event| {
        if newest.is_none() {
            newest = Some(e.id);
            // A log that ends before what was counted was replaced: count anew.
            if e.id < t.last_id {
                restarted = true;
            }
        }
        if (!restarted && e.id <= t.last_id) || e.time < day0 - ACTIVITY_SKEW_SECS {
            return ControlFlow::Break(());
        }
        read += 1;
        oldest_read = Some(e.time);
        if let Some(ok) = kind(&e) {
            fresh.push((e.time, ok));
        }
        if read >= max {
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    })?;
    if restarted {
        t.hours.clear();
        t.gap_before = None;
    }
    // Stopped at the cap before reaching what was counted (or the week's start).
    if read >= max {
        t.gap_before = oldest_read;
    }
    for (time, ok) in fresh {
        let c = t.hours.entry(time - time.rem_euclid(HOUR)).or_default();
        if ok {
            c.0 += 1;
        } else {
            c.1 += 1;
        }
    }
    if let Some(id) = newest {
        t.last_id = id;
    }
    t.hours = t.hours.split_off(&(day0 - DAY));
    if t.gap_before.is_some_and(|g| g <= day0) {
        t.gap_before = None;
    }
    Ok(())
}

fn buckets(t: &Tally, now: Timestamp) -> Activity {
    let hour0 = now - now.rem_euclid(HOUR) - 23 * HOUR;
    let day0 = now - now.rem_euclid(DAY) - 6 * DAY;
    let sum = |from: Timestamp, len: i64| {
        t.hours
            .range(from..from + len)
            .fold((0, 0), |(a, b), (_, (s, f))| (a + s, b + f))
    };
    let bucket = |start: Timestamp, len: i64| {
        let (sign_ins, failures) = sum(start, len);
        Bucket {
            start,
            sign_ins,
            failures,
        }
    };
    Activity {
        hours: (0..24).map(|i| bucket(hour0 + i * HOUR, HOUR)).collect(),
        days: (0..7).map(|i| bucket(day0 + i * DAY, DAY)).collect(),
        complete: t.gap_before.is_none(),
    }
}
