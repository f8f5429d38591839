//! `/incident ...`: the incident lifecycle. Incidents need durable state, which this build
//! does not have yet, so every subcommand answers that plainly instead of pretending.

use crate::bot::Bot;
use crate::render::{Reply, TemplateError};

/// Answer `/incident <sub>`.
pub fn handle(bot: &Bot, sub: &str, _args: &[String]) -> Result<Reply, TemplateError> {
    bot.error_reply(
        format!("`/incident {sub}` is not available yet: this build does not track incidents"),
        Some(
            "Run the stages directly meanwhile: /triage, /mitigate, /rollback, /postmortem."
                .to_string(),
        ),
    )
}
