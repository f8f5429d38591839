//! `/help [command]`: the commands and the services that have runbooks.

use serde::Serialize;

use super::{COMMANDS, CommandInfo};
use crate::bot::Bot;
use crate::render::{Reply, Severity, TemplateError};

#[derive(Serialize)]
struct ServiceView<'a> {
    service: &'a str,
    description: &'a str,
    namespace: &'a str,
    stages: String,
}

#[derive(Serialize)]
struct HelpView<'a> {
    commands: Vec<&'a CommandInfo>,
    services: Vec<ServiceView<'a>>,
}

/// Answer `/help`.
pub fn handle(bot: &Bot, topic: Option<&str>) -> Result<Reply, TemplateError> {
    let commands: Vec<&CommandInfo> = match topic {
        None => COMMANDS.iter().collect(),
        Some(name) => match COMMANDS.iter().find(|c| c.name == name) {
            Some(info) => vec![info],
            None => return bot.usage_error(&super::UsageError::UnknownCommand(name.to_string())),
        },
    };
    let services = bot
        .runbooks
        .iter()
        .map(|r| ServiceView {
            service: &r.service,
            description: &r.description,
            namespace: &r.namespace,
            stages: r
                .stages
                .keys()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
        .collect();
    bot.templates.render(
        "help",
        &HelpView { commands, services },
        Severity::Info,
        Vec::new(),
    )
}
