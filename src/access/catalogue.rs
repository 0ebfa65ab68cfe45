//! The permission catalogue and the built-in roles: the names that roles,
//! scopes of tokens and API keys, and the platform's checks all use.

use serde::Serialize;

use crate::error::{Error, Result};

/// One entry of the catalogue. `platform` entries are never granted inside a
/// workspace: only platform admins and platform-level service accounts hold them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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
    TransitEncrypt,
    TransitDecrypt,
    TransitRewrap,
    TransitDatakey,
    TransitManage,
    SecretsRead,
    SecretsWrite,
    SecretsAdmin,
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
    (
        Permission::TransitEncrypt,
        "transit:encrypt",
        "Encrypt and compute HMACs with Transit keys (transit:encrypt:KEY for one key)",
        false,
    ),
    (
        Permission::TransitDecrypt,
        "transit:decrypt",
        "Decrypt with Transit keys (transit:decrypt:KEY for one key)",
        false,
    ),
    (
        Permission::TransitRewrap,
        "transit:rewrap",
        "Rewrap ciphertexts to a Transit key's latest version (transit:rewrap:KEY)",
        false,
    ),
    (
        Permission::TransitDatakey,
        "transit:datakey",
        "Generate data keys under Transit keys (transit:datakey:KEY)",
        false,
    ),
    (
        Permission::TransitManage,
        "transit:manage",
        "Create, rotate, configure, trim and delete Transit keys (transit:manage:KEY)",
        false,
    ),
    (
        Permission::SecretsRead,
        "secrets:read",
        "Read and list secrets (secrets:read:PREFIX/ for one path prefix)",
        false,
    ),
    (
        Permission::SecretsWrite,
        "secrets:write",
        "Write and delete secret versions (secrets:write:PREFIX/)",
        false,
    ),
    (
        Permission::SecretsAdmin,
        "secrets:admin",
        "Destroy secrets and change their metadata and the store's settings (secrets:admin:PREFIX/)",
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
    /// How a credential's scope may narrow this permission, if it may.
    pub fn narrowing(self) -> Option<Narrowing> {
        use Permission::*;
        match self {
            TransitEncrypt | TransitDecrypt | TransitRewrap | TransitDatakey | TransitManage => {
                Some(Narrowing::KeyName)
            }
            SecretsRead | SecretsWrite | SecretsAdmin => Some(Narrowing::PathPrefix),
            _ => None,
        }
    }
}

/// What a narrowed scope names after the permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Narrowing {
    /// One Transit key, by exact name: `transit:decrypt:conversations`.
    KeyName,
    /// A secrets path prefix, matched segment by segment on the normalised
    /// path: `secrets:read:webhooks/` covers `webhooks/github` and the folder
    /// `webhooks/`, never `webhooks-old/x`; without the trailing slash it also
    /// covers the secret `webhooks` itself.
    PathPrefix,
}

/// The longest key name or path a narrowed scope (and a Transit key or a
/// secret path) may have.
pub const NAME_MAX: usize = 256;

/// A Transit key name: 1 to 128 of `A-Z a-z 0-9 - _ .`, not `.` or `..`.
pub fn valid_key_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// The normalised form of a secrets path: segments joined by `/`, a
/// trailing `/` kept (a folder), a leading `/` dropped. Refused: empty
/// segments inside (`a//b`), `.` and `..`, percent-encoding (so no encoded
/// slashes), backslashes, whitespace and control characters, and anything
/// longer than `NAME_MAX`. The empty path (the root folder) is `""`.
pub fn normalise_path(raw: &str) -> std::result::Result<String, &'static str> {
    let p = raw.strip_prefix('/').unwrap_or(raw);
    if p.len() > NAME_MAX {
        return Err("a secret path is at most 256 characters");
    }
    if p.is_empty() {
        return Ok(String::new());
    }
    let body = p.strip_suffix('/').unwrap_or(p);
    for seg in body.split('/') {
        if seg.is_empty() {
            return Err("a secret path has no empty segments (//)");
        }
        if seg == "." || seg == ".." {
            return Err("a secret path has no . or .. segments");
        }
        if seg
            .chars()
            .any(|c| c == '%' || c == '\\' || c.is_whitespace() || c.is_control())
        {
            return Err(
                "a secret path has no %-encoding, backslashes, spaces or control characters",
            );
        }
    }
    Ok(p.to_string())
}

