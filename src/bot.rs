//! The chat-agnostic core: takes an [`Invocation`], routes it to its command's handler and
//! returns one [`Reply`]. Adapters call [`Bot::handle`]; nothing here knows the platform.

use tracing::Instrument;

use crate::chat::Invocation;
use crate::cluster::Cluster;
use crate::command::{self, COMMANDS, Command, UsageError};
use crate::render::{Block, Reply, Severity, TemplateError, Templates};
use crate::runbook::Runbooks;

/// Everything a command handler needs.
pub struct Bot {
    pub(crate) runbooks: Runbooks,
    pub(crate) templates: Templates,
    pub(crate) cluster: Cluster,
}

/// Data the `error` template renders: what went wrong, what to do, what exists.
#[derive(Debug, serde::Serialize)]
pub(crate) struct ErrorView<'a> {
    pub message: String,
    pub hint: Option<String>,
    pub commands: &'a [command::CommandInfo],
    pub services: Vec<&'a str>,
}

impl Bot {
    /// A bot over these runbooks and templates, querying `cluster`.
    pub fn new(runbooks: Runbooks, templates: Templates, cluster: Cluster) -> Bot {
        Bot {
            runbooks,
            templates,
            cluster,
        }
    }

    /// The loaded runbooks.
    pub fn runbooks(&self) -> &Runbooks {
        &self.runbooks
    }

    /// Answer one invocation. `on_progress` receives snapshots while a long stage runs, so an
    /// adapter can update one message in place; the returned reply is the final one.
    pub async fn handle(
        &self,
        inv: &Invocation,
        on_progress: &(dyn Fn(&Reply) + Send + Sync),
    ) -> Reply {
        let span = tracing::info_span!(
            "command",
            command = %inv.command,
            incident = inv.incident.as_deref().unwrap_or("-"),
            user = %inv.user.id,
            channel = %inv.channel.id,
        );
        async {
            tracing::info!(args = ?inv.args, "command received");
            let rendered = match command::parse(inv) {
                Ok(Command::Help { topic }) => command::help::handle(self, topic.as_deref()),
                Ok(Command::RunStage { stage, service }) => {
                    command::stage::handle(self, stage, service.as_deref(), on_progress).await
                }
                Ok(Command::Incident { sub, args }) => command::incident::handle(self, &sub, &args),
                Err(usage) => self.usage_error(&usage),
            };
            rendered.unwrap_or_else(|error| internal_error(&error))
        }
        .instrument(span)
        .await
    }

    /// What an adapter says at once, before the reply is ready, to meet a platform's
    /// acknowledgement deadline (Slack: 3 s; Discord: 3 s): "Running triage on model-server…".
    pub fn acknowledgement(&self, inv: &Invocation) -> String {
        match command::parse(inv) {
            Ok(Command::RunStage { stage, service }) => {
                let service = service
                    .as_deref()
                    .or_else(|| self.runbooks.only().map(|r| r.service.as_str()))
                    .unwrap_or("?");
                format!("Running {stage} on {service}…")
            }
            _ => format!("Working on /{}…", inv.command),
        }
    }

    /// The reply to a command that was not understood.
    pub(crate) fn usage_error(&self, usage: &UsageError) -> Result<Reply, TemplateError> {
        let hint = match usage {
            UsageError::UnknownCommand(_) => {
                Some("Commands Firebreak knows are listed below.".to_string())
            }
            UsageError::BadArguments { .. } => None,
        };
        self.error_reply(usage.to_string(), hint)
    }

    /// An error the user can act on, rendered by the `error` template.
    pub(crate) fn error_reply(
        &self,
        message: String,
        hint: Option<String>,
    ) -> Result<Reply, TemplateError> {
        let view = ErrorView {
            message,
            hint,
            commands: COMMANDS,
            services: self.runbooks.services(),
        };
        self.templates
            .render("error", &view, Severity::Warning, Vec::new())
    }
}

/// Last resort when a template itself fails: the chat gets a reference, the log the detail.
fn internal_error(error: &TemplateError) -> Reply {
    let reference = format!(
        "{:08x}",
        jiff::Timestamp::now().as_nanosecond() as u64 as u32
    );
    tracing::error!(reference = %reference, error = %error, "rendering a reply failed");
    Reply {
        title: "Internal error".to_string(),
        severity: Severity::Critical,
        blocks: vec![Block::Text {
            text: format!(
                "Firebreak could not render its reply (ref {reference}); the log has the detail. Run `firebreak check templates`."
            ),
        }],
        buttons: Vec::new(),
        in_progress: false,
        delivery: Default::default(),
    }
}
