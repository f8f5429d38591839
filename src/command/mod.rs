//! The commands Firebreak understands, parsed from an [`Invocation`]: one enum, one table of
//! usage lines (which is also `/help`), one handler file per command.
// Outside text flows through here: no byte slicing or indexing that can panic on it.
#![cfg_attr(not(test), warn(clippy::string_slice, clippy::indexing_slicing))]

pub mod action;
pub mod decide;
pub mod help;
pub mod incident;
pub mod stage;

use crate::chat::Invocation;
use crate::runbook::Stage;

/// A command's usage line and one-line summary; `/help` and error replies list these.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct CommandInfo {
    /// Command name without slash.
    pub name: &'static str,
    /// Usage line.
    pub usage: &'static str,
    /// What it does.
    pub summary: &'static str,
}

/// Every command, in the order `/help` lists them.
pub const COMMANDS: &[CommandInfo] = &[
    CommandInfo {
        name: "triage",
        usage: "/triage [service]",
        summary: "Run the triage stage: what is broken, with evidence.",
    },
    CommandInfo {
        name: "mitigate",
        usage: "/mitigate [service] [action [value]]",
        summary: "Show the mitigations with their plans; name one to request it.",
    },
    CommandInfo {
        name: "rollback",
        usage: "/rollback [service] [action [value]]",
        summary: "Show what a rollback would change; name an action to request it.",
    },
    CommandInfo {
        name: "postmortem",
        usage: "/postmortem [service]",
        summary: "Gather the post-mortem evidence for the service.",
    },
    CommandInfo {
        name: "incident",
        usage: "/incident declare|status|severity|role|note|resolve|list ...",
        summary: "Incident lifecycle: declare, update and resolve incidents.",
    },
    CommandInfo {
        name: "approve",
        usage: "/approve <request> [reason]",
        summary: "Approve a requested action; it runs once its policy is met.",
    },
    CommandInfo {
        name: "deny",
        usage: "/deny <request> [reason]",
        summary: "Deny a requested action (or withdraw your own request).",
    },
    CommandInfo {
        name: "help",
        usage: "/help [command]",
        summary: "This list, or one command's usage.",
    },
];

/// Subcommands of `/incident`.
pub const INCIDENT_SUBCOMMANDS: &[&str] = &[
    "declare", "status", "severity", "role", "note", "resolve", "list",
];

/// A parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `/help [command]`.
    Help {
        /// A command to explain, if named.
        topic: Option<String>,
    },
    /// `/triage`, `/mitigate`, `/rollback`, `/postmortem`.
    RunStage {
        /// Which stage.
        stage: Stage,
        /// The service, when named.
        service: Option<String>,
        /// The action to request, when named (`mitigate` and `rollback`).
        action: Option<String>,
        /// The action's value: a revision, a replica count, a prompt version, a pod.
        value: Option<String>,
    },
    /// `/approve <id> [reason]`, `/deny <id> [reason]`.
    Decide {
        /// The request id.
        request: String,
        /// Which way.
        decision: crate::store::Decision,
        /// Why, when given.
        reason: Option<String>,
    },
    /// `/incident <sub> ...`.
    Incident {
        /// The subcommand.
        sub: String,
        /// Its arguments.
        args: Vec<String>,
    },
}

/// A command that could not be understood; the reply says what exists instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    /// No such command.
    #[error("unknown command `/{0}`")]
    UnknownCommand(String),
    /// Wrong arguments for a known command.
    #[error("{message}; usage: `{usage}`")]
    BadArguments {
        /// What was wrong.
        message: String,
        /// The command's usage line.
        usage: &'static str,
    },
}

fn usage_of(name: &str) -> &'static str {
    COMMANDS
        .iter()
        .find(|c| c.name == name)
        .map(|c| c.usage)
        .unwrap_or("/help")
}

