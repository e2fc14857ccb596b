//! Account changes made through the admin API — added accounts (with their credentials),
//! removed configured accounts, and patched settings — kept in the state file beside the
//! pool states so they survive restarts and reloads. The configuration file stays the
//! operator's; these changes are layered over it.
//!
//! Added accounts' credentials are secrets: they live only in the 0600 state file, are
//! `SecretString` in memory, and `Debug` never shows them.

use crate::config::{
    AccountConfig, AccountSection, Config, Problem, Problems, account_from_section,
};
use qgate_pool::{AccountId, AccountSettings};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize, Serializer};
use std::collections::BTreeMap;

fn expose<S: Serializer>(v: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(secret) => s.serialize_some(secret.expose_secret()),
        None => s.serialize_none(),
    }
}

/// An account as `POST /accounts` takes it (the `[[accounts]]` shape of the config file).
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    /// `^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`.
    pub id: String,
    /// `q_cli` (default) or `kiro`.
    pub dialect: Option<String>,
    /// `oidc` (default when `client_id` is set) or `kiro_social`.
    pub auth: Option<String>,
    #[serde(default, serialize_with = "expose")]
    #[schema(value_type = Option<String>, write_only)]
    pub refresh_token: Option<SecretString>,
    pub client_id: Option<String>,
    #[serde(default, serialize_with = "expose")]
    #[schema(value_type = Option<String>, write_only)]
    pub client_secret: Option<SecretString>,
    pub profile_arn: Option<String>,
    pub region: Option<String>,
    pub api_endpoint: Option<String>,
    pub weight: Option<u32>,
    pub priority: Option<u32>,
    pub max_concurrency: Option<u32>,
    pub rpm_limit: Option<u32>,
    pub allowed_models: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

impl NewAccount {
    fn section(&self) -> AccountSection {
        AccountSection {
            id: self.id.clone(),
            dialect: self.dialect.clone(),
            auth: self.auth.clone(),
            refresh_token: self
                .refresh_token
                .as_ref()
                .map(|s| s.expose_secret().to_owned()),
            client_id: self.client_id.clone(),
            client_secret: self
                .client_secret
                .as_ref()
                .map(|s| s.expose_secret().to_owned()),
            profile_arn: self.profile_arn.clone(),
            region: self.region.clone(),
            api_endpoint: self.api_endpoint.clone(),
            weight: self.weight,
            priority: self.priority,
            max_concurrency: self.max_concurrency,
            rpm_limit: self.rpm_limit,
            allowed_models: self.allowed_models.clone(),
            enabled: self.enabled,
        }
    }

    /// Validated, with every problem listed (named `field`, not `accounts[i].field`).
    pub fn to_config(&self) -> Result<AccountConfig, Vec<Problem>> {
        let mut problems = Problems::default();
        let converted = account_from_section(&self.section(), "account", &mut problems);
        match (problems.finish(()), converted) {
            (Ok(()), Some(acc)) => Ok(acc),
            (Err(e), _) => Err(e.0),
            (Ok(()), None) => Err(vec![Problem {
                source: "account".into(),
                message: "invalid account".into(),
            }]),
        }
    }

    pub fn apply(&mut self, patch: &AccountPatch) {
        if let Some(w) = patch.weight {
            self.weight = Some(w);
        }
        if let Some(p) = patch.priority {
            self.priority = Some(p);
        }
        if let Some(c) = patch.max_concurrency {
            self.max_concurrency = (c > 0).then_some(c);
        }
        if let Some(r) = patch.rpm_limit {
            self.rpm_limit = (r > 0).then_some(r);
        }
        if let Some(m) = &patch.allowed_models {
            self.allowed_models = (!m.is_empty()).then(|| m.clone());
        }
    }
}

/// `PATCH /accounts/{id}`: only the fields present change. `0` clears a limit and an
/// empty `allowed_models` allows every model; `enabled` is an admin enable/disable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm_limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_models: Option<Vec<String>>,
    #[serde(default, skip_serializing)]
    pub enabled: Option<bool>,
}

