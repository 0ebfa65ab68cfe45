//! The permission catalogue and the built-in roles: the names that roles,
//! scopes of tokens and API keys, and the platform's checks all use.

use serde::Serialize;

use crate::error::{Error, Result};

/// One entry of the catalogue. `platform` entries are never granted inside a
/// workspace: only platform admins and platform-level service accounts hold them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Permission {
    ViewConsole,
    ManageUsers,
    ManageWorkspaces,
    ManageCredentials,
    ReadAudit,
    ManageKeys,
    ManageSecurity,
    IntrospectCredentials,
    ReadAgents,
    WriteAgents,
    UseAgents,
    ReadConversations,
    ReadAnalytics,
    DeployTool,
    UndeployTool,
    DeployModel,
    UndeployModel,
    ImportModel,
    ExportModel,
    ImportTool,
    ExportTool,
    DeployGuardrails,
    UndeployGuardrails,
    ReadConnections,
    ManageConnections,
}

/// Name, description, platform-only.
const ENTRIES: &[(Permission, &str, &str, bool)] = &[
    (
        Permission::ViewConsole,
        "console:view",
        "Open the platform administration console",
        true,
    ),
    (
        Permission::ManageUsers,
        "admin:users",
        "Manage users, members, groups and roles",
        false,
    ),
    (
        Permission::ManageWorkspaces,
        "admin:workspaces",
        "Create, rename and delete workspaces",
        true,
    ),
    (
        Permission::ManageCredentials,
        "admin:credentials",
        "Manage service accounts, API apps, API keys and widget keys",
        false,
    ),
    (
        Permission::ReadAudit,
        "read:audit",
        "Read the audit log",
        false,
    ),
    (
        Permission::ManageKeys,
        "manage:keys",
        "Rotate encryption and signing keys",
        true,
    ),
    (
        Permission::ManageSecurity,
        "manage:security",
        "Change the security policy",
        true,
    ),
    (
        Permission::IntrospectCredentials,
        "introspect:credentials",
        "Introspect and revoke tokens and API keys",
        false,
    ),
    (Permission::ReadAgents, "read:agents", "See agents", false),
    (
        Permission::WriteAgents,
        "write:agents",
        "Create and modify agents",
        false,
    ),
    (
        Permission::UseAgents,
        "use:agents",
        "Use (chat with) deployed agents",
        false,
    ),
    (
        Permission::ReadConversations,
        "read:conversations",
        "Read conversations",
        false,
    ),
    (
        Permission::ReadAnalytics,
        "read:analytics",
        "Read analytics and reports",
        false,
    ),
    (Permission::DeployTool, "deploy:tool", "Deploy tools", false),
    (
        Permission::UndeployTool,
        "undeploy:tool",
        "Undeploy tools",
        false,
    ),
    (
        Permission::DeployModel,
        "deploy:model",
        "Deploy models",
        false,
    ),
    (
        Permission::UndeployModel,
        "undeploy:model",
        "Undeploy models",
        false,
    ),
    (
        Permission::ImportModel,
        "import:model",
        "Import models",
        false,
    ),
    (
        Permission::ExportModel,
        "export:model",
        "Export models",
        false,
    ),
    (Permission::ImportTool, "import:tool", "Import tools", false),
    (Permission::ExportTool, "export:tool", "Export tools", false),
    (
        Permission::DeployGuardrails,
        "deploy:guardrails",
        "Deploy guardrails",
        false,
    ),
    (
        Permission::UndeployGuardrails,
        "undeploy:guardrails",
        "Undeploy guardrails",
        false,
    ),
    (
        Permission::ReadConnections,
        "read:connections",
        "View connections",
        false,
    ),
    (
        Permission::ManageConnections,
        "manage:connections",
        "Manage connections",
        false,
    ),
];

impl Permission {
    pub fn all() -> impl Iterator<Item = Permission> {
        ENTRIES.iter().map(|e| e.0)
    }
    fn entry(self) -> &'static (Permission, &'static str, &'static str, bool) {
        &ENTRIES[self as usize]
    }
    pub fn as_str(self) -> &'static str {
        self.entry().1
    }
    pub fn description(self) -> &'static str {
        self.entry().2
    }
    /// Held only platform-wide, never through a workspace role.
    pub fn platform_only(self) -> bool {
        self.entry().3
    }
    pub fn parse(s: &str) -> Option<Permission> {
        ENTRIES.iter().find(|e| e.1 == s).map(|e| e.0)
    }
}

/// A set of permissions, one bit per catalogue entry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PermSet(u64);

