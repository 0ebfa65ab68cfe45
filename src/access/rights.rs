//! What a user holds, as a value that can be kept and compared later: their
//! platform role and their permissions in each workspace.

use serde::{Deserialize, Serialize};

use super::{PermSet, Permission};
use crate::error::Result;
use crate::principal::{Role, User, WorkspaceId};
use crate::service::Service;

/// What a user holds: their platform role and the permissions they hold in
/// each workspace (by name, so that a stored copy cannot widen when the
/// catalogue's order changes). An SSO link keeps what its user held when it
/// was made, an SSO session what its user held when it started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rights {
    pub role: Role,
    #[serde(default)]
    pub workspaces: Vec<WorkspaceRights>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceRights {
    pub workspace: WorkspaceId,
    pub permissions: Vec<String>,
}

fn rank(r: Role) -> u8 {
    match r {
        Role::User => 0,
        Role::Admin => 1,
        Role::Owner => 2,
    }
}

impl Rights {
    /// What `user` holds now (their role as given, grants as committed).
    pub fn of(svc: &Service, user: &User) -> Result<Rights> {
        Ok(Rights {
            role: user.role,
            workspaces: super::workspace_grants(svc, &user.id)?
                .into_iter()
                .map(|(workspace, set)| WorkspaceRights {
                    workspace,
                    permissions: set.names(),
                })
                .collect(),
        })
    }

    fn in_workspace(&self, ws: &WorkspaceId) -> PermSet {
        self.workspaces
            .iter()
            .filter(|w| &w.workspace == ws)
            // A name no longer in the catalogue counts as not held.
            .flat_map(|w| w.permissions.iter().filter_map(|p| Permission::parse(p)))
            .collect()
    }

    /// Whether these rights hold anything `then` did not: a higher platform
    /// role, or a permission in a workspace that `then` lacks there.
    pub fn exceed(&self, then: &Rights) -> bool {
        if rank(self.role) != rank(then.role) {
            return rank(self.role) > rank(then.role);
        }
        // A platform admin holds everything everywhere: a seat adds nothing.
        rank(self.role) == 0
            && self.workspaces.iter().any(|w| {
                !self
                    .in_workspace(&w.workspace)
                    .is_subset(then.in_workspace(&w.workspace))
            })
    }
}

/// Whether `user` now holds more than `then` (`Rights::exceed` without
/// copying what they hold: this runs on every request of an SSO session).
pub fn holds_more_than(svc: &Service, user: &User, then: &Rights) -> Result<bool> {
    if rank(user.role) != rank(then.role) {
        return Ok(rank(user.role) > rank(then.role));
    }
    if rank(user.role) > 0 {
        return Ok(false);
    }
    let snap = super::snapshot(svc)?;
    Ok(snap
        .user_grants
        .get(&user.id)
        .into_iter()
        .flatten()
        .any(|(ws, held, _)| !held.is_subset(then.in_workspace(ws))))
}
