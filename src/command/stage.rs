//! `/triage`, `/mitigate`, `/rollback`, `/postmortem`: run a runbook stage and render its report;
//! with an action named, hand over to [`super::action`] to request it.

use serde::Serialize;

use super::action::{self, ActionOffer};
use crate::bot::Bot;
use crate::chat::Invocation;
use crate::render::{Button, ButtonStyle, Reply, Severity, TemplateError};
use crate::runbook::steps::run_stage;
use crate::runbook::{Runbook, Stage, StageReport};
use crate::store::Actor;

/// What a stage template renders: the report, and the actions the stage offers with their
/// plans (empty for triage and post-mortem).
#[derive(Debug, Serialize)]
pub(crate) struct StageView<'a> {
    #[serde(flatten)]
    pub report: &'a StageReport,
    pub actions: &'a [ActionOffer],
}

/// Run `stage` of `service`'s runbook, or request one of its actions.
pub async fn handle(
    bot: &Bot,
    inv: &Invocation,
    stage: Stage,
    service: Option<&str>,
    action: Option<&str>,
    value: Option<&str>,
    on_progress: &(dyn Fn(&Reply) + Send + Sync),
) -> Result<Reply, TemplateError> {
    // `/rollback undo` with a single runbook: the first word is the action, not a service.
    let offers_action = |runbook: &Runbook, id: &str| {
        runbook
            .stage(stage)
            .is_some_and(|s| s.actions.iter().any(|a| a.id() == id))
    };
    let (service, action, value) = match (service, bot.runbooks.only()) {
        (Some(word), Some(only))
            if bot.runbooks.get(word).is_none() && offers_action(only, word) =>
        {
            (Some(only.service.as_str()), Some(word), action)
        }
        _ => (service, action, value),
    };
    let runbook = match resolve(bot, stage, service) {
        Ok(runbook) => runbook,
        Err(reply) => return reply,
    };
    if let Some(action) = action {
        return action::handle(bot, inv, runbook, stage, action, value, on_progress).await;
    }
    let buttons = next_steps(runbook, stage);
    let template = stage.as_str();
    let progress = |report: &StageReport| {
        if report.done {
            return;
        }
        let view = StageView {
            report,
            actions: &[],
        };
        match bot
            .templates
            .render(template, &view, report.severity, Vec::new())
        {
            Ok(mut reply) => {
                reply.in_progress = true;
                on_progress(&reply);
            }
            Err(error) => tracing::warn!(%error, "progress snapshot not rendered"),
        }
    };
    let (report, offers) = futures::join!(
        run_stage(runbook, stage, &bot.cluster, &progress),
        action::offers(bot, runbook, stage)
    );
    tracing::info!(
        severity = report.severity.as_str(),
        elapsed_ms = report.elapsed_ms,
        "stage finished"
    );
    let mut buttons = verdict_first(
        buttons,
        report.verdict.as_ref().and_then(|v| v.command.as_deref()),
    );
    buttons.extend(offers.iter().filter_map(ActionOffer::button));
    let view = StageView {
        report: &report,
        actions: &offers,
    };
    let mut reply = bot
        .templates
        .render(template, &view, report.severity, buttons)?;
    if let Some(incident) = &inv.incident {
        record_in_incident(bot, inv, incident, runbook, &report).await;
        if stage == Stage::Postmortem
            && let Ok(Some(incident)) = bot.store.incident(incident).await
        {
            reply.effects.push(bot.postmortem_draft(&incident).await?);
        }
    }
    Ok(reply)
}

