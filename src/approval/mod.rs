//! Approvals: who may let a planned action change the cluster, and the life of one request
//! from "requested" to "executed once" (or denied, or expired).
//!
//! The policy is data in the runbook ([`Policy`]); requests and decisions live in the durable
//! [`crate::store`], whose transactions are what make execution happen at most once. This
//! module resolves approvers against the config's groups, words refusals, and runs an approved
//! request: apply its planned calls (each audited), verify, record the outcome.

pub mod policy;

use std::collections::BTreeMap;

use serde::Serialize;

pub use policy::Policy;

use crate::bot::Bot;
use crate::render::{Button, ButtonStyle, Delivery, Reply, Severity, TemplateError};
use crate::runbook::actions::{self, ActionCx, DryRun};
use crate::store::{Actor, AuditKind, Record, Refusal, Request, RequestState, StoreError};

/// Named groups of user ids, from the config file.
pub type Groups = BTreeMap<String, Vec<String>>;

/// Whether `user_id` is among `policy`'s approvers. No approvers listed means anyone (the
/// requester rule still applies).
pub fn is_approver(policy: &Policy, groups: &Groups, user_id: &str) -> bool {
    policy.approvers.is_empty()
        || policy
            .approvers
            .iter()
            .any(|entry| match entry.strip_prefix("group:") {
                Some(group) => groups
                    .get(group)
                    .is_some_and(|members| members.iter().any(|m| m == user_id)),
                None => entry == user_id,
            })
}