impl PermSet {
    pub const EMPTY: PermSet = PermSet(0);
    pub fn all() -> PermSet {
        Permission::all().collect()
    }
    pub fn workspace_all() -> PermSet {
        Permission::all().filter(|p| !p.platform_only()).collect()
    }
    pub fn contains(self, p: Permission) -> bool {
        self.0 & (1 << p as u8) != 0
    }
    pub fn insert(&mut self, p: Permission) {
        self.0 |= 1 << p as u8;
    }
    pub fn union(self, o: PermSet) -> PermSet {
        PermSet(self.0 | o.0)
    }
    pub fn intersect(self, o: PermSet) -> PermSet {
        PermSet(self.0 & o.0)
    }
    /// What `self` holds that `o` does not.
    pub fn minus(self, o: PermSet) -> PermSet {
        PermSet(self.0 & !o.0)
    }
    pub fn is_subset(self, o: PermSet) -> bool {
        self.0 & !o.0 == 0
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::all().filter(move |p| self.contains(*p))
    }
    pub fn names(self) -> Vec<String> {
        self.iter().map(|p| p.as_str().to_string()).collect()
    }
    /// Space-separated, as OAuth `scope` values are.
    pub fn to_scope_string(self) -> String {
        self.iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
    /// Parses one catalogue name; an unknown one is an error that echoes it
    /// (bounded, control characters dropped).
    pub fn parse_one(field: &'static str, name: &str) -> Result<Permission> {
        let n = name.trim();
        Permission::parse(n).ok_or_else(|| Error::invalid(field, unknown_permission(n)))
    }
    /// Parses catalogue names; an unknown name is an error that names it.
    pub fn parse_names<S: AsRef<str>>(field: &'static str, names: &[S]) -> Result<PermSet> {
        let mut set = PermSet::EMPTY;
        for n in names {
            let n = n.as_ref().trim();
            set.insert(PermSet::parse_one(field, n)?);
        }
        Ok(set)
    }
    /// Parses a space-separated OAuth scope string.
    pub fn parse_scope(field: &'static str, s: &str) -> Result<PermSet> {
        let names: Vec<&str> = s.split_whitespace().collect();
        PermSet::parse_names(field, &names)
    }
}

/// The longest part of an unknown name echoed back (in characters).
const ECHO_MAX: usize = 64;

/// "unknown permission `raed:agents`; …": the name as the caller sent it, cut
/// to `ECHO_MAX` characters and with control characters (newlines, escape
/// sequences) removed, so the answer and the log line stay one short line.
pub fn unknown_permission(name: &str) -> String {
    let clean: String = name.chars().filter(|c| !c.is_control()).collect();
    let mut shown: String = clean.chars().take(ECHO_MAX).collect();
    if clean.chars().count() > ECHO_MAX {
        shown.push('…');
    }
    let shown = shown.replace('`', "'");
    format!("unknown permission `{shown}`; GET /api/v1/permissions lists the catalogue")
}

impl FromIterator<Permission> for PermSet {
    fn from_iter<I: IntoIterator<Item = Permission>>(it: I) -> Self {
        let mut s = PermSet::EMPTY;
        for p in it {
            s.insert(p);
        }
        s
    }
}

/// The built-in roles. Platform Admin is the global `owner`/`admin` user role;
/// the others are granted per workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum BuiltinRole {
    PlatformAdmin,
    WorkspaceAdmin,
    AgentDeveloper,
    Analyst,
    User,
}

impl BuiltinRole {
    pub const ALL: [BuiltinRole; 5] = [
        BuiltinRole::PlatformAdmin,
        BuiltinRole::WorkspaceAdmin,
        BuiltinRole::AgentDeveloper,
        BuiltinRole::Analyst,
        BuiltinRole::User,
    ];
    pub fn id(self) -> &'static str {
        match self {
            BuiltinRole::PlatformAdmin => "platform_admin",
            BuiltinRole::WorkspaceAdmin => "workspace_admin",
            BuiltinRole::AgentDeveloper => "agent_developer",
            BuiltinRole::Analyst => "analyst",
            BuiltinRole::User => "user",
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            BuiltinRole::PlatformAdmin => "Platform Admin",
            BuiltinRole::WorkspaceAdmin => "Workspace Admin",
            BuiltinRole::AgentDeveloper => "Agent Developer",
            BuiltinRole::Analyst => "Analyst",
            BuiltinRole::User => "User",
        }
    }
    pub fn parse(id: &str) -> Option<BuiltinRole> {
        BuiltinRole::ALL.into_iter().find(|r| r.id() == id)
    }
    pub fn permissions(self) -> PermSet {
        use Permission::*;
        match self {
            BuiltinRole::PlatformAdmin => PermSet::all(),
            BuiltinRole::WorkspaceAdmin => PermSet::workspace_all(),
            BuiltinRole::AgentDeveloper => [
                ReadAgents,
                WriteAgents,
                UseAgents,
                ReadConversations,
                DeployTool,
                UndeployTool,
                DeployModel,
                UndeployModel,
                ImportModel,
                ExportModel,
                ImportTool,
                ExportTool,
                DeployGuardrails,
                UndeployGuardrails,
                ReadConnections,
            ]
            .into_iter()
            .collect(),
            BuiltinRole::Analyst => [ReadAgents, UseAgents, ReadConversations, ReadAnalytics]
                .into_iter()
                .collect(),
            BuiltinRole::User => [UseAgents].into_iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_permission_is_echoed_short_and_clean() {
        let m = PermSet::parse_names("scopes", &["read:agents", "raed:agents"])
            .unwrap_err()
            .to_string();
        assert!(m.contains("unknown permission `raed:agents`"), "{m}");
        let long = format!("x\u{1b}[31m\n{}`", "y".repeat(500));
        let m = unknown_permission(&long);
        assert!(!m.chars().any(char::is_control), "{m:?}");
        assert!(m.chars().count() < 140, "{m}");
        assert!(m.contains("`x[31my") && m.contains("…`"), "{m}");
    }

    #[test]
    fn catalogue_order_matches_the_enum() {
        for (i, e) in ENTRIES.iter().enumerate() {
            assert_eq!(e.0 as usize, i, "{}", e.1);
            assert_eq!(Permission::parse(e.1), Some(e.0));
        }
        assert!(ENTRIES.len() <= 64);
    }

    #[test]
    fn workspace_roles_hold_no_platform_permission() {
        for r in BuiltinRole::ALL.into_iter().skip(1) {
            assert!(r.permissions().iter().all(|p| !p.platform_only()), "{r:?}");
        }
        assert!(PermSet::parse_scope("scope", "read:agents bogus").is_err());
    }
}
