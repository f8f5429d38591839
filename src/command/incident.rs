//! `/incident declare|status|severity|role|note|resolve|list`: the incident lifecycle. Every
//! change lands on the incident's timeline in the same transaction, and the summary follows.

use crate::bot::Bot;
use crate::chat::Invocation;
use crate::incident::{SEVERITIES, authority, channel_name, parse_severity};
use crate::render::{Effect, Reply, TemplateError};
use crate::runbook::steps::aligned_table;
use crate::store::{Actor, AuditKind, Declaration, Incident, Record};

/// Answer `/incident <sub> <args>`; `current` is the incident the channel is bound to.
pub async fn handle(
    bot: &Bot,
    inv: &Invocation,
    sub: &str,
    args: &[String],
    current: Option<Incident>,
) -> Result<Reply, TemplateError> {
    match sub {
        "declare" => declare(bot, inv, args).await,
        "list" => list(bot).await,
        _ => {
            // Outside an incident's channel, the incident can be named first: `INC-7`. A
            // first word `--` says "no incident named here", so text that starts with an id
            // (`/incident resolve -- INC-3 was a duplicate`) stays text: Discord's options
            // arrive by name and are written out this way.
            let (explicit_none, args) = match args.split_first() {
                Some((first, rest)) if first == "--" => (true, rest),
                _ => (false, args),
            };
            let (incident, args) = match args.first().filter(|_| !explicit_none) {
                Some(word) if is_incident_id(word) => match bot.store.incident(word).await {
                    Ok(Some(incident)) => (incident, args.get(1..).unwrap_or_default()),
                    Ok(None) => {
                        return bot.error_reply(
                            format!("there is no incident `{word}`"),
                            Some("`/incident list` shows them.".into()),
                        );
                    }
                    Err(error) => return bot.state_error(&error),
                },
                _ => match current {
                    Some(incident) => (incident, args),
                    None => {
                        return bot.error_reply(
                            format!("`/incident {sub}` needs an incident, and this channel has none open"),
                            Some(format!(
                                "Run it in the incident's channel, name it (`/incident {sub} INC-7 ...`), or declare one: `/incident declare sev2 <title>`."
                            )),
                        );
                    }
                },
            };
            change(bot, inv, sub, args, incident).await
        }
    }
}

/// `INC-7`, any case. Outside text: `get` rather than slicing, since a word like `Noté` or
/// `数据库` has no character boundary at byte 4.
pub fn is_incident_id(word: &str) -> bool {
    match (word.get(..4), word.get(4..)) {
        (Some(prefix), Some(number)) => {
            prefix.eq_ignore_ascii_case("inc-")
                && !number.is_empty()
                && number.bytes().all(|b| b.is_ascii_digit())
        }
        _ => false,
    }
}

async fn declare(bot: &Bot, inv: &Invocation, args: &[String]) -> Result<Reply, TemplateError> {
    let usage = || {
        Some(format!(
            "Usage: `/incident declare <{}> <title>`, e.g. `/incident declare sev2 KV cache full on model-server`.",
            SEVERITIES.join("|")
        ))
    };
    let Some(severity) = args.first().and_then(|s| parse_severity(s)) else {
        return bot.error_reply(
            format!(
                "`/incident declare` needs a severity first, one of {}",
                SEVERITIES.join(", ")
            ),
            usage(),
        );
    };
    let title = args.get(1..).unwrap_or_default().join(" ");
    if title.trim().is_empty() {
        return bot.error_reply("`/incident declare` needs a title".into(), usage());
    }
    let declarer = Actor::of(inv);
    let declared = bot
        .store
        .declare(Declaration {
            title: title.clone(),
            severity: severity.to_string(),
            declarer: declarer.clone(),
            service: bot.runbooks.only().map(|r| r.service.clone()),
            group_key: None,
            detected_by: declarer.name.clone(),
            started_at: None,
        })
        .await;
    let incident = match declared {
        Ok((incident, _)) => incident,
        Err(error) => return bot.state_error(&error),
    };
    tracing::info!(incident = %incident.id, severity, "incident declared");
    let mut reply = bot
        .summary(
            &incident,
            Some(format!(
                "{} declared {} and is its commander. Stage commands in this channel now attach to it.",
                declarer.name, incident.id
            )),
        )
        .await?;
    reply.effects.push(Effect::OpenChannel {
        incident: incident.id.clone(),
        name: channel_name(&incident.id, &title),
        topic: format!("{} ({severity}): {title}", incident.id),
        invite: vec![inv.user.id.clone()],
    });
    if let Some(summary) = bot.summary_effect(&incident).await {
        reply.effects.push(summary);
    }
    Ok(reply)
}

async fn list(bot: &Bot) -> Result<Reply, TemplateError> {
    let incidents = match bot.store.incidents().await {
        Ok(incidents) => incidents,
        Err(error) => return bot.state_error(&error),
    };
    let rows: Vec<Vec<String>> = incidents
        .iter()
        .map(|i| {
            vec![
                i.id.clone(),
                i.severity.clone(),
                if i.open { "open" } else { "resolved" }.to_string(),
                i.data.roles.get("commander").cloned().unwrap_or_default(),
                i.declared_at.clone(),
                i.title.clone(),
            ]
        })
        .collect();
    let table = aligned_table(
        &["ID", "SEV", "STATE", "COMMANDER", "DECLARED", "TITLE"],
        &rows,
    );
    let view = serde_json::json!({"incidents": incidents, "table": table});
    bot.templates.render(
        "incidents",
        &view,
        crate::render::Severity::Info,
        Vec::new(),
    )
}