/// Who may approve, in words: `group:oncall (alice, bob), U024BE7LH`.
pub fn describe_approvers(policy: &Policy, groups: &Groups) -> String {
    if policy.approvers.is_empty() {
        return "anyone".to_string();
    }
    policy
        .approvers
        .iter()
        .map(|entry| match entry.strip_prefix("group:") {
            Some(group) => match groups.get(group) {
                Some(members) if !members.is_empty() => {
                    format!("{entry} ({})", members.join(", "))
                }
                _ => format!("{entry} (no such group in the config: nobody)"),
            },
            None => entry.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the `approval` template renders: a request, its policy in words, what happened.
#[derive(Debug, Serialize)]
pub(crate) struct RequestView<'a> {
    pub request: &'a Request,
    pub approvals: usize,
    pub needed: u32,
    pub approvers: String,
    pub dry_run: String,
    pub dry_run_passed: bool,
    /// API calls made, `PATCH /apis/... → 200`.
    pub calls: Vec<String>,
    /// Verification, when it ran.
    pub verification: Option<String>,
    /// A line for the reader: why a click did nothing, or what to do next.
    pub notice: Option<String>,
}

impl Bot {
    /// Render `request` as its approval prompt or outcome. Pending requests carry Approve and
    /// Deny buttons; decided ones carry none, so a replaced message leaves no stale buttons.
    pub(crate) fn render_request(
        &self,
        request: &Request,
        calls: Vec<String>,
        verification: Option<String>,
        notice: Option<String>,
    ) -> Result<Reply, TemplateError> {
        let (dry_run, dry_run_passed) = match &request.plan.dry_run {
            DryRun::Passed => ("passed (dryRun=All)".to_string(), true),
            DryRun::Refused(message) => (format!("refused: {message}"), false),
            DryRun::NotSupported => ("not supported for this change".to_string(), true),
        };
        let view = RequestView {
            request,
            approvals: request.approvals(),
            needed: request.policy.approvals.max(1),
            approvers: describe_approvers(&request.policy, &self.groups),
            dry_run,
            dry_run_passed,
            calls,
            verification,
            notice,
        };
        let severity = match request.state {
            RequestState::Pending | RequestState::Executing => Severity::Warning,
            RequestState::Succeeded => Severity::Ok,
            RequestState::Failed | RequestState::Interrupted => Severity::Critical,
            RequestState::Denied | RequestState::Expired => Severity::Info,
        };
        let buttons = if request.state == RequestState::Pending {
            vec![
                Button {
                    label: "Approve".to_string(),
                    command: format!("/approve {}", request.id),
                    style: ButtonStyle::Danger,
                    confirm: Some(format!(
                        "{} — apply this to {}?",
                        request.plan.summary, request.plan.target
                    )),
                },
                Button {
                    label: "Deny".to_string(),
                    command: format!("/deny {}", request.id),
                    style: ButtonStyle::Default,
                    confirm: None,
                },
            ]
        } else {
            Vec::new()
        };
        self.templates.render("approval", &view, severity, buttons)
    }

    /// Run a request this caller won the right to execute: make its planned calls (each
    /// audited as it is made), verify, and record the outcome. Returns the reply that replaces
    /// the prompt.
    pub(crate) async fn execute(
        &self,
        request: &Request,
        on_progress: &(dyn Fn(&Reply) + Send + Sync),
    ) -> Result<Reply, TemplateError> {
        let firebreak = Actor::firebreak(&request.requester.channel);
        if let Ok(mut reply) = self.render_request(
            request,
            Vec::new(),
            None,
            Some("Approved: applying the plan…".to_string()),
        ) {
            reply.in_progress = true;
            on_progress(&reply);
        }
        let applied = actions::apply(&request.plan, &self.cluster).await;
        let mut calls = Vec::new();
        let (state, outcome, verification) = match applied {
            Ok(made) => {
                for call in &made {
                    let line = format!("{} {} → {}", call.method, call.path, call.status);
                    self.audit_quietly(Record {
                        kind: AuditKind::ApiCall,
                        actor: &firebreak,
                        incident: request.incident.as_deref(),
                        request: Some(&request.id),
                        detail: line.clone(),
                    })
                    .await;
                    calls.push(line);
                }
                let verified = match self.runbooks.get(&request.service) {
                    Some(runbook) => {
                        let cx = ActionCx {
                            runbook,
                            cluster: &self.cluster,
                        };
                        actions::verify(&request.plan, &cx, self.verify_timeout).await
                    }
                    None => actions::Verification {
                        settled: false,
                        detail: format!(
                            "not verified: no runbook for `{}` is loaded any more",
                            request.service
                        ),
                    },
                };
                if verified.settled {
                    (
                        RequestState::Succeeded,
                        format!("{} — {}", request.plan.summary, verified.detail),
                        Some(verified.detail),
                    )
                } else {
                    (
                        RequestState::Failed,
                        format!("applied, but did not settle: {}", verified.detail),
                        Some(verified.detail),
                    )
                }
            }
            Err(error) => (RequestState::Failed, format!("not applied: {error}"), None),
        };
        let finished = match self
            .store
            .finish_request(&request.id, state, outcome.clone())
            .await
        {
            Ok(Some(finished)) => finished,
            Ok(None) => request.clone(),
            Err(error) => {
                tracing::error!(%error, request = %request.id, "outcome not recorded");
                return self.state_error(&error);
            }
        };
        tracing::info!(request = %request.id, state = finished.state.as_str(), "action finished");
        if let Some(incident) = &finished.incident {
            let succeeded = finished.state == RequestState::Succeeded;
            let text = format!(
                "{} {}: {}",
                finished.action,
                finished.state.as_str(),
                finished.outcome.as_deref().unwrap_or_default()
            );
            let data = serde_json::json!({
                "request": finished.id,
                "versions": finished.plan.versions,
                "calls": calls,
            });
            let now = crate::store::now_text();
            let recorded = self
                .store
                .update_incident(incident, &firebreak, "action", move |i| {
                    if succeeded && i.data.mitigated_at.is_none() {
                        i.data.mitigated_at = Some(now);
                    }
                    Some((text, data))
                })
                .await;
            if let Err(error) = recorded {
                tracing::error!(%error, incident, "action outcome not recorded on the timeline");
            }
        }
        let mut reply = self.render_request(&finished, calls, verification, None)?;
        reply.delivery = Delivery::ReplaceOrigin;
        Ok(reply)
    }

    /// Append to the audit log; a failure is logged, not shown (the action already happened).
    pub(crate) async fn audit_quietly(&self, record: Record<'_>) {
        let kind = record.kind;
        if let Err(error) = self.store.audit(record).await {
            // Loud on purpose: an audit log that silently stops is worse than none.
            tracing::error!(
                %error,
                kind = kind.as_str(),
                state = %self.store.location(),
                "AUDIT RECORD NOT WRITTEN: the state file cannot be written; fix its disk or permissions (or point --state at a writable file) and restart"
            );
        }
    }

    /// The reply when the state store fails: nothing was decided or run.
    pub(crate) fn state_error(&self, error: &StoreError) -> Result<Reply, TemplateError> {
        self.error_reply(
            format!("Firebreak could not record this: {error}"),
            Some("Nothing was changed. Check the state file's disk and permissions, then click again.".to_string()),
        )
    }
}

/// Why a click did nothing, in words for the person who clicked.
pub(crate) fn refusal_message(
    refusal: &Refusal,
    id: &str,
    request: Option<&Request>,
    approvers: &str,
) -> String {
    match (refusal, request) {
        (Refusal::NotFound, _) => format!(
            "there is no approval request `{id}`; the id is in the prompt's buttons and in `firebreak audit`"
        ),
        (Refusal::AlreadyDecided, Some(request)) => format!(
            "request `{id}` is already {}{}; nothing more will run",
            request.state.as_str(),
            request
                .outcome
                .as_deref()
                .map(|o| format!(" ({o})"))
                .unwrap_or_default()
        ),
        (Refusal::AlreadyDecided, None) => format!("request `{id}` is already decided"),
        (Refusal::Expired, _) => format!(
            "request `{id}` expired before it was approved; run the stage again for a fresh plan"
        ),
        (Refusal::NotAuthorised, _) => {
            format!("you are not an approver of request `{id}`; approvers: {approvers}")
        }
        (Refusal::SelfApproval, _) => format!(
            "you requested `{id}`, and its policy needs someone else to approve it (approvers: {approvers})"
        ),
        (Refusal::ReasonRequired, _) => format!(
            "request `{id}` needs a reason: type `/approve {id} <why>` or `/deny {id} <why>`"
        ),
        (Refusal::AlreadyApproved, Some(request)) => format!(
            "you already approved `{id}`; it needs {} approval(s) from different people ({} so far)",
            request.policy.approvals.max(1),
            request.approvals()
        ),
        (Refusal::AlreadyApproved, None) => format!("you already approved `{id}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approvers_are_ids_or_groups() {
        let groups: Groups = [(
            "oncall".to_string(),
            vec!["U1".to_string(), "U2".to_string()],
        )]
        .into_iter()
        .collect();
        let policy = Policy {
            approvers: vec!["group:oncall".into(), "U9".into(), "group:missing".into()],
            ..Policy::default()
        };
        assert!(is_approver(&policy, &groups, "U2"));
        assert!(is_approver(&policy, &groups, "U9"));
        assert!(!is_approver(&policy, &groups, "U3"));
        assert!(is_approver(&Policy::default(), &groups, "anyone"));
        assert_eq!(
            describe_approvers(&policy, &groups),
            "group:oncall (U1, U2), U9, group:missing (no such group in the config: nobody)"
        );
    }
}
