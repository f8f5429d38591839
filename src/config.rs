//! Settings that are not runbooks: secrets from the environment, and the `firebreak.yaml`
//! config file (approver groups, where state lives).
//!
//! Every secret is read as `NAME` or, for mounted Kubernetes secrets, `NAME_FILE` (a path whose
//! contents, trimmed, are the value). A [`Secret`] never prints its value, so it cannot reach a
//! log by accident.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Why the settings cannot be used. Every message names the variable or file to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `NAME` and `NAME_FILE` are both set.
    #[error("both {name} and {name}_FILE are set; set only one")]
    Ambiguous {
        /// The variable.
        name: String,
    },
    /// `NAME_FILE` names a file that cannot be read.
    #[error("{name}_FILE={path}: cannot read it: {source}")]
    SecretFile {
        /// The variable.
        name: String,
        /// The path it holds.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The variable is set but empty (or the file is).
    #[error("{name} is set but empty")]
    Empty {
        /// The variable.
        name: String,
    },
    /// A group of settings is partly present.
    #[error("{present} is set but {missing} is not; {purpose} needs both")]
    Incomplete {
        /// The variable that is set.
        present: String,
        /// The one that is missing.
        missing: String,
        /// What they enable.
        purpose: String,
    },
    /// A value has the wrong shape.
    #[error("{name}: {problem}")]
    Invalid {
        /// The variable.
        name: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The config file cannot be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The config file is not valid.
    #[error("{path}: {problem}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Where and what (`line:column: ...`).
        problem: String,
    },
}

/// A secret value. `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself, for the one call that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `given` equals the secret, in time that does not depend on where they differ
    /// (a bearer token check must not leak the token a byte at a time).
    pub fn matches(&self, given: &[u8]) -> bool {
        let expected = self.0.as_bytes();
        expected.len() == given.len()
            && expected
                .iter()
                .zip(given)
                .fold(0u8, |diff, (a, b)| diff | (a ^ b))
                == 0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Where settings are read from: the process environment, or a map in tests.
pub trait Env {
    /// The variable's value, if set.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Env for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// A plain (non-secret) setting; empty counts as unset.
pub fn setting(env: &dyn Env, name: &str) -> Option<String> {
    env.var(name).filter(|v| !v.trim().is_empty())
}

/// A secret from `name` or `name_FILE`; `None` when neither is set.
pub fn secret(env: &dyn Env, name: &str) -> Result<Option<Secret>, ConfigError> {
    let file_var = format!("{name}_FILE");
    let value = match (env.var(name), env.var(&file_var)) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::Ambiguous {
                name: name.to_string(),
            });
        }
        (Some(value), None) => value,
        (None, Some(path)) => {
            std::fs::read_to_string(&path).map_err(|source| ConfigError::SecretFile {
                name: name.to_string(),
                path,
                source,
            })?
        }
        (None, None) => return Ok(None),
    };
    let value = value.trim();
    if value.is_empty() {
        return Err(ConfigError::Empty {
            name: name.to_string(),
        });
    }
    Ok(Some(Secret::new(value)))
}

/// The config file, `firebreak.yaml`. Every field is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Named groups of chat user ids, for approval policies (`group:oncall`).
    #[serde(default)]
    pub groups: BTreeMap<String, Vec<String>>,
    /// The SQLite state file; created with its directory on first start.
    #[serde(default)]
    pub state: Option<PathBuf>,
    /// Where post-mortem drafts are written, besides being posted in the channel.
    #[serde(default)]
    pub postmortems: Option<PathBuf>,
    /// Alertmanager's webhook: where alert-opened incidents are announced.
    #[serde(default)]
    pub alerts: AlertsConfig,
    /// Which Slack workspaces and Discord servers Firebreak serves.
    #[serde(default)]
    pub access: crate::chat::access::AccessConfig,
}

/// Where the Alertmanager webhook posts, per platform (a channel id each).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// Slack channel id, e.g. `C024BE91L`.
    #[serde(default)]
    pub slack_channel: Option<String>,
    /// Discord channel id (a snowflake).
    #[serde(default)]
    pub discord_channel: Option<String>,
}

impl Config {
    /// Read a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_yaml(&text).map_err(|problem| ConfigError::Parse {
            path: path.to_path_buf(),
            problem,
        })
    }

    /// Parse config YAML; the error carries `line:column` where known.
    pub fn from_yaml(text: &str) -> Result<Config, String> {
        serde_norway::from_str(text).map_err(|error| match error.location() {
            Some(at) => format!("{}:{}: {error}", at.line(), at.column()),
            None => error.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn secrets_come_from_the_variable_or_a_file_and_never_print() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "xoxb-from-file\n").unwrap();
        let from_file = env(&[("TOKEN_FILE", path.to_str().unwrap())]);
        let secret = secret(&from_file, "TOKEN").unwrap().unwrap();
        assert_eq!(secret.expose(), "xoxb-from-file");
        assert_eq!(format!("{secret} {secret:?}"), "*** Secret(***)");
        assert!(secret.matches(b"xoxb-from-file"));
        assert!(!secret.matches(b"xoxb-from-filE"));
        assert!(!secret.matches(b"xoxb"));

        let direct = env(&[("TOKEN", "xoxb-direct")]);
        assert_eq!(
            super::secret(&direct, "TOKEN").unwrap().unwrap().expose(),
            "xoxb-direct"
        );
        assert!(super::secret(&env(&[]), "TOKEN").unwrap().is_none());
    }

    #[test]
    fn secret_errors_name_the_variable() {
        let both = env(&[("TOKEN", "a"), ("TOKEN_FILE", "/x")]);
        assert!(
            secret(&both, "TOKEN")
                .unwrap_err()
                .to_string()
                .contains("TOKEN and TOKEN_FILE")
        );
        let missing = env(&[("TOKEN_FILE", "/nonexistent/token")]);
        assert!(
            secret(&missing, "TOKEN")
                .unwrap_err()
                .to_string()
                .starts_with("TOKEN_FILE=/nonexistent/token")
        );
        let empty = env(&[("TOKEN", "  ")]);
        assert_eq!(
            secret(&empty, "TOKEN").unwrap_err().to_string(),
            "TOKEN is set but empty"
        );
    }

    #[test]
    fn config_file_parses_groups_and_refuses_typos() {
        let config =
            Config::from_yaml("groups:\n  oncall: [U1, U2]\nstate: /var/lib/firebreak/state.db\n")
                .unwrap();
        assert_eq!(config.groups["oncall"], vec!["U1", "U2"]);
        let typo = Config::from_yaml("grops: {}\n").unwrap_err();
        assert!(typo.starts_with("1:1:"), "{typo}");
    }
}
