//! Widget keys: public keys for an embedded chat widget, bound to one bot and
//! a list of web origins.

use serde::{Deserialize, Serialize};

use super::check_workspace;
use super::secret::{WIDGET_KEY_PREFIX, generate_secret, hint};
use crate::access::{
    Actor, Permission, Principal, Resource, check_grantable, clean_name, new_id, parse_id,
    record_change,
};
use crate::clock::Timestamp;
use crate::crypto;
use crate::error::{Error, Result};
use crate::principal::WorkspaceId;
use crate::service::Service;
use crate::store::{Reader, Table};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WidgetKey {
    pub id: String,
    pub workspace: WorkspaceId,
    pub name: String,
    pub bot: String,
    pub origins: Vec<String>,
    pub hint: String,
    pub created_at: Timestamp,
}

fn parse_origin(o: &str) -> Result<String> {
    let o = o.trim().trim_end_matches('/');
    let bad = || {
        Error::invalid(
            "origins",
            format!("\"{o}\" is not a web origin such as https://shop.example.com"),
        )
    };
    let (scheme, rest) = o.split_once("://").ok_or_else(bad)?;
    if !matches!(scheme, "https" | "http")
        || rest.is_empty()
        || rest.contains('/')
        || rest.contains('@')
        || rest.contains(char::is_whitespace)
    {
        return Err(bad());
    }
    Ok(o.to_ascii_lowercase())
}

pub fn create_widget_key(
    svc: &Service,
    actor: &Actor,
    ws: &WorkspaceId,
    name: &str,
    bot: &str,
    origins: &[String],
) -> Result<(WidgetKey, String)> {
    let (by, src) = (&actor.principal, &actor.source);
    actor.authorize(svc, Permission::ManageCredentials, Resource::Workspace(ws))?;
    // A new credential is sensitive: the console and the API alike need a recent sign-in.
    actor.require_recent(svc)?;
    check_grantable(
        svc,
        by,
        Some(ws),
        [Permission::UseAgents].into_iter().collect(),
    )?;
    if !crate::access::valid_bot_id(bot.trim()) {
        return Err(Error::invalid(
            "bot",
            "must be the bot's id: letters, digits, - _ . (up to 100; not . or ..)",
        ));
    }
    if origins.is_empty() {
        return Err(Error::invalid(
            "origins",
            "give at least one web origin the widget runs on",
        ));
    }
    let secret = generate_secret(WIDGET_KEY_PREFIX)?;
    let w = WidgetKey {
        id: new_id("wgt_")?,
        workspace: ws.clone(),
        name: clean_name("name", name)?,
        bot: bot.trim().to_string(),
        origins: origins
            .iter()
            .map(|o| parse_origin(o))
            .collect::<Result<_>>()?,
        hint: hint(&secret),
        created_at: svc.now(),
    };
    let mut tx = svc.store.write()?;
    check_workspace(&tx, Some(ws))?;
    tx.put(Table::WidgetKeys, &crypto::sha256(secret.as_bytes()), &w)?;
    record_change(
        &mut tx,
        svc,
        by,
        src,
        "widget_key.create",
        Some(ws),
        &w.id,
        serde_json::json!({"name": w.name, "bot": w.bot, "origins": w.origins}),
    )?;
    tx.commit()?;
    Ok((w, secret))
}

pub fn widget_keys(svc: &Service, by: &Principal) -> Result<Vec<WidgetKey>> {
    let visible = crate::access::workspaces_with(svc, by, Permission::ManageCredentials)?;
    let mut out: Vec<WidgetKey> = svc
        .store
        .read()?
        .scan::<WidgetKey>(Table::WidgetKeys, b"")?
        .into_iter()
        .map(|(_, w)| w)
        .filter(|w| visible.contains(&w.workspace))
        .collect();
    out.sort_by_key(|w| w.created_at);
    Ok(out)
}

pub fn delete_widget_key(svc: &Service, actor: &Actor, id: &str) -> Result<()> {
    let (by, src) = (&actor.principal, &actor.source);
    let id = parse_id("wgt_", id, "widget key")?;
    let (k, w) = svc
        .store
        .read()?
        .scan::<WidgetKey>(Table::WidgetKeys, b"")?
        .into_iter()
        .find(|(_, w)| w.id == id)
        .ok_or(Error::NotFound("widget key"))?;
    actor.authorize(
        svc,
        Permission::ManageCredentials,
        Resource::Workspace(&w.workspace),
    )?;
    // Deleting takes away what the key grants (`use:agents`).
    crate::access::check_revocable(
        svc,
        by,
        Some(&w.workspace),
        [Permission::UseAgents].into_iter().collect(),
    )?;
    let mut tx = svc.store.write()?;
    tx.delete(Table::WidgetKeys, &k)?;
    record_change(
        &mut tx,
        svc,
        by,
        src,
        "widget_key.delete",
        &w.workspace,
        &w.id,
        serde_json::json!({"name": w.name, "bot": w.bot}),
    )?;
    tx.commit()
}