impl AccountPatch {
    pub fn apply_to(&self, s: &mut AccountSettings) {
        if let Some(w) = self.weight {
            s.weight = w;
        }
        if let Some(p) = self.priority {
            s.priority = p;
        }
        if let Some(c) = self.max_concurrency {
            s.max_concurrency = (c > 0).then_some(c);
        }
        if let Some(r) = self.rpm_limit {
            s.rpm_limit = (r > 0).then_some(r);
        }
        if let Some(m) = &self.allowed_models {
            s.allowed_models = (!m.is_empty()).then(|| m.clone());
        }
    }

    /// Merges a later patch over this one.
    pub fn merge(&mut self, later: &AccountPatch) {
        self.weight = later.weight.or(self.weight);
        self.priority = later.priority.or(self.priority);
        self.max_concurrency = later.max_concurrency.or(self.max_concurrency);
        self.rpm_limit = later.rpm_limit.or(self.rpm_limit);
        if later.allowed_models.is_some() {
            self.allowed_models = later.allowed_models.clone();
        }
    }

    pub fn changes_settings(&self) -> bool {
        self.weight.is_some()
            || self.priority.is_some()
            || self.max_concurrency.is_some()
            || self.rpm_limit.is_some()
            || self.allowed_models.is_some()
    }
}

/// Everything the admin API changed about the account list.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AccountChanges {
    #[serde(default)]
    pub added: Vec<NewAccount>,
    /// Configured accounts an operator deleted.
    #[serde(default)]
    pub removed: Vec<AccountId>,
    /// Settings changed on configured accounts.
    #[serde(default)]
    pub patched: BTreeMap<AccountId, AccountPatch>,
}

/// Where an account comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Config,
    Api,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Config => "config",
            Origin::Api => "api",
        }
    }
}

impl AccountChanges {
    pub fn origin(&self, cfg: &Config, id: &str) -> Option<Origin> {
        if cfg.accounts.iter().any(|a| a.id() == id) && !self.removed.iter().any(|r| r == id) {
            Some(Origin::Config)
        } else if self.added.iter().any(|a| a.id == id) {
            Some(Origin::Api)
        } else {
            None
        }
    }

    /// Drops added accounts whose id the configuration now has (the file wins) and
    /// patches/removals of ids it no longer has. Returns the dropped added ids.
    pub fn reconcile(&mut self, cfg: &Config) -> Vec<String> {
        let in_config = |id: &str| cfg.accounts.iter().any(|a| a.id() == id);
        let mut dropped = Vec::new();
        self.added.retain(|a| {
            let keep = !in_config(&a.id);
            if !keep {
                dropped.push(a.id.clone());
            }
            keep
        });
        self.removed.retain(|id| in_config(id.as_str()));
        self.patched.retain(|id, _| in_config(id.as_str()));
        dropped
    }

    /// The account list in force: configured accounts minus removed ones, patched, then
    /// the added ones. Every problem is listed.
    pub fn effective(&self, cfg: &Config) -> Result<Vec<AccountConfig>, Vec<Problem>> {
        let mut out: Vec<AccountConfig> = cfg
            .accounts
            .iter()
            .filter(|a| !self.removed.iter().any(|r| r == a.id()))
            .cloned()
            .map(|mut a| {
                if let Some(p) = self.patched.get(a.id()) {
                    p.apply_to(&mut a.settings);
                }
                a
            })
            .collect();
        let mut problems = Vec::new();
        for added in &self.added {
            match added.to_config() {
                Ok(a) => out.push(a),
                Err(p) => problems.extend(p.into_iter().map(|mut p| {
                    p.source = format!("added account `{}`: {}", added.id, p.source);
                    p
                })),
            }
        }
        if problems.is_empty() {
            Ok(out)
        } else {
            Err(problems)
        }
    }
}

