//! A parser for the Prometheus text exposition format (version 0.0.4), as vLLM serves it.
//!
//! Why not a crate: `prometheus-parse` 0.2 matches metric names with `\w+`, so it rejects every
//! `vllm:` name (a colon is legal in metric names and vLLM uses it everywhere), and it splits
//! label sets on commas without honouring quotes; `openmetrics-parser` is LGPL-3.0 (this crate
//! is Apache-2.0) and brings pest's proc-macro into the build. What we need is small: samples
//! with names, labels and values. `# HELP`/`# TYPE` lines are skipped, because the vLLM names we
//! read are known and a histogram is recognised by its `_bucket`/`le` samples.
//!
//! A line that does not parse is collected as a [`BadLine`] instead of failing the whole scrape:
//! one odd exporter line should not hide the KV cache gauge from the on-call engineer.
// Outside text flows through here: no byte slicing or indexing that can panic on it.
#![cfg_attr(not(test), warn(clippy::string_slice, clippy::indexing_slicing))]

/// One sample line: `name{label="value",...} value [timestamp]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name, e.g. `vllm:num_requests_waiting` or `vllm:e2e_request_latency_seconds_bucket`.
    pub name: String,
    /// Labels in the order written.
    pub labels: Vec<(String, String)>,
    /// The value; `+Inf`, `-Inf` and `NaN` are allowed.
    pub value: f64,
}

impl Sample {
    /// The value of label `name`, if present.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A line that could not be read, kept so the caller can say so.
#[derive(Debug, Clone, PartialEq)]
pub struct BadLine {
    /// 1-based line number.
    pub line: usize,
    /// What was wrong.
    pub reason: String,
}

/// Everything read from one exposition text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exposition {
    /// Samples, in text order.
    pub samples: Vec<Sample>,
    /// Lines that did not parse.
    pub bad_lines: Vec<BadLine>,
}

impl Exposition {
    /// Samples named exactly `name`.
    pub fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| s.name == name)
    }
}

/// Parse an exposition text. Never fails: unreadable lines land in [`Exposition::bad_lines`].
pub fn parse(text: &str) -> Exposition {
    let mut out = Exposition::default();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match parse_sample(line) {
            Ok(sample) => out.samples.push(sample),
            Err(reason) => out.bad_lines.push(BadLine {
                line: index + 1,
                reason,
            }),
        }
    }
    out
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(line.len());
    let (name, mut rest) = line.split_at_checked(name_end).unwrap_or((line, ""));
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(format!("expected a metric name at `{}`", snippet(line)));
    }
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        let (parsed, after) = parse_labels(after)?;
        labels = parsed;
        rest = after;
    }
    // The value, then an optional integer timestamp we do not need.
    let mut fields = rest.split_ascii_whitespace();
    let value_text = fields
        .next()
        .ok_or_else(|| format!("`{name}` has no value"))?;
    let value = parse_value(value_text)
        .ok_or_else(|| format!("`{name}` value `{value_text}` is not a number"))?;
    if let Some(ts) = fields.next()
        && ts.parse::<i64>().is_err()
    {
        return Err(format!("`{name}` timestamp `{ts}` is not an integer"));
    }
    if fields.next().is_some() {
        return Err(format!("`{name}` has trailing text after the value"));
    }
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// Label pairs in the order written.
type Labels = Vec<(String, String)>;

/// Labels after the `{`; returns them and the text after the closing `}`.
fn parse_labels(mut text: &str) -> Result<(Labels, &str), String> {
    let mut labels = Vec::new();
    loop {
        text = text.trim_start();
        if let Some(after) = text.strip_prefix('}') {
            return Ok((labels, after));
        }
        let key_end = text
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .ok_or("label set is not closed with `}`")?;
        let (key, after_key) = text.split_at_checked(key_end).unwrap_or((text, ""));
        if key.is_empty() {
            return Err(format!("expected a label name at `{}`", snippet(text)));
        }
        text = after_key.trim_start();
        text = text
            .strip_prefix('=')
            .ok_or_else(|| format!("label `{key}` has no `=`"))?
            .trim_start();
        text = text
            .strip_prefix('"')
            .ok_or_else(|| format!("label `{key}` value is not quoted"))?;
        let mut value = String::new();
        let mut chars = text.char_indices();
        let end = loop {
            match chars.next() {
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => return Err(format!("label `{key}` value ends inside an escape")),
                },
                Some((_, c)) => value.push(c),
                None => return Err(format!("label `{key}` value has no closing quote")),
            }
        };
        labels.push((key.to_string(), value));
        // `end` is the closing quote's index: one byte.
        text = text.get(end + 1..).unwrap_or_default().trim_start();
        // A trailing comma before `}` is allowed by the format.
        if let Some(after) = text.strip_prefix(',') {
            text = after;
        } else if !text.starts_with('}') {
            return Err(format!("expected `,` or `}}` after label `{key}`"));
        }
    }
}

fn parse_value(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => text.parse().ok().filter(|v: &f64| v.is_finite()),
    }
}

fn snippet(text: &str) -> String {
    text.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_names_with_colons_labels_and_special_values() {
        let text = r#"
# HELP vllm:num_requests_waiting Number of requests waiting.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="chat"} 31.0
vllm:e2e_request_latency_seconds_bucket{le="+Inf",model_name="chat"} 1200 1732750000000
plain_total 7
with_escapes{path="a\"b\\c\nd",x="1,2}",} NaN
"#;
        let e = parse(text);
        assert!(e.bad_lines.is_empty(), "{:?}", e.bad_lines);
        assert_eq!(e.samples.len(), 4);
        assert_eq!(e.samples[0].name, "vllm:num_requests_waiting");
        assert_eq!(e.samples[0].label("model_name"), Some("chat"));
        assert_eq!(e.samples[0].value, 31.0);
        assert_eq!(e.samples[1].label("le"), Some("+Inf"));
        assert_eq!(e.samples[1].value, 1200.0);
        assert_eq!(e.samples[2].labels, vec![]);
        assert_eq!(e.samples[3].label("path"), Some("a\"b\\c\nd"));
        assert_eq!(e.samples[3].label("x"), Some("1,2}"));
        assert!(e.samples[3].value.is_nan());
    }

    #[test]
    fn bad_lines_are_collected_not_fatal() {
        let text =
            "ok 1\n{broken\nname{a=\"x} 1\nname{a=x} 2\nname 1 2 3\nname abc\n<html>\nok2 +Inf\n";
        let e = parse(text);
        let names: Vec<&str> = e.samples.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["ok", "ok2"]);
        let lines: Vec<usize> = e.bad_lines.iter().map(|b| b.line).collect();
        assert_eq!(lines, [2, 3, 4, 5, 6, 7]);
        assert!(
            e.bad_lines[4].reason.contains("not a number"),
            "{:?}",
            e.bad_lines
        );
    }

    #[test]
    fn empty_and_garbage_text_give_no_samples() {
        assert_eq!(parse(""), Exposition::default());
        let e = parse("\u{0}\u{1}ÿ garbage\n{{{{\n");
        assert!(e.samples.is_empty());
        assert_eq!(e.bad_lines.len(), 2);
    }
}