/// A triage verdict goes on the incident's timeline with its evidence, and becomes the
/// summary's "last verdict"; the incident learns its service from the first stage run in it.
async fn record_in_incident(
    bot: &Bot,
    inv: &Invocation,
    incident: &str,
    runbook: &Runbook,
    report: &StageReport,
) {
    let actor = Actor::of(inv);
    let service = runbook.service.clone();
    let verdict = report.verdict.as_ref().filter(|_| report.stage == "triage");
    let line = verdict.map(|v| {
        format!(
            "{}: {}",
            v.class.as_str(),
            v.evidence
                .first()
                .map(String::as_str)
                .unwrap_or("no evidence")
        )
    });
    let data = verdict.map(|v| {
        let breaches: Vec<&str> = report
            .steps
            .iter()
            .flat_map(|s| s.findings.iter())
            .filter(|f| f.severity >= Severity::Warning)
            .map(|f| f.text.as_str())
            .filter(|t| t.contains("SLO") || t.contains("(above "))
            .collect();
        serde_json::json!({
            "class": v.class.as_str(),
            "evidence": v.evidence,
            "next_step": v.next_step,
            "slo_breaches": breaches,
        })
    });
    let updated = bot
        .store
        .update_incident(incident, &actor, "verdict", move |i| {
            i.data.service.get_or_insert(service);
            let line = line?;
            i.data.last_verdict = Some(line.clone());
            Some((line, data.unwrap_or_default()))
        })
        .await;
    if let Err(error) = updated {
        tracing::error!(%error, incident, "verdict not recorded on the timeline");
    }
}

/// The runbook a stage command names (or the only one), and that it has the stage; otherwise
/// the reply saying what exists.
fn resolve<'a>(
    bot: &'a Bot,
    stage: Stage,
    service: Option<&str>,
) -> Result<&'a Runbook, Result<Reply, TemplateError>> {
    let known = bot.runbooks.services().join(", ");
    let runbook = match service {
        Some(name) => match bot.runbooks.get(name) {
            Some(runbook) => runbook,
            None => {
                return Err(bot.error_reply(
                    format!("no runbook for service `{name}`"),
                    Some(format!(
                        "Services with runbooks: {known}. Add runbooks/{name}.yaml to cover it."
                    )),
                ));
            }
        },
        None => match bot.runbooks.only() {
            Some(runbook) => runbook,
            None => {
                return Err(bot.error_reply(
                    format!("name a service: `/{stage} <service>`"),
                    Some(format!("Services with runbooks: {known}.")),
                ));
            }
        },
    };
    if runbook.stage(stage).is_none() {
        let defined: Vec<&str> = runbook.stages.keys().map(|s| s.as_str()).collect();
        return Err(bot.error_reply(
            format!(
                "the runbook of `{}` has no `{stage}` stage",
                runbook.service
            ),
            Some(format!(
                "It defines: {}. Add a `{stage}:` stage to {}.",
                defined.join(", "),
                runbook.source
            )),
        ));
    }
    Ok(runbook)
}

/// Buttons for the stages that usually follow `stage`, when the runbook defines them.
fn next_steps(runbook: &Runbook, stage: Stage) -> Vec<Button> {
    let follow: &[Stage] = match stage {
        Stage::Triage => &[Stage::Mitigate, Stage::Rollback],
        Stage::Mitigate => &[Stage::Triage, Stage::Rollback],
        Stage::Rollback => &[Stage::Triage, Stage::Postmortem],
        Stage::Postmortem => &[],
    };
    follow
        .iter()
        .filter(|s| runbook.stage(**s).is_some())
        .enumerate()
        .map(|(i, s)| Button {
            label: capitalised(s.as_str()),
            command: format!("/{} {}", s.as_str(), runbook.service),
            style: if i == 0 {
                ButtonStyle::Primary
            } else {
                ButtonStyle::Default
            },
            confirm: None,
        })
        .collect()
}

/// Put the verdict's suggested command first, as the primary button.
fn verdict_first(mut buttons: Vec<Button>, command: Option<&str>) -> Vec<Button> {
    let Some(command) = command else {
        return buttons;
    };
    let suggested = match buttons.iter().position(|b| b.command == command) {
        Some(index) => buttons.remove(index),
        None => Button {
            label: "Suggested next step".to_string(),
            command: command.to_string(),
            style: ButtonStyle::Primary,
            confirm: None,
        },
    };
    for button in &mut buttons {
        button.style = ButtonStyle::Default;
    }
    buttons.insert(
        0,
        Button {
            style: ButtonStyle::Primary,
            ..suggested
        },
    );
    buttons
}

/// `triage` → `Triage`.
fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}