impl AccountChanges {
    /// Three-way merge for instances sharing one document: `ours` made local changes on
    /// top of `base` (the last document both sides knew) that are not published yet, and
    /// `theirs` arrived meanwhile. Per account, whatever `ours` changed relative to `base`
    /// wins; everything else comes from `theirs`. So a change made here during a Redis
    /// outage survives another instance's document written before it was shared.
    pub fn merge3(base: &AccountChanges, ours: &AccountChanges, theirs: &AccountChanges) -> Self {
        // Compared by value through serde (`NewAccount` holds secrets and has no `Eq`);
        // the values never leave this function.
        fn by_id(list: &[NewAccount]) -> BTreeMap<&str, (&NewAccount, serde_json::Value)> {
            list.iter()
                .map(|a| {
                    let v = serde_json::to_value(a).unwrap_or(serde_json::Value::Null);
                    (a.id.as_str(), (a, v))
                })
                .collect()
        }
        let (b, o, t) = (by_id(&base.added), by_id(&ours.added), by_id(&theirs.added));
        let mut ids: Vec<&str> = o.keys().chain(t.keys()).copied().collect();
        ids.sort_unstable();
        ids.dedup();
        let mut added = Vec::new();
        for id in ids {
            let ours_changed = o.get(id).map(|x| &x.1) != b.get(id).map(|x| &x.1);
            let pick = if ours_changed { o.get(id) } else { t.get(id) };
            if let Some((account, _)) = pick {
                added.push((*account).clone());
            }
        }

        let in_list = |list: &[AccountId], id: &AccountId| list.contains(id);
        let mut removed: Vec<AccountId> = Vec::new();
        for id in ours
            .removed
            .iter()
            .chain(&theirs.removed)
            .chain(&base.removed)
        {
            if removed.contains(id) {
                continue;
            }
            let ours_changed = in_list(&ours.removed, id) != in_list(&base.removed, id);
            let keep = if ours_changed {
                in_list(&ours.removed, id)
            } else {
                in_list(&theirs.removed, id)
            };
            if keep {
                removed.push(id.clone());
            }
        }

        let mut patched = BTreeMap::new();
        for id in ours.patched.keys().chain(theirs.patched.keys()) {
            let ours_changed = ours.patched.get(id) != base.patched.get(id);
            let pick = if ours_changed {
                ours.patched.get(id)
            } else {
                theirs.patched.get(id)
            };
            if let Some(patch) = pick {
                patched.insert(id.clone(), patch.clone());
            }
        }
        AccountChanges {
            added,
            removed,
            patched,
        }
    }
}

#[cfg(test)]
mod merge_tests {
    use super::*;

    fn account(id: &str, weight: u32) -> NewAccount {
        serde_json::from_value(serde_json::json!({
            "id": id, "refresh_token": format!("r-{id}"), "weight": weight
        }))
        .unwrap()
    }

    fn ids(c: &AccountChanges) -> Vec<String> {
        c.added.iter().map(|a| a.id.clone()).collect()
    }

    #[test]
    fn changes_of_both_sides_survive() {
        let base = AccountChanges {
            added: vec![account("a", 1), account("b", 1)],
            ..Default::default()
        };
        // Here: "c" added and "a" re-weighted while Redis was down.
        let ours = AccountChanges {
            added: vec![account("a", 5), account("b", 1), account("c", 1)],
            ..Default::default()
        };
        // There: "b" removed, "d" added, a configured account deleted and patched.
        let theirs = AccountChanges {
            added: vec![account("a", 1), account("d", 1)],
            removed: vec!["cfg-1".parse().unwrap()],
            patched: BTreeMap::from([(
                "cfg-2".parse().unwrap(),
                AccountPatch {
                    weight: Some(3),
                    ..Default::default()
                },
            )]),
        };
        let merged = AccountChanges::merge3(&base, &ours, &theirs);
        assert_eq!(ids(&merged), ["a", "c", "d"]);
        let a = serde_json::to_value(&merged.added[0]).unwrap();
        assert_eq!(a["weight"], 5, "our edit of a wins: {a}");
        assert_eq!(merged.removed, vec!["cfg-1".parse::<AccountId>().unwrap()]);
        assert_eq!(merged.patched.len(), 1);
    }

    #[test]
    fn without_local_changes_theirs_is_taken_whole() {
        let base = AccountChanges {
            added: vec![account("a", 1)],
            removed: vec!["cfg-1".parse().unwrap()],
            ..Default::default()
        };
        let theirs = AccountChanges::default();
        let merged = AccountChanges::merge3(&base, &base, &theirs);
        assert!(merged.added.is_empty() && merged.removed.is_empty());
    }
}
