//! Slash command definitions, registered with one bulk overwrite, and the way back: an
//! application command's name and options as the command text the core parses.
//!
//! `/incident declare severity:sev2 title:KV cache full` becomes
//! `/incident declare sev2 "KV cache full"`: option values in declared order, a value with
//! spaces quoted, so it stays one argument as it would typed on the console.

use serde_json::{Value, json};
use serenity::model::application::{CommandData, CommandDataOption, CommandDataOptionValue};

/// One option (all are strings: free text, a service or a choice) of a command or subcommand.
struct Opt {
    name: &'static str,
    description: &'static str,
    required: bool,
    /// Complete with the services that have runbooks.
    services: bool,
    choices: &'static [&'static str],
    /// A Discord user picker (option type 6) rather than text: the value is the user's id,
    /// written as a mention so the incident's roles name people by id.
    user: bool,
}

const fn opt(name: &'static str, description: &'static str, required: bool) -> Opt {
    Opt {
        name,
        description,
        required,
        services: false,
        choices: &[],
        user: false,
    }
}

/// The incident a subcommand acts on, by name; the channel's incident when left out.
const fn incident() -> Opt {
    opt(
        "incident",
        "The incident, e.g. INC-7 (default: this channel's)",
        false,
    )
}

const fn service() -> Opt {
    Opt {
        services: true,
        ..opt("service", "The service (runbook) to run it on", false)
    }
}

const fn choice(
    name: &'static str,
    description: &'static str,
    choices: &'static [&'static str],
) -> Opt {
    Opt {
        choices,
        ..opt(name, description, true)
    }
}

/// A command, or an `/incident` subcommand.
struct Def {
    name: &'static str,
    description: &'static str,
    options: &'static [Opt],
}

const SEVERITIES: &[&str] = &["sev1", "sev2", "sev3", "sev4"];

/// Every command Firebreak registers. Names follow [`crate::command::COMMANDS`]; `/approve`
/// and `/deny` are the approval commands.
const COMMANDS: &[Def] = &[
    Def {
        name: "triage",
        description: "Run the triage stage: what is broken, with evidence",
        options: &[service()],
    },
    Def {
        name: "mitigate",
        description: "Show the mitigations with their plans; name one to request it",
        options: &[
            service(),
            opt(
                "action",
                "The action to request (leave out to see them)",
                false,
            ),
            opt("value", "The action's value, if it takes one", false),
        ],
    },
    Def {
        name: "rollback",
        description: "Show what a rollback would change; name an action to request it",
        options: &[
            service(),
            opt(
                "action",
                "The action to request (leave out to see them)",
                false,
            ),
            opt("value", "The action's value, if it takes one", false),
        ],
    },
    Def {
        name: "postmortem",
        description: "Gather the post-mortem evidence for the service",
        options: &[service()],
    },
    Def {
        name: "approve",
        description: "Approve a requested action; it runs once its policy is met",
        options: &[
            opt(
                "request",
                "The request id shown on the approval prompt",
                true,
            ),
            opt("reason", "Why, for the audit log", false),
        ],
    },
    Def {
        name: "deny",
        description: "Deny a requested action (or withdraw your own request)",
        options: &[
            opt(
                "request",
                "The request id shown on the approval prompt",
                true,
            ),
            opt("reason", "Why, for the audit log", false),
        ],
    },
    Def {
        name: "help",
        description: "Firebreak's commands, or one command's usage",
        options: &[Opt {
            choices: &[
                "triage",
                "mitigate",
                "rollback",
                "postmortem",
                "incident",
                "approve",
                "deny",
                "help",
            ],
            ..opt("command", "A command to explain", false)
        }],
    },
];

/// `/incident` subcommands.
const INCIDENT: &[Def] = &[
    Def {
        name: "declare",
        description: "Declare an incident",
        options: &[
            choice("severity", "How bad", SEVERITIES),
            opt("title", "What is happening, in a few words", true),
        ],
    },
    Def {
        name: "status",
        description: "Set where the incident stands (the summary shows it)",
        options: &[opt("text", "The status line", true), incident()],
    },
    Def {
        name: "severity",
        description: "Change the incident's severity",
        options: &[
            choice("severity", "The new severity", SEVERITIES),
            incident(),
        ],
    },
    Def {
        name: "role",
        description: "Assign an incident role",
        options: &[
            choice("role", "The role", &["commander", "comms", "ops", "scribe"]),
            Opt {
                user: true,
                ..opt("person", "Who takes it", true)
            },
            incident(),
        ],
    },
    Def {
        name: "note",
        description: "Add a note to the incident timeline",
        options: &[opt("text", "The note", true), incident()],
    },
    Def {
        name: "resolve",
        description: "Resolve the incident",
        options: &[opt("summary", "How it was resolved", false), incident()],
    },
    Def {
        name: "list",
        description: "Open incidents",
        options: &[],
    },
];

// The JSON indexed below is built here from constants: always objects, never outside input.
#[allow(clippy::indexing_slicing)]
fn option_json(option: &Opt) -> Value {
    let mut value = json!({
        "type": if option.user { 6 } else { 3 },
        "name": option.name,
        "description": option.description,
        "required": option.required,
    });
    if option.services {
        value["autocomplete"] = json!(true);
    }
    if !option.choices.is_empty() {
        value["choices"] = option
            .choices
            .iter()
            .map(|c| json!({ "name": c, "value": c }))
            .collect();
    }
    value
}

