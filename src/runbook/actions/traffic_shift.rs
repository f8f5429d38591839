//! `traffic_shift`: set the backend weights of one rule of a Gateway API HTTPRoute
//! (`gateway.networking.k8s.io/v1`), e.g. all traffic from one region's backend to another's.
//!
//! Backends the runbook does not name keep their weight. The JSON Patch tests each named
//! backend's name (the list may have been reordered) and the weight the plan saw, so a route
//! someone else changed is refused rather than overwritten. A backend without a `weight` has
//! the Gateway API default of 1.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::wire::{self, get_json};
use super::{ActionCx, ActionError, ApiCall, Draft, VersionChange};
use crate::approval::Policy;

/// Runbook form of the `traffic_shift` action; it takes no command argument.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrafficShift {
    /// What commands call it.
    pub id: String,
    /// Heading shown with the plan.
    pub title: Option<String>,
    /// Who must approve; the default policy when absent.
    pub approval: Option<Policy>,
    /// No approval needed.
    #[serde(default)]
    pub safe: bool,
    /// The HTTPRoute, in the runbook's namespace.
    pub route: String,
    /// Which of its `spec.rules` (0-based).
    #[serde(default)]
    pub rule: usize,
    /// New weight per backendRef name.
    pub weights: BTreeMap<String, u32>,
}

impl TrafficShift {
    pub(super) async fn plan(
        &self,
        cx: &ActionCx<'_>,
        arg: Option<&str>,
    ) -> Result<Draft, ActionError> {
        if let Some(a) = arg {
            return Err(ActionError::BadArgument(format!(
                "`{}` takes no argument (got `{a}`); its weights are set in the runbook",
                self.id
            )));
        }
        let ns = &cx.runbook.namespace;
        let target = format!("httproute/{} -n {ns}", self.route);
        let path = format!(
            "/apis/gateway.networking.k8s.io/v1/namespaces/{ns}/httproutes/{}",
            self.route
        );
        let route = get_json(cx, &path, &format!("HTTPRoute `{}`", self.route)).await?;
        let rules = route
            .pointer("/spec/rules")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        let refs = route
            .pointer(&format!("/spec/rules/{}/backendRefs", self.rule))
            .and_then(Value::as_array)
            .ok_or_else(|| {
                ActionError::NotFound(format!(
                    "{target} has no rule {} with backendRefs ({rules} rules); check the runbook's `rule:`",
                    self.rule
                ))
            })?;
        let names: Vec<&str> = refs
            .iter()
            .filter_map(|r| r.get("name").and_then(Value::as_str))
            .collect();
        let mut ops = Vec::new();
        let (mut before, mut after, mut versions) = (Vec::new(), Vec::new(), Vec::new());
        for (j, backend) in refs.iter().enumerate() {
            let name = backend.get("name").and_then(Value::as_str).unwrap_or("");
            let Some(new) = self.weights.get(name) else {
                continue;
            };
            let at = format!("/spec/rules/{}/backendRefs/{j}", self.rule);
            ops.push(json!({"op": "test", "path": format!("{at}/name"), "value": name}));
            let old = match backend.get("weight") {
                Some(w) => {
                    ops.push(json!({"op": "test", "path": format!("{at}/weight"), "value": w}));
                    w.as_u64().unwrap_or(1)
                }
                None => 1,
            };
            if old == u64::from(*new) {
                continue;
            }
            ops.push(json!({"op": "add", "path": format!("{at}/weight"), "value": new}));
            let key = format!("weight {name}");
            before.push((key.clone(), old.to_string()));
            after.push((key.clone(), new.to_string()));
            versions.push(VersionChange::new(key, old.to_string(), new.to_string()));
        }
        let unknown: Vec<&str> = self
            .weights
            .keys()
            .map(String::as_str)
            .filter(|n| !names.contains(n))
            .collect();
        if !unknown.is_empty() {
            return Err(ActionError::BadArgument(format!(
                "{target} rule {} has no backend {}; its backends: {}. Fix the runbook's `weights:`",
                self.rule,
                unknown.join(", "),
                names.join(", ")
            )));
        }
        if versions.is_empty() {
            return Err(ActionError::NothingToDo(format!(
                "{target} rule {} already has these weights",
                self.rule
            )));
        }
        let shares = |side: &[(String, String)]| {
            side.iter()
                .map(|(k, v)| format!("{} {v}", k.trim_start_matches("weight ")))
                .collect::<Vec<_>>()
                .join(", ")
        };
        Ok(Draft {
            summary: format!(
                "shift traffic on {target} rule {}: {} → {}",
                self.rule,
                shares(&before),
                shares(&after)
            ),
            diff: wire::diff_lines(&before, &after),
            calls: vec![ApiCall {
                method: "PATCH".into(),
                path,
                content_type: "application/json-patch+json".into(),
                body: Some(Value::Array(ops)),
            }],
            versions,
            target,
        })
    }
}
