//! `scale`: set the deployment's replicas to N or by a delta, within the runbook's bounds,
//! through the `deployments/{name}/scale` subresource (what `kubectl scale` uses; RBAC can
//! grant it without granting edits of the whole deployment).
//!
//! The JSON Patch tests the replica count the plan saw, so a plan made at 4 replicas that is
//! approved after an autoscaler moved to 6 is refused rather than scaling to 5.

use serde::Deserialize;
use serde_json::json;

use super::wire::{self, deployment, deployment_path, deployment_target};
use super::{ActionCx, ActionError, ApiCall, Draft, VersionChange};
use crate::approval::Policy;

/// Runbook form of the `scale` action. A command argument (`6`, `+2`, `-1`) overrides
/// `replicas`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scale {
    /// What commands call it.
    pub id: String,
    /// Heading shown with the plan.
    pub title: Option<String>,
    /// Who must approve; the default policy when absent.
    pub approval: Option<Policy>,
    /// No approval needed.
    #[serde(default)]
    pub safe: bool,
    /// The target: `"4"` (absolute) or `"+2"` / `"-1"` (relative to now).
    pub replicas: Replicas,
    /// Fewest replicas this action may leave (default 1: scaling to 0 is an outage, so a
    /// runbook must say `min: 0` to allow it).
    #[serde(default = "one")]
    pub min: i32,
    /// Most replicas this action may leave; required, so a typo cannot ask for 400 GPUs.
    pub max: i32,
}

fn one() -> i32 {
    1
}

/// A replica count, absolute or relative.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replicas {
    /// Exactly this many.
    To(i32),
    /// This many more (or fewer, when negative) than now.
    By(i32),
}

impl Replicas {
    /// Parse `4`, `+2` or `-1`.
    pub fn parse(text: &str) -> Option<Replicas> {
        let text = text.trim();
        if let Some(rest) = text.strip_prefix('+') {
            return rest.parse().ok().map(Replicas::By);
        }
        if let Some(rest) = text.strip_prefix('-') {
            return rest.parse::<i32>().ok().map(|n| Replicas::By(-n));
        }
        text.parse().ok().filter(|n| *n >= 0).map(Replicas::To)
    }

    fn resolve(self, current: i32) -> i32 {
        match self {
            Replicas::To(n) => n,
            Replicas::By(d) => current.saturating_add(d),
        }
    }
}

impl<'de> Deserialize<'de> for Replicas {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // YAML gives `4` as a number and `"+2"` as a string; take both.
        let text = match serde_norway::Value::deserialize(d)? {
            serde_norway::Value::Number(n) => n.to_string(),
            serde_norway::Value::String(s) => s,
            other => format!("{other:?}"),
        };
        Replicas::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "`{text}` is not a replica count; expected e.g. `4`, `\"+2\"` or `\"-1\"`"
            ))
        })
    }
}

impl Scale {
    pub(super) async fn plan(
        &self,
        cx: &ActionCx<'_>,
        arg: Option<&str>,
    ) -> Result<Draft, ActionError> {
        let wanted = match arg {
            None => self.replicas,
            Some(a) => Replicas::parse(a).ok_or_else(|| {
                ActionError::BadArgument(format!(
                    "`{a}` is not a replica count; give e.g. `6`, `+2` or `-1`"
                ))
            })?,
        };
        let target = deployment_target(cx);
        let deploy = deployment(cx).await?;
        let current = deploy.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let to = wanted.resolve(current);
        if to > self.max {
            return Err(ActionError::OutOfBounds(format!(
                "scaling {target} to {to} replicas is above the runbook's max of {}; ask for at most {} (or raise `max:` in the runbook)",
                self.max, self.max
            )));
        }
        if to < self.min {
            return Err(ActionError::OutOfBounds(format!(
                "scaling {target} to {to} replicas is below the runbook's min of {}; ask for at least {}",
                self.min, self.min
            )));
        }
        if to == current {
            return Err(ActionError::NothingToDo(format!(
                "{target} already has {current} replicas"
            )));
        }
        let body = json!([
            {"op": "test", "path": "/spec/replicas", "value": current},
            {"op": "replace", "path": "/spec/replicas", "value": to},
        ]);
        let key = "spec.replicas".to_string();
        Ok(Draft {
            summary: format!("scale {target} from {current} to {to} replicas"),
            diff: wire::diff_lines(
                &[(key.clone(), current.to_string())],
                &[(key, to.to_string())],
            ),
            calls: vec![ApiCall {
                method: "PATCH".into(),
                path: format!("{}/scale", deployment_path(cx)),
                content_type: "application/json-patch+json".into(),
                body: Some(body),
            }],
            versions: vec![VersionChange::new(
                "replicas",
                current.to_string(),
                to.to_string(),
            )],
            target,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Replicas;

    #[test]
    fn replica_counts_parse() {
        assert_eq!(Replicas::parse("4"), Some(Replicas::To(4)));
        assert_eq!(Replicas::parse("+2"), Some(Replicas::By(2)));
        assert_eq!(Replicas::parse("-1"), Some(Replicas::By(-1)));
        assert_eq!(Replicas::parse("x"), None);
        assert_eq!(Replicas::parse(""), None);
    }
}
