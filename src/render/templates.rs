//! Loading, checking and rendering the handlebars templates in `templates/`.
//!
//! Templates are read at start from a directory (so wording changes need no rebuild); a copy of
//! the shipped ones is compiled in, for running the binary away from a checkout.

use std::path::{Path, PathBuf};

use handlebars::Handlebars;
use serde::Serialize;

use super::{Button, Reply, Severity, markup};

/// Templates every installation must provide: one per runbook stage, plus help and errors.
pub const REQUIRED: &[&str] = &[
    "triage",
    "mitigate",
    "rollback",
    "postmortem",
    "help",
    "error",
    "approval",
];

/// The shipped templates, for when no template directory is at hand.
const EMBEDDED: &[(&str, &str)] = &[
    ("triage.hbs", include_str!("../../templates/triage.hbs")),
    ("mitigate.hbs", include_str!("../../templates/mitigate.hbs")),
    ("rollback.hbs", include_str!("../../templates/rollback.hbs")),
    (
        "postmortem.hbs",
        include_str!("../../templates/postmortem.hbs"),
    ),
    ("help.hbs", include_str!("../../templates/help.hbs")),
    ("error.hbs", include_str!("../../templates/error.hbs")),
    ("approval.hbs", include_str!("../../templates/approval.hbs")),
    (
        "actions.hbs",
        include_str!("../../templates/partials/actions.hbs"),
    ),
    (
        "steps.hbs",
        include_str!("../../templates/partials/steps.hbs"),
    ),
];

/// Why templates could not be loaded or rendered.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The directory or a file could not be read.
    #[error("cannot read templates from {path}: {source}")]
    Read {
        /// What was being read.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A template does not compile.
    #[error("{origin}:{line}:{column}: {reason}")]
    Syntax {
        /// File the template came from.
        origin: String,
        /// 1-based line, 0 when unknown.
        line: usize,
        /// 1-based column, 0 when unknown.
        column: usize,
        /// What handlebars expected.
        reason: String,
    },
    /// A template every installation needs is absent.
    #[error(
        "template `{name}.hbs` is missing from {dir}; every stage needs one (required: {required})"
    )]
    Missing {
        /// The missing template's name.
        name: String,
        /// Where it was looked for.
        dir: String,
        /// The full list, to copy from.
        required: String,
    },
    /// Rendering failed, e.g. a misspelled variable under strict mode.
    #[error("template `{name}` failed to render{at}: {reason}")]
    Render {
        /// Template name.
        name: String,
        /// ` at line N`, when known.
        at: String,
        /// What went wrong.
        reason: String,
    },
}

/// The compiled templates.
pub struct Templates {
    registry: Handlebars<'static>,
    origin: String,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl Templates {
    /// The templates compiled into the binary.
    pub fn embedded() -> Result<Templates, TemplateError> {
        let sources = EMBEDDED
            .iter()
            .map(|(name, text)| (name.to_string(), text.to_string()));
        Templates::from_sources(sources, "built-in templates")
    }

    /// Every `*.hbs` in `dir`, plus partials in `dir/partials/` (named by file stem).
    pub fn load_dir(dir: &Path) -> Result<Templates, TemplateError> {
        let read_err = |path: &Path, source| TemplateError::Read {
            path: path.to_path_buf(),
            source,
        };
        let mut sources = Vec::new();
        for sub in ["", "partials"] {
            let folder = dir.join(sub);
            if sub == "partials" && !folder.is_dir() {
                continue;
            }
            let mut entries: Vec<PathBuf> = std::fs::read_dir(&folder)
                .map_err(|e| read_err(&folder, e))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|ext| ext == "hbs"))
                .collect();
            entries.sort();
            for path in entries {
                let text = std::fs::read_to_string(&path).map_err(|e| read_err(&path, e))?;
                let file = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                // Partials are referred to by bare name: `{{> steps}}`.
                sources.push((file, text));
            }
        }
        Templates::from_sources(sources, &dir.display().to_string())
    }

    fn from_sources(
        sources: impl IntoIterator<Item = (String, String)>,
        origin: &str,
    ) -> Result<Templates, TemplateError> {
        let mut registry = Handlebars::new();
        registry.set_strict_mode(true);
        // Replies are chat markup, not HTML.
        registry.register_escape_fn(handlebars::no_escape);
        registry.register_helper("pad", Box::new(pad_helper));
        for (file, text) in sources {
            let name = file.trim_end_matches(".hbs").to_string();
            registry
                .register_template_string(&name, &text)
                .map_err(|e| {
                    let (line, column) = e.pos().unwrap_or((0, 0));
                    TemplateError::Syntax {
                        origin: format!("{origin}/{file}"),
                        line,
                        column,
                        reason: e.reason().to_string(),
                    }
                })?;
        }
        for name in REQUIRED {
            if !registry.has_template(name) {
                return Err(TemplateError::Missing {
                    name: name.to_string(),
                    dir: origin.to_string(),
                    required: REQUIRED.join(", "),
                });
            }
        }
        Ok(Templates {
            registry,
            origin: origin.to_string(),
        })
    }

    /// Where these templates came from, for logs.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Render template `name` with `data` into raw markup.
    pub fn render_text(&self, name: &str, data: &impl Serialize) -> Result<String, TemplateError> {
        self.registry
            .render(name, data)
            .map_err(|e| TemplateError::Render {
                name: name.to_string(),
                at: e
                    .line_no
                    .map(|l| format!(" at line {l}"))
                    .unwrap_or_default(),
                reason: e.reason().to_string(),
            })
    }

    /// Render template `name` into a [`Reply`].
    pub fn render(
        &self,
        name: &str,
        data: &impl Serialize,
        severity: Severity,
        buttons: Vec<Button>,
    ) -> Result<Reply, TemplateError> {
        let text = self.render_text(name, data)?;
        let (title, blocks) = markup::parse(&text);
        Ok(Reply {
            title: title.unwrap_or_default(),
            severity,
            blocks,
            buttons,
            in_progress: false,
            delivery: Default::default(),
        })
    }
}

/// `{{pad value width}}`: left-align a value in a fixed-width column for code blocks.
fn pad_helper(
    h: &handlebars::Helper<'_>,
    _: &Handlebars<'_>,
    _: &handlebars::Context,
    _: &mut handlebars::RenderContext<'_, '_>,
    out: &mut dyn handlebars::Output,
) -> handlebars::HelperResult {
    let value = h.param(0).map(|p| p.value().clone()).unwrap_or_default();
    let text = match value {
        serde_json::Value::String(s) => s,
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    };
    let width = h.param(1).and_then(|p| p.value().as_u64()).unwrap_or(0) as usize;
    out.write(&format!("{text:<width$}"))?;
    Ok(())
}
