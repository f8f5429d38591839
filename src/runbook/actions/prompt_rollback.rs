//! `prompt_rollback`: point a prompt-versions ConfigMap's active key at an older version.
//!
//! The ConfigMap holds one data key per prompt version plus the active key naming the one that
//! serves (the simulator's `prompt-versions`: `active: v7`, `v6: ...`, `v7: ...`; the model
//! server reads the active key per request). Every data key other than the active key is a
//! version. Versions are ordered by name with digit runs compared as numbers (`v9` < `v10`),
//! and "previous" is the version just before the active one in that order. A command argument
//! names the version to switch to instead.
//!
//! The JSON Patch tests the active key's value the plan saw, so a plan is refused if someone
//! switched versions in the meantime.

use std::cmp::Ordering;

use serde::Deserialize;
use serde_json::{Value, json};

use super::wire::{self, get_json, pointer_escape};
use super::{ActionCx, ActionError, ApiCall, Draft, VersionChange};
use crate::approval::Policy;

/// Runbook form of the `prompt_rollback` action.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptRollback {
    /// What commands call it.
    pub id: String,
    /// Heading shown with the plan.
    pub title: Option<String>,
    /// Who must approve; the default policy when absent.
    pub approval: Option<Policy>,
    /// No approval needed.
    #[serde(default)]
    pub safe: bool,
    /// The ConfigMap, in the runbook's namespace.
    pub configmap: String,
    /// The data key naming the active version.
    #[serde(default = "active")]
    pub active_key: String,
}

fn active() -> String {
    "active".to_string()
}

/// Compare names with runs of digits as numbers: `v9` < `v10`, `2024-01` < `2024-02`.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a, b);
    loop {
        match (a.chars().next(), b.chars().next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let na = a.find(|c: char| !c.is_ascii_digit()).unwrap_or(a.len());
                let nb = b.find(|c: char| !c.is_ascii_digit()).unwrap_or(b.len());
                let (da, db) = (
                    a[..na].trim_start_matches('0'),
                    b[..nb].trim_start_matches('0'),
                );
                let ord = da.len().cmp(&db.len()).then_with(|| da.cmp(db));
                if ord != Ordering::Equal {
                    return ord;
                }
                (a, b) = (&a[na..], &b[nb..]);
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(&y);
                }
                (a, b) = (&a[x.len_utf8()..], &b[y.len_utf8()..]);
            }
        }
    }
}

impl PromptRollback {
    pub(super) async fn plan(
        &self,
        cx: &ActionCx<'_>,
        arg: Option<&str>,
    ) -> Result<Draft, ActionError> {
        let ns = &cx.runbook.namespace;
        let target = format!("configmap/{} -n {ns}", self.configmap);
        let path = format!("/api/v1/namespaces/{ns}/configmaps/{}", self.configmap);
        let cm = get_json(cx, &path, &format!("ConfigMap `{}`", self.configmap)).await?;
        let data = cm.get("data").and_then(Value::as_object);
        let active = data
            .and_then(|d| d.get(&self.active_key))
            .and_then(Value::as_str)
            .ok_or_else(|| {
                ActionError::NotFound(format!(
                    "{target} has no data key `{}` naming the active prompt version; check the runbook's `active_key:`",
                    self.active_key
                ))
            })?
            .to_string();
        let mut versions: Vec<&str> = data
            .map(|d| {
                d.keys()
                    .map(String::as_str)
                    .filter(|k| *k != self.active_key)
                    .collect()
            })
            .unwrap_or_default();
        versions.sort_by(|a, b| natural_cmp(a, b));
        let listed = versions.join(", ");
        let to = match arg {
            Some(v) if v == active => {
                return Err(ActionError::NothingToDo(format!(
                    "prompt version {v} is already active in {target}"
                )));
            }
            Some(v) => versions
                .iter()
                .find(|k| **k == v)
                .ok_or_else(|| {
                    ActionError::NotFound(format!(
                        "{target} has no prompt version `{v}`; versions: {listed}"
                    ))
                })?
                .to_string(),
            None => {
                let before = versions
                    .iter()
                    .rev()
                    .find(|k| natural_cmp(k, &active) == Ordering::Less);
                before
                    .ok_or_else(|| {
                        ActionError::NothingToDo(format!(
                            "no prompt version before {active} in {target} (versions: {listed}); name one to switch to"
                        ))
                    })?
                    .to_string()
            }
        };
        let pointer = format!("/data/{}", pointer_escape(&self.active_key));
        let body = json!([
            {"op": "test", "path": pointer, "value": active},
            {"op": "replace", "path": pointer, "value": to},
        ]);
        let key = format!("data.{}", self.active_key);
        Ok(Draft {
            summary: format!("switch the active prompt in {target} from {active} to {to}"),
            diff: wire::diff_lines(&[(key.clone(), active.clone())], &[(key, to.clone())]),
            calls: vec![ApiCall {
                method: "PATCH".into(),
                path,
                content_type: "application/json-patch+json".into(),
                body: Some(body),
            }],
            versions: vec![VersionChange::new("prompt version", active, to)],
            target,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::natural_cmp;
    use std::cmp::Ordering;

    #[test]
    fn versions_sort_naturally() {
        let mut v = vec!["v10", "v9", "v7", "v06"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, ["v06", "v7", "v9", "v10"]);
        assert_eq!(natural_cmp("a", "a"), Ordering::Equal);
    }
}