/// Understand an invocation.
pub fn parse(inv: &Invocation) -> Result<Command, UsageError> {
    let name = inv.command.as_str();
    let bad = |message: String| UsageError::BadArguments {
        message,
        usage: usage_of(name),
    };
    match name {
        "help" => {
            if inv.args.len() > 1 {
                return Err(bad("`/help` takes at most one command name".into()));
            }
            Ok(Command::Help {
                topic: inv
                    .args
                    .first()
                    .map(|t| t.trim_start_matches('/').to_lowercase()),
            })
        }
        "triage" | "mitigate" | "rollback" | "postmortem" => {
            let stage = match name {
                "triage" => Stage::Triage,
                "mitigate" => Stage::Mitigate,
                "rollback" => Stage::Rollback,
                _ => Stage::Postmortem,
            };
            let takes = if stage.has_actions() { 3 } else { 1 };
            if inv.args.len() > takes {
                return Err(bad(format!(
                    "`/{name}` takes at most {takes} argument(s), got {}",
                    inv.args.len()
                )));
            }
            let mut args = inv.args.iter().cloned();
            Ok(Command::RunStage {
                stage,
                service: args.next(),
                action: args.next(),
                value: args.next(),
            })
        }
        "approve" | "deny" => {
            let Some(request) = inv.args.first() else {
                return Err(bad(format!(
                    "`/{name}` needs the request id from the approval prompt"
                )));
            };
            let reason = inv.args.get(1..).unwrap_or_default().join(" ");
            Ok(Command::Decide {
                request: request.clone(),
                decision: if name == "approve" {
                    crate::store::Decision::Approve
                } else {
                    crate::store::Decision::Deny
                },
                reason: (!reason.trim().is_empty()).then_some(reason),
            })
        }
        "incident" => {
            let Some(sub) = inv.args.first() else {
                return Err(bad(format!(
                    "`/incident` needs a subcommand: {}",
                    INCIDENT_SUBCOMMANDS.join(", ")
                )));
            };
            let sub = sub.to_lowercase();
            if !INCIDENT_SUBCOMMANDS.contains(&sub.as_str()) {
                return Err(bad(format!(
                    "unknown subcommand `{sub}`; expected one of {}",
                    INCIDENT_SUBCOMMANDS.join(", ")
                )));
            }
            Ok(Command::Incident {
                sub,
                args: inv.args.get(1..).unwrap_or_default().to_vec(),
            })
        }
        other => Err(UsageError::UnknownCommand(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::{ChannelRef, Platform, UserRef};

    fn inv(line: &str) -> Invocation {
        Invocation::from_text(
            Platform::Console,
            UserRef {
                id: "u".into(),
                name: "u".into(),
            },
            ChannelRef { id: "c".into() },
            line,
        )
        .unwrap()
    }

    #[test]
    fn stages_and_help() {
        assert_eq!(
            parse(&inv("/triage model-server")),
            Ok(Command::RunStage {
                stage: Stage::Triage,
                service: Some("model-server".into()),
                action: None,
                value: None,
            })
        );
        assert_eq!(
            parse(&inv("/rollback model-server undo 2")),
            Ok(Command::RunStage {
                stage: Stage::Rollback,
                service: Some("model-server".into()),
                action: Some("undo".into()),
                value: Some("2".into()),
            })
        );
        assert_eq!(
            parse(&inv("/approve 7f3a9c1e v2 fills the KV cache")),
            Ok(Command::Decide {
                request: "7f3a9c1e".into(),
                decision: crate::store::Decision::Approve,
                reason: Some("v2 fills the KV cache".into()),
            })
        );
        assert!(parse(&inv("/deny")).is_err());
        assert_eq!(
            parse(&inv("/help /triage")),
            Ok(Command::Help {
                topic: Some("triage".into())
            })
        );
    }

    #[test]
    fn bad_input_says_what_exists() {
        assert_eq!(
            parse(&inv("/restart-everything")),
            Err(UsageError::UnknownCommand("restart-everything".into()))
        );
        let err = parse(&inv("/triage a b")).unwrap_err();
        assert!(
            err.to_string().contains("usage: `/triage [service]`"),
            "{err}"
        );
        let err = parse(&inv("/incident explode")).unwrap_err();
        assert!(err.to_string().contains("declare, status"), "{err}");
    }
}
