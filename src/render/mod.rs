//! The one reply model every adapter renders, and the handlebars templates that word it.
//!
//! Stage handlers fill a template with report data; the template's output is a small markup
//! ([`markup`]) that becomes a platform-neutral [`Reply`]. Slack, Discord and the console each
//! turn a `Reply` into their own format and never see a template.

pub mod markup;
pub mod templates;
pub mod text;

use serde::Serialize;

pub use templates::{TemplateError, Templates};

/// How bad things look: drives colours, emoji and ordering in every adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Nothing wrong found.
    #[default]
    Ok,
    /// Informational, not a finding.
    Info,
    /// Degraded or at risk.
    Warning,
    /// Broken now.
    Critical,
}

impl Severity {
    /// Lower-case name, as used in templates and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Ok => "ok",
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// One piece of a reply, in display order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    /// A section heading.
    Heading {
        /// Heading text.
        text: String,
    },
    /// A paragraph of lightly formatted text (`**bold**`, `` `code` ``).
    Text {
        /// Paragraph text; may span lines.
        text: String,
    },
    /// Key/value pairs shown side by side where the platform can.
    Fields {
        /// `(key, value)` pairs in order.
        fields: Vec<(String, String)>,
    },
    /// Pre-formatted text shown in a monospace block.
    Code {
        /// The verbatim text.
        text: String,
    },
    /// A small, de-emphasised line (timings, hints).
    Context {
        /// Context text.
        text: String,
    },
}

/// Visual weight of a button.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ButtonStyle {
    /// Plain.
    #[default]
    Default,
    /// The suggested next step.
    Primary,
    /// Changes the cluster or cannot be undone.
    Danger,
}

/// A button: pressing it is the same as its invoker typing `command`.
///
/// Adapters carry `command` as the button's opaque value and hand it back on a click, so a
/// click and a typed command take one path through the core.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Button {
    /// Short label.
    pub label: String,
    /// The command a click runs, e.g. `/mitigate model-server` or `/approve 7f3a`.
    pub command: String,
    /// Visual weight.
    pub style: ButtonStyle,
    /// A confirmation question shown before a destructive click, if any.
    pub confirm: Option<String>,
}

/// Where a reply goes, relative to the message that caused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// A new message in the channel.
    #[default]
    NewMessage,
    /// Replace the message whose button was clicked (an approval prompt becomes its outcome),
    /// so the channel ends with the final state rather than stale buttons. Typed, not clicked,
    /// it is posted as a new message.
    ReplaceOrigin,
    /// Only the invoking user sees it (a refused click, a usage hint), where the platform can.
    Ephemeral,
}

/// Something a reply asks of the platform besides showing itself. Adapters do what their
/// platform allows and ignore the rest (the console prints what it can).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum Effect {
    /// Open a dedicated channel (Slack) or thread (Discord) for an incident, invite people,
    /// post the incident summary there, and bind it with [`crate::Bot::bind_channel`].
    OpenChannel {
        /// The incident.
        incident: String,
        /// A channel name: lower-case, dashes, at most 80 characters (`inc-7-kv-cache-full`).
        name: String,
        /// The channel topic.
        topic: String,
        /// User ids to invite.
        invite: Vec<String>,
    },
    /// Keep the incident's summary current: post it once per platform, then update that
    /// message in place (remembered with [`crate::Bot::remember_message`], role `summary`).
    Summary {
        /// The incident.
        incident: String,
        /// The summary.
        summary: Box<Reply>,
    },
    /// Upload a file into the channel (Slack file upload, Discord attachment).
    Attach {
        /// File name, e.g. `INC-7-postmortem.md`.
        filename: String,
        /// Its text.
        content: String,
    },
}

/// The reply model: what the core says, before any platform formats it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Reply {
    /// One-line title.
    pub title: String,
    /// Overall severity.
    pub severity: Severity,
    /// Body, in order.
    pub blocks: Vec<Block>,
    /// Action buttons, in order.
    pub buttons: Vec<Button>,
    /// Whether the reply is a final answer or a progress snapshot that will be replaced.
    pub in_progress: bool,
    /// Where it goes.
    pub delivery: Delivery,
    /// What else to do on the platform.
    pub effects: Vec<Effect>,
}
