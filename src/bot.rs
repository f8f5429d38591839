//! The chat-agnostic core: takes an [`Invocation`], routes it to its command's handler and
//! returns one [`Reply`]. Adapters call [`Bot::handle`]; nothing here knows the platform.

use std::time::Duration;

use tracing::Instrument;

use crate::approval::Groups;
use crate::chat::Invocation;
use crate::cluster::Cluster;
use crate::command::{self, COMMANDS, Command, UsageError};
use crate::render::{Block, Reply, Severity, TemplateError, Templates};
use crate::runbook::Runbooks;
use crate::store::{Actor, AuditKind, Record, Store};

/// How long an approved action's verification waits for the change to settle, by default.
pub const DEFAULT_VERIFY_TIMEOUT: Duration = Duration::from_secs(120);

/// Everything a command handler needs.
pub struct Bot {
    pub(crate) runbooks: Runbooks,
    pub(crate) templates: Templates,
    pub(crate) cluster: Cluster,
    pub(crate) store: Store,
    pub(crate) groups: Groups,
    pub(crate) verify_timeout: Duration,
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
    /// A bot over these runbooks and templates, querying `cluster`, keeping its state in
    /// `store`.
    pub fn new(runbooks: Runbooks, templates: Templates, cluster: Cluster, store: Store) -> Bot {
        Bot {
            runbooks,
            templates,
            cluster,
            store,
            groups: Groups::new(),
            verify_timeout: DEFAULT_VERIFY_TIMEOUT,
        }
    }

    /// Approver groups (`group:NAME` in policies), from the config file.
    pub fn with_groups(mut self, groups: Groups) -> Bot {
        self.groups = groups;
        self
    }

    /// How long verification waits for an applied action to settle.
    pub fn with_verify_timeout(mut self, timeout: Duration) -> Bot {
        self.verify_timeout = timeout;
        self
    }

    /// The state store.
    pub fn store(&self) -> &Store {
        &self.store
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
            self.audit_quietly(Record {
                kind: AuditKind::Command,
                actor: &Actor::of(inv),
                incident: inv.incident.as_deref(),
                request: None,
                detail: std::iter::once(format!("/{}", inv.command))
                    .chain(inv.args.iter().cloned())
                    .collect::<Vec<_>>()
                    .join(" "),
            })
            .await;
            let rendered = match command::parse(inv) {
                Ok(Command::Help { topic }) => command::help::handle(self, topic.as_deref()),
                Ok(Command::RunStage {
                    stage,
                    service,
                    action,
                    value,
                }) => {
                    command::stage::handle(
                        self,
                        inv,
                        stage,
                        service.as_deref(),
                        action.as_deref(),
                        value.as_deref(),
                        on_progress,
                    )
                    .await
                }
                Ok(Command::Decide {
                    request,
                    decision,
                    reason,
                }) => {
                    command::decide::handle(self, inv, &request, decision, reason, on_progress)
                        .await
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
            Ok(Command::RunStage {
                stage,
                service,
                action,
                ..
            }) => {
                let service = service
                    .as_deref()
                    .or_else(|| self.runbooks.only().map(|r| r.service.as_str()))
                    .unwrap_or("?");
                match action {
                    Some(action) => format!("Planning {action} for {service}…"),
                    None => format!("Running {stage} on {service}…"),
                }
            }
            Ok(Command::Decide {
                request, decision, ..
            }) => match decision {
                crate::store::Decision::Approve => format!("Recording your approval of {request}…"),
                crate::store::Decision::Deny => format!("Recording your denial of {request}…"),
            },
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
