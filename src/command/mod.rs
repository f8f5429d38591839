//! The commands Firebreak understands, parsed from an [`Invocation`]: one enum, one table of
//! usage lines (which is also `/help`), one handler file per command.

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
        usage: "/mitigate [service]",
        summary: "Run the mitigate stage of the service's runbook.",
    },
    CommandInfo {
        name: "rollback",
        usage: "/rollback [service]",
        summary: "Run the rollback stage of the service's runbook.",
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
            if inv.args.len() > 1 {
                return Err(bad(format!(
                    "`/{name}` takes one service name, got {}",
                    inv.args.len()
                )));
            }
            Ok(Command::RunStage {
                stage,
                service: inv.args.first().cloned(),
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
                args: inv.args[1..].to_vec(),
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
                service: Some("model-server".into())
            })
        );
        assert_eq!(
            parse(&inv("/rollback")),
            Ok(Command::RunStage {
                stage: Stage::Rollback,
                service: None
            })
        );
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