/// Whether the narrowed target `scope` (normalised) covers `target`
/// (a key name, or a normalised path; a folder ends in `/`).
pub fn target_covers(kind: Narrowing, scope: &str, target: &str) -> bool {
    match kind {
        Narrowing::KeyName => scope == target,
        Narrowing::PathPrefix => {
            if scope.is_empty() {
                return true;
            }
            match scope.strip_suffix('/') {
                // A folder covers itself and everything below it.
                Some(dir) => {
                    target == scope
                        || target
                            .strip_prefix(dir)
                            .is_some_and(|rest| rest.starts_with('/'))
                }
                // A path covers itself, as a secret or a folder, and below.
                None => target
                    .strip_prefix(scope)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/')),
            }
        }
    }
}

/// A credential's scopes: whole permissions, and permissions narrowed to
/// one Transit key or one secrets path prefix (`transit:decrypt:conv`,
/// `secrets:read:webhooks/`). Stored as the list of names `names` gives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes {
    pub whole: PermSet,
    /// (permission, normalised target); never a permission also in `whole`.
    pub narrowed: Vec<(Permission, String)>,
}

impl Scopes {
    /// Whole permissions only.
    pub fn whole(set: PermSet) -> Scopes {
        Scopes {
            whole: set,
            narrowed: Vec::new(),
        }
    }
    /// Parses scope names, whole or narrowed; an unknown name, a permission
    /// that cannot be narrowed, or a malformed target is an error naming it.
    pub fn parse_names<S: AsRef<str>>(field: &'static str, names: &[S]) -> Result<Scopes> {
        let mut s = Scopes::default();
        for n in names {
            let n = n.as_ref().trim();
            if let Some(p) = Permission::parse(n) {
                s.whole.insert(p);
                continue;
            }
            let Some((p, target)) = ENTRIES.iter().find_map(|e| {
                n.strip_prefix(e.1)
                    .and_then(|r| r.strip_prefix(':'))
                    .map(|t| (e.0, t))
            }) else {
                return Err(Error::invalid(field, unknown_permission(n)));
            };
            let target = match p.narrowing() {
                None => {
                    return Err(Error::invalid(
                        field,
                        format!("{} cannot be narrowed to a name", p.as_str()),
                    ));
                }
                Some(Narrowing::KeyName) if valid_key_name(target) => target.to_string(),
                Some(Narrowing::KeyName) => {
                    return Err(Error::invalid(
                        field,
                        format!(
                            "{}: a Transit key name is 1 to 128 letters, digits, - _ . (not . or ..)",
                            p.as_str()
                        ),
                    ));
                }
                Some(Narrowing::PathPrefix) => match normalise_path(target) {
                    Ok(t) if !t.is_empty() => t,
                    Ok(_) => {
                        return Err(Error::invalid(
                            field,
                            format!("{}: name a path prefix after the colon", p.as_str()),
                        ));
                    }
                    Err(m) => return Err(Error::invalid(field, format!("{}: {m}", p.as_str()))),
                },
            };
            if !s.narrowed.contains(&(p, target.clone())) {
                s.narrowed.push((p, target));
            }
        }
        let whole = s.whole;
        s.narrowed.retain(|(p, _)| !whole.contains(*p));
        s.narrowed.sort();
        Ok(s)
    }
    /// Parses a space-separated OAuth scope string.
    pub fn parse_scope(field: &'static str, s: &str) -> Result<Scopes> {
        let names: Vec<&str> = s.split_whitespace().collect();
        Scopes::parse_names(field, &names)
    }
    /// Every permission held at all, whole or narrowed: what granting or
    /// taking these scopes away is checked against.
    pub fn any(&self) -> PermSet {
        self.narrowed.iter().fold(self.whole, |mut a, (p, _)| {
            a.insert(*p);
            a
        })
    }
    /// The stored (and OAuth `scope`) form: catalogue names, then narrowed ones.
    pub fn names(&self) -> Vec<String> {
        let mut v = self.whole.names();
        v.extend(
            self.narrowed
                .iter()
                .map(|(p, t)| format!("{}:{t}", p.as_str())),
        );
        v
    }
    pub fn to_scope_string(&self) -> String {
        self.names().join(" ")
    }
    /// Whether these scopes grant `p` on `target` (a Transit key name or a
    /// normalised secrets path); `None`: the permission as a whole.
    pub fn allows(&self, p: Permission, target: Option<&str>) -> bool {
        if self.whole.contains(p) {
            return true;
        }
        match (target, p.narrowing()) {
            (Some(t), Some(kind)) => self
                .narrowed
                .iter()
                .any(|(q, s)| *q == p && target_covers(kind, s, t)),
            _ => false,
        }
    }
    /// Whether `p` is held only narrowed (so a check without a name fails).
    pub fn narrowed_only(&self, p: Permission) -> bool {
        !self.whole.contains(p) && self.narrowed.iter().any(|(q, _)| *q == p)
    }
    /// Whether everything `other` grants for `p` is granted here too.
    fn covers_for(&self, other: &Scopes, p: Permission) -> bool {
        if self.whole.contains(p) {
            return true;
        }
        if other.whole.contains(p) {
            return false;
        }
        let Some(kind) = p.narrowing() else {
            return !other.any().contains(p);
        };
        other
            .narrowed
            .iter()
            .filter(|(q, _)| *q == p)
            .all(|(_, t)| {
                self.narrowed
                    .iter()
                    .any(|(q, s)| *q == p && target_covers(kind, s, t))
            })
    }
    /// The permissions for which `other` grants something these do not:
    /// what replacing these by `other` gives (to be checked as a grant).
    pub fn gained_in(&self, other: &Scopes) -> PermSet {
        other
            .any()
            .iter()
            .filter(|p| !self.covers_for(other, *p))
            .collect()
    }
    /// What `other` asks for and these hold: the grant a request for
    /// `other` gets (a client-credentials `scope`, a token's current scopes).
    pub fn intersect(&self, other: &Scopes) -> Scopes {
        let whole = self.whole.intersect(other.whole);
        let mut narrowed: Vec<(Permission, String)> = Vec::new();
        for (p, t) in &other.narrowed {
            if self.allows(*p, Some(t)) {
                narrowed.push((*p, t.clone()));
            }
        }
        for (p, t) in &self.narrowed {
            if other.allows(*p, Some(t)) {
                narrowed.push((*p, t.clone()));
            }
        }
        narrowed.retain(|(p, _)| !whole.contains(*p));
        narrowed.sort();
        narrowed.dedup();
        Scopes { whole, narrowed }
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
    fn narrowed_scopes_parse_and_match_by_segment() {
        let s = Scopes::parse_names(
            "scopes",
            &[
                "read:agents",
                "transit:decrypt:conversations",
                "secrets:read:webhooks/",
                "secrets:write:/team/a",
            ],
        )
        .unwrap();
        assert_eq!(
            s.names(),
            [
                "read:agents",
                "transit:decrypt:conversations",
                "secrets:read:webhooks/",
                "secrets:write:team/a"
            ]
        );
        use Permission::*;
        assert!(s.allows(TransitDecrypt, Some("conversations")));
        assert!(!s.allows(TransitDecrypt, Some("conversations2")));
        assert!(!s.allows(TransitDecrypt, None));
        assert!(!s.allows(TransitEncrypt, Some("conversations")));
        assert!(s.allows(SecretsRead, Some("webhooks/github")));
        assert!(s.allows(SecretsRead, Some("webhooks/a/b")));
        assert!(s.allows(SecretsRead, Some("webhooks/")));
        assert!(!s.allows(SecretsRead, Some("webhooks")));
        assert!(!s.allows(SecretsRead, Some("webhooks-old/x")));
        assert!(!s.allows(SecretsRead, Some("")));
        assert!(s.allows(SecretsWrite, Some("team/a")));
        assert!(s.allows(SecretsWrite, Some("team/a/")));
        assert!(s.allows(SecretsWrite, Some("team/a/x")));
        assert!(!s.allows(SecretsWrite, Some("team/ab")));
        assert!(s.any().contains(SecretsRead) && !s.whole.contains(SecretsRead));
        for bad in [
            "read:agents:x",
            "transit:decrypt:",
            "transit:decrypt:a/b",
            "transit:decrypt:..",
            "secrets:read:",
            "secrets:read:a/../b",
            "secrets:read:a%2fb",
            "secrets:read:a//b",
            "secrets:read:a\\b",
            "secrets:nope:a",
        ] {
            assert!(Scopes::parse_names("scopes", &[bad]).is_err(), "{bad}");
        }
        // A whole permission absorbs its narrowed forms.
        let w = Scopes::parse_scope("scope", "transit:decrypt:a transit:decrypt").unwrap();
        assert_eq!(w.names(), ["transit:decrypt"]);
    }

    #[test]
    fn narrowed_grants_compare_by_what_they_cover() {
        let held = Scopes::parse_scope("s", "secrets:read:a/ transit:encrypt").unwrap();
        let inside = Scopes::parse_scope("s", "secrets:read:a/b/ transit:encrypt:k").unwrap();
        assert!(held.gained_in(&inside).is_empty());
        let outside = Scopes::parse_scope("s", "secrets:read:b/").unwrap();
        assert_eq!(held.gained_in(&outside).names(), ["secrets:read"]);
        let whole = Scopes::parse_scope("s", "secrets:read").unwrap();
        assert_eq!(held.gained_in(&whole).names(), ["secrets:read"]);
        let got =
            held.intersect(&Scopes::parse_scope("s", "secrets:read transit:encrypt:k").unwrap());
        assert_eq!(got.names(), ["secrets:read:a/", "transit:encrypt:k"]);
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
