//! `/mitigate <service> <action> [value]`, `/rollback ...`: plan one action, dry-run it, and
//! post the approval prompt (or, for an action the runbook marks safe, run it). Also the list
//! of planned actions a stage report offers.

use serde::Serialize;

use crate::approval::describe_approvers;
use crate::bot::Bot;
use crate::chat::Invocation;
use crate::render::{Button, ButtonStyle, Reply, TemplateError};
use crate::runbook::actions::{self, ActionCx, ActionSpec, DryRun};
use crate::runbook::{Runbook, Stage};
use crate::store::{Actor, AuditKind, NewRequest, Record, RequestState};

/// One action as a stage report offers it: its plan in one line, or why it cannot be planned.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ActionOffer {
    pub id: String,
    pub kind: &'static str,
    pub title: Option<String>,
    pub summary: Option<String>,
    pub dry_run: Option<String>,
    pub error: Option<String>,
    /// What it needs: `1 approval from group:oncall (alice, bob)` or `no approval (safe)`.
    pub approval: String,
    /// The command that requests it.
    pub command: String,
}

impl ActionOffer {
    /// A "Request …" button, for an action that could be planned.
    pub fn button(&self) -> Option<Button> {
        self.error.is_none().then(|| Button {
            label: format!("Request {}", self.id),
            command: self.command.clone(),
            style: ButtonStyle::Default,
            confirm: None,
        })
    }
}

/// Plan every action `stage` offers, concurrently; nothing is changed.
pub(crate) async fn offers(bot: &Bot, runbook: &Runbook, stage: Stage) -> Vec<ActionOffer> {
    let Some(spec) = runbook.stage(stage) else {
        return Vec::new();
    };
    let cx = ActionCx {
        runbook,
        cluster: &bot.cluster,
    };
    // A loop rather than `.map(|a| plan(a, ..))`: a closure returning a borrowing future
    // makes the whole handler future fail `Send`'s higher-ranked check, and adapters spawn it.
    let mut planning = Vec::with_capacity(spec.actions.len());
    for action in &spec.actions {
        planning.push(actions::plan(action, &cx, None));
    }
    let plans = futures::future::join_all(planning).await;
    spec.actions
        .iter()
        .zip(plans)
        .map(|(action, plan)| {
            let (summary, dry_run, error) = match plan {
                Ok(plan) => (
                    Some(plan.summary),
                    Some(match plan.dry_run {
                        DryRun::Passed => "passed".to_string(),
                        DryRun::Refused(message) => format!("refused: {message}"),
                        DryRun::NotSupported => "not supported".to_string(),
                    }),
                    None,
                ),
                Err(error) => (None, None, Some(error.to_string())),
            };
            ActionOffer {
                id: action.id().to_string(),
                kind: action.kind(),
                title: Some(action.title()),
                summary,
                dry_run,
                error,
                approval: needs(bot, action),
                command: format!("/{stage} {} {}", runbook.service, action.id()),
            }
        })
        .collect()
}

fn needs(bot: &Bot, action: &ActionSpec) -> String {
    match action.policy() {
        None => "no approval (marked safe)".to_string(),
        Some(policy) => format!(
            "{} approval(s) from {}",
            policy.approvals.max(1),
            describe_approvers(policy, &bot.groups)
        ),
    }
}

/// Request `action_id` of `runbook`'s `stage`: plan, dry-run, record, prompt.
pub(crate) async fn handle(
    bot: &Bot,
    inv: &Invocation,
    runbook: &Runbook,
    stage: Stage,
    action_id: &str,
    value: Option<&str>,
    on_progress: &(dyn Fn(&Reply) + Send + Sync),
) -> Result<Reply, TemplateError> {
    let offered = runbook
        .stage(stage)
        .map(|s| s.actions.as_slice())
        .unwrap_or_default();
    let Some(action) = offered.iter().find(|a| a.id() == action_id) else {
        let ids: Vec<&str> = offered.iter().map(ActionSpec::id).collect();
        return bot.error_reply(
            format!(
                "the {stage} stage of `{}` has no action `{action_id}`",
                runbook.service
            ),
            Some(if ids.is_empty() {
                format!(
                    "It offers no actions. Add `actions:` to its {stage} stage in {}.",
                    runbook.source
                )
            } else {
                format!("It offers: {}.", ids.join(", "))
            }),
        );
    };
    let cx = ActionCx {
        runbook,
        cluster: &bot.cluster,
    };
    let plan = match actions::plan(action, &cx, value).await {
        Ok(plan) => plan,
        Err(error) => {
            return bot.error_reply(
                format!(
                    "cannot plan `{action_id}` for `{}`: {error}",
                    runbook.service
                ),
                Some("Nothing was requested or changed.".to_string()),
            );
        }
    };
    if let DryRun::Refused(message) = &plan.dry_run {
        bot.audit_quietly(Record {
            kind: AuditKind::Plan,
            actor: &Actor::of(inv),
            incident: inv.incident.as_deref(),
            request: None,
            detail: format!(
                "{} {}: {} [dry run refused: {message}]; not requested",
                plan.kind, plan.target, plan.summary
            ),
        })
        .await;
        return bot.error_reply(
            format!("the API server refused a dry run of `{action_id}`: {message}"),
            Some(
                "Nothing was requested or changed. Fix what the API server names (often RBAC: see deploy/rbac.yaml), then ask again."
                    .to_string(),
            ),
        );
    }
    let created = bot
        .store
        .create_request(NewRequest {
            service: runbook.service.clone(),
            stage: stage.as_str().to_string(),
            plan,
            policy: action.policy().cloned(),
            requester: Actor::of(inv),
            incident: inv.incident.clone(),
        })
        .await;
    let request = match created {
        Ok(request) => request,
        Err(error) => return bot.state_error(&error),
    };
    tracing::info!(request = %request.id, action = action_id, "action requested");
    if request.state == RequestState::Executing {
        let mut reply = bot.execute(&request, on_progress).await?;
        reply.delivery = Default::default();
        return Ok(reply);
    }
    bot.render_request(&request, Vec::new(), None, None)
}