/// status, severity, role, note, resolve: change the incident, record it, refresh the summary.
async fn change(
    bot: &Bot,
    inv: &Invocation,
    sub: &str,
    args: &[String],
    incident: Incident,
) -> Result<Reply, TemplateError> {
    let actor = Actor::of(inv);
    let text = args.join(" ");
    let who = actor.name.clone();
    let needs_text = |what: &str| {
        bot.error_reply(
            format!("`/incident {sub}` needs {what}"),
            Some(format!("e.g. `/incident {sub} {}`", example(sub))),
        )
    };
    if !authority::OPEN_TO_ALL.contains(&sub)
        && !authority::may_change(&incident, &bot.groups, &inv.user.id)
    {
        return refuse(bot, inv, sub, &incident).await;
    }
    if !incident.open && sub != "note" {
        return bot.error_reply(
            format!("{} is already resolved", incident.id),
            Some("Declare a new incident if the problem is back; `/incident note` still adds to this one's record.".into()),
        );
    }
    let updated = match sub {
        "status" => {
            if text.trim().is_empty() {
                return needs_text("a status line");
            }
            bot.store
                .update_incident(&incident.id, &actor, "status", move |i| {
                    i.data.status_text = Some(text.clone());
                    Some((
                        format!("{who} set the status: {text}"),
                        serde_json::Value::Null,
                    ))
                })
                .await
        }
        "severity" => {
            let Some(severity) = args.first().and_then(|s| parse_severity(s)) else {
                return needs_text(&format!("one of {}", SEVERITIES.join(", ")));
            };
            bot.store
                .update_incident(&incident.id, &actor, "severity", move |i| {
                    let from = std::mem::replace(&mut i.severity, severity.to_string());
                    (from != severity).then(|| {
                        (
                            format!("{who} changed the severity from {from} to {severity}"),
                            serde_json::json!({"from": from, "to": severity}),
                        )
                    })
                })
                .await
        }
        "role" => {
            let (Some(role), Some(_)) = (args.first(), args.get(1)) else {
                return needs_text("a role and a person");
            };
            let (role, holder) = (
                role.to_lowercase(),
                args.get(1..).unwrap_or_default().join(" "),
            );
            bot.store
                .update_incident(&incident.id, &actor, "role", move |i| {
                    i.data.roles.insert(role.clone(), holder.clone());
                    Some((
                        format!("{who} made {holder} {role}"),
                        serde_json::json!({"role": role, "holder": holder}),
                    ))
                })
                .await
        }
        "note" => {
            if text.trim().is_empty() {
                return needs_text("the note");
            }
            bot.store
                .update_incident(&incident.id, &actor, "note", move |_| {
                    Some((text.clone(), serde_json::Value::Null))
                })
                .await
        }
        "resolve" => {
            let now = crate::store::now_text();
            let note = text.clone();
            bot.store
                .update_incident(&incident.id, &actor, "resolved", move |i| {
                    i.open = false;
                    i.data.resolved_at = Some(now.clone());
                    Some((
                        if note.trim().is_empty() {
                            format!("{who} resolved the incident")
                        } else {
                            format!("{who} resolved the incident: {note}")
                        },
                        serde_json::Value::Null,
                    ))
                })
                .await
        }
        other => {
            return bot.error_reply(format!("unknown subcommand `{other}`"), None);
        }
    };
    let incident = match updated {
        Ok(Some(incident)) => incident,
        Ok(None) => {
            return bot.error_reply(format!("incident {} vanished", incident.id), None);
        }
        Err(error) => return bot.state_error(&error),
    };
    let notice = match sub {
        "note" => "Noted on the timeline.".to_string(),
        "resolve" => "Resolved. The post-mortem draft is attached; `/postmortem` regenerates it from the timeline.".to_string(),
        _ => "Updated.".to_string(),
    };
    let mut reply = bot.summary(&incident, Some(notice)).await?;
    if sub == "resolve" {
        reply.effects.push(bot.postmortem_draft(&incident).await?);
    }
    if let Some(summary) = bot.summary_effect(&incident).await {
        reply.effects.push(summary);
    }
    Ok(reply)
}

/// A change by someone who does not run the incident: audited like a refused approval,
/// and explained with who can do it instead.
async fn refuse(
    bot: &Bot,
    inv: &Invocation,
    sub: &str,
    incident: &Incident,
) -> Result<Reply, TemplateError> {
    tracing::info!(incident = %incident.id, sub, "incident change refused: not commander, responder or incident manager");
    bot.audit_quietly(Record {
        kind: AuditKind::Refused,
        actor: &Actor::of(inv),
        incident: Some(&incident.id),
        request: None,
        detail: format!(
            "/incident {sub} refused: {} is not {}'s commander, a responder, or in group {}",
            inv.user.id,
            incident.id,
            authority::INCIDENT_MANAGERS
        ),
    })
    .await;
    let commander = incident
        .data
        .roles
        .get("commander")
        .cloned()
        .unwrap_or_else(|| incident.data.commander_id.clone());
    bot.error_reply(
        format!(
            "only {}'s commander ({commander}), its responders or the `{}` group can `/incident {sub}`",
            incident.id,
            authority::INCIDENT_MANAGERS
        ),
        Some("Ask the commander to assign you a role (`/incident role ops @you`); anyone can still `/incident note`.".into()),
    )
}

fn example(sub: &str) -> &'static str {
    match sub {
        "status" => "rolled back to v0.10.1, watching KV cache",
        "severity" => "sev1",
        "role" => "scribe @bob",
        "note" => "v2 doubled max_num_seqs",
        _ => "",
    }
}