fn def_json(def: &Def) -> Value {
    json!({
        "name": def.name,
        "description": def.description,
        "options": def.options.iter().map(option_json).collect::<Vec<_>>(),
    })
}

/// The body of the bulk overwrite: every command, typed options, `/incident` subcommands.
#[allow(clippy::indexing_slicing)] // objects built just above, from constants
pub fn definitions() -> Value {
    let mut all: Vec<Value> = COMMANDS
        .iter()
        .map(|def| {
            let mut value = def_json(def);
            value["type"] = json!(1);
            value
        })
        .collect();
    let subcommands: Vec<Value> = INCIDENT
        .iter()
        .map(|def| {
            let mut value = def_json(def);
            value["type"] = json!(1);
            value
        })
        .collect();
    all.insert(
        4,
        json!({
            "type": 1,
            "name": "incident",
            "description": "Incident lifecycle: declare, update and resolve incidents",
            "options": subcommands,
        }),
    );
    Value::Array(all)
}

/// The command text an application command stands for.
pub fn to_text(data: &CommandData) -> String {
    let mut words = vec![format!("/{}", data.name)];
    let mut options: &[CommandDataOption] = &data.options;
    let mut declared: &[Opt] = COMMANDS
        .iter()
        .find(|d| d.name == data.name)
        .map_or(&[], |d| d.options);
    if let Some(CommandDataOption {
        name,
        value: CommandDataOptionValue::SubCommand(inner),
        ..
    }) = options.first()
    {
        words.push(name.clone());
        declared = INCIDENT
            .iter()
            .find(|d| d.name == *name)
            .map_or(&[], |d| d.options);
        options = inner;
    }
    // An incident subcommand's first word is the incident slot: the `incident` option, or
    // `--` ("this channel's"), so a summary or note that starts with `INC-1` stays text.
    // Options are taken by name, never by position.
    if declared.iter().any(|d| d.name == "incident") {
        let named = options
            .iter()
            .find(|o| o.name == "incident")
            .and_then(|o| value_text(&o.value))
            .filter(|v| !v.trim().is_empty());
        words.push(named.map_or_else(|| "--".to_string(), |v| quote(&v)));
    }
    // Declared order: Discord sends options in the order they were filled in. Options
    // Firebreak did not declare are dropped rather than guessed at.
    for def in declared.iter().filter(|d| d.name != "incident") {
        let Some(option) = options.iter().find(|o| o.name == def.name) else {
            continue;
        };
        if let Some(value) = value_text(&option.value) {
            words.push(quote(&value));
        }
    }
    words.join(" ")
}

fn value_text(value: &CommandDataOptionValue) -> Option<String> {
    Some(match value {
        CommandDataOptionValue::String(s) => s.clone(),
        CommandDataOptionValue::Autocomplete { value, .. } => value.clone(),
        CommandDataOptionValue::Integer(i) => i.to_string(),
        CommandDataOptionValue::Number(n) => n.to_string(),
        CommandDataOptionValue::Boolean(b) => b.to_string(),
        CommandDataOptionValue::User(id) => format!("<@{id}>"),
        CommandDataOptionValue::Channel(id) => id.to_string(),
        CommandDataOptionValue::Role(id) => id.to_string(),
        _ => return None,
    })
}

/// One word for the core's parser: quoted when it has spaces or quotes, with the quote
/// character it does not contain (a value with both loses its double quotes to `”`).
pub fn quote(value: &str) -> String {
    let value = value.trim();
    let needs = value.is_empty()
        || value
            .chars()
            .any(|c| c.is_whitespace() || c == '"' || c == '\'');
    if !needs {
        return value.to_string();
    }
    if !value.contains('"') {
        format!("\"{value}\"")
    } else if !value.contains('\'') {
        format!("'{value}'")
    } else {
        format!("\"{}\"", value.replace('"', "”"))
    }
}

/// Autocomplete choices (response type 8): services whose name contains what was typed.
pub fn autocomplete(data: &CommandData, services: &[&str]) -> Value {
    let typed = data
        .autocomplete()
        .map(|option| option.value.to_lowercase())
        .unwrap_or_default();
    let choices: Vec<Value> = services
        .iter()
        .filter(|s| s.to_lowercase().contains(&typed))
        .take(25)
        .map(|s| json!({ "name": s, "value": s }))
        .collect();
    json!({ "type": 8, "data": { "choices": choices } })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_keeps_values_one_word() {
        assert_eq!(quote("model-server"), "model-server");
        assert_eq!(quote("KV cache full"), "\"KV cache full\"");
        assert_eq!(quote("it's down"), "\"it's down\"");
        assert_eq!(quote("say \"hi\""), "'say \"hi\"'");
    }

    #[test]
    fn every_core_command_is_registered() {
        let defs = definitions();
        let names: Vec<&str> = defs
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|d| d["name"].as_str())
            .collect();
        for command in crate::command::COMMANDS {
            assert!(names.contains(&command.name), "{} missing", command.name);
        }
    }
}
