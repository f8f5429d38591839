//! Manifest text helpers for scenario loading: document splitting, relative times, quantities
//! and stable uids. Kept apart from `scenario.rs` so that file stays about documents and kinds.

use std::sync::LazyLock;

use jiff::Timestamp;
use regex::Regex;
use serde_json::Value;

/// Split multi-document YAML into (first line number, text) pairs. Separators are lines
/// starting with `---`; a block scalar's content is indented, so it cannot contain one.
pub(crate) fn split_documents(text: &str) -> Vec<(usize, String)> {
    let mut docs = Vec::new();
    let mut start = 1;
    let mut current = String::new();
    for (i, line) in text.lines().enumerate() {
        let is_separator = line.starts_with("---")
            && line[3..]
                .chars()
                .next()
                .is_none_or(|c| c == ' ' || c == '\t' || c == '#');
        if is_separator {
            docs.push((start, std::mem::take(&mut current)));
            start = i + 2;
            // Allow `--- {inline: doc}` by keeping what follows the marker.
            let rest = line[3..].trim();
            if !rest.is_empty() && !rest.starts_with('#') {
                current.push_str(rest);
                current.push('\n');
                start = i + 1;
            }
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    docs.push((start, current));
    docs
}

/// The 0-based line offset of the top-level `kind:` within a document, if any.
pub(crate) fn kind_line(doc: &str) -> Option<usize> {
    doc.lines().position(|l| l.starts_with("kind:"))
}

/// serde_norway appends "at line N column M" relative to the document; we report our own line.
pub(crate) fn strip_location(message: &str) -> String {
    static LOC: LazyLock<Option<Regex>> =
        LazyLock::new(|| Regex::new(r" at line \d+ column \d+").ok());
    match LOC.as_ref() {
        Some(re) => re.replace_all(message, "").into_owned(),
        None => message.to_string(),
    }
}

/// Replace every string exactly `now` or `now-<N><s|m|h|d>` with an RFC 3339 timestamp.
pub(crate) fn substitute_times(value: &mut Value, now: Timestamp) -> Result<(), String> {
    match value {
        Value::String(s) => {
            if let Some(ts) = relative_time(s, now)? {
                *s = rfc3339(ts);
            }
        }
        Value::Array(items) => {
            for item in items {
                substitute_times(item, now)?;
            }
        }
        Value::Object(map) => {
            for item in map.values_mut() {
                substitute_times(item, now)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn relative_time(s: &str, now: Timestamp) -> Result<Option<Timestamp>, String> {
    if s == "now" {
        return Ok(Some(now));
    }
    let Some(rest) = s.strip_prefix("now-") else {
        return Ok(None);
    };
    let Some(unit) = rest.chars().last() else {
        return Ok(None);
    };
    let digits = &rest[..rest.len() - unit.len_utf8()];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let scale: i64 = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86400,
        _ => return Ok(None),
    };
    let out_of_range = || format!("relative time `{s}` is too far in the past");
    let n: i64 = digits.parse().map_err(|_| out_of_range())?;
    let secs = n.checked_mul(scale).ok_or_else(out_of_range)?;
    let at = now.as_second().checked_sub(secs).ok_or_else(out_of_range)?;
    Timestamp::from_second(at)
        .map(Some)
        .map_err(|_| out_of_range())
}

/// Format as the API server does: whole seconds, `Z`.
pub(crate) fn rfc3339(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// YAML authors write `nvidia.com/gpu: 1`; Kubernetes quantities are strings in JSON.
pub(crate) fn normalize_quantities(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                let quantity_map = matches!(
                    key.as_str(),
                    "limits" | "requests" | "allocatable" | "capacity" | "hard" | "used"
                );
                if quantity_map && let Value::Object(q) = item {
                    for v in q.values_mut() {
                        if let Value::Number(n) = v {
                            *v = Value::String(n.to_string());
                        }
                    }
                }
                normalize_quantities(item);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalize_quantities),
        _ => {}
    }
}

/// FNV-1a: a stable hash for made-up names and uids (std's hasher is seeded per process).
pub(crate) fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A stable UUID-shaped uid, so the same scenario gives the same uids run to run.
pub(crate) fn fake_uid(kind: &str, ns: &str, name: &str) -> String {
    let a = fnv(&format!("{kind}/{ns}/{name}"));
    let b = fnv(&format!("{name}/{ns}/{kind}/uid"));
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        b >> 52,
        b & 0xffff_ffff_ffff
    )
}
