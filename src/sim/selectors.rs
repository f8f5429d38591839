//! Label and field selectors, parsed and matched with the real API server's semantics.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq)]
enum LabelReq {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
    Gt(String, i64),
    Lt(String, i64),
}

/// A parsed `labelSelector`; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct LabelSelector(Vec<LabelReq>);

/// A parsed `fieldSelector`: (field path, wanted value, equal?) triples, all of which must hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct FieldSelector(Vec<(String, String, bool)>);

static SET_REQ: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^(\S+?)\s+(in|notin)\s*\((.*)\)$").ok());
static NAME: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$").ok());
static PREFIX: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$").ok()
});

fn is_name(s: &str) -> bool {
    NAME.as_ref().is_some_and(|re| re.is_match(s))
}

fn check_key(key: &str) -> Result<String, String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let prefix_ok =
        prefix.is_none_or(|p| p.len() <= 253 && PREFIX.as_ref().is_some_and(|re| re.is_match(p)));
    if !prefix_ok || !is_name(name) {
        return Err(format!(
            "unable to parse requirement: key: Invalid value: \"{key}\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        ));
    }
    Ok(key.to_string())
}

fn check_value(value: &str) -> Result<String, String> {
    if !value.is_empty() && !is_name(value) {
        return Err(format!(
            "unable to parse requirement: values[0]: Invalid value: \"{value}\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        ));
    }
    Ok(value.to_string())
}

/// Split on commas outside parentheses, as `a in (x,y),b` has a comma inside a set.
fn split_top_level(s: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        if !(0..=1).contains(&depth) {
            return Err(format!(
                "unable to parse requirement: unbalanced parentheses in `{s}`"
            ));
        }
    }
    if depth != 0 {
        return Err(format!(
            "unable to parse requirement: found '(', expected: ')' in `{s}`"
        ));
    }
    parts.push(&s[start..]);
    Ok(parts)
}

impl LabelSelector {
    /// Parse a `labelSelector` query value; the error is the message for a 400 Status.
    pub(crate) fn parse(s: &str) -> Result<LabelSelector, String> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(LabelSelector::default());
        }
        let mut reqs = Vec::new();
        for part in split_top_level(s)? {
            let part = part.trim();
            if part.is_empty() {
                return Err(format!(
                    "unable to parse requirement: found ',', expected: identifier in `{s}`"
                ));
            }
            reqs.push(parse_requirement(part)?);
        }
        Ok(LabelSelector(reqs))
    }

    /// Does an object with these labels match?
    pub(crate) fn matches(&self, labels: Option<&serde_json::Map<String, Value>>) -> bool {
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.0.iter().all(|req| match req {
            LabelReq::Eq(k, v) => get(k) == Some(v.as_str()),
            LabelReq::NotEq(k, v) => get(k) != Some(v.as_str()),
            LabelReq::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            LabelReq::NotIn(k, vs) => get(k).is_none_or(|x| vs.iter().all(|v| v != x)),
            LabelReq::Exists(k) => get(k).is_some(),
            LabelReq::NotExists(k) => get(k).is_none(),
            LabelReq::Gt(k, n) => get(k)
                .and_then(|x| x.parse::<i64>().ok())
                .is_some_and(|x| x > *n),
            LabelReq::Lt(k, n) => get(k)
                .and_then(|x| x.parse::<i64>().ok())
                .is_some_and(|x| x < *n),
        })
    }
}

fn parse_requirement(part: &str) -> Result<LabelReq, String> {
    if let Some(key) = part.strip_prefix('!') {
        return Ok(LabelReq::NotExists(check_key(key.trim())?));
    }
    if let Some(caps) = SET_REQ.as_ref().and_then(|re| re.captures(part)) {
        let key = check_key(caps.get(1).map_or("", |m| m.as_str()))?;
        let values = caps
            .get(3)
            .map_or("", |m| m.as_str())
            .split(',')
            .map(|v| check_value(v.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(match caps.get(2).map(|m| m.as_str()) {
            Some("in") => LabelReq::In(key, values),
            _ => LabelReq::NotIn(key, values),
        });
    }
    for (op, build) in [
        ("!=", LabelReq::NotEq as fn(String, String) -> LabelReq),
        ("==", LabelReq::Eq),
        ("=", LabelReq::Eq),
    ] {
        if let Some((k, v)) = part.split_once(op) {
            return Ok(build(check_key(k.trim())?, check_value(v.trim())?));
        }
    }
    for (op, build) in [
        (">", LabelReq::Gt as fn(String, i64) -> LabelReq),
        ("<", LabelReq::Lt),
    ] {
        if let Some((k, v)) = part.split_once(op) {
            let n = v.trim().parse::<i64>().map_err(|_| {
                format!("unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer, not `{}`", v.trim())
            })?;
            return Ok(build(check_key(k.trim())?, n));
        }
    }
    if part.contains(char::is_whitespace) || part.contains('(') || part.contains(')') {
        return Err(format!(
            "unable to parse requirement: found '{part}', expected: in, notin, =, ==, !=, gt, lt"
        ));
    }
    Ok(LabelReq::Exists(check_key(part)?))
}

/// Split a field selector on commas not escaped with a backslash, unescaping `\,` `\=` `\\`.
fn split_unescaped(s: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let (Some(next), Some(last)) = (chars.next(), parts.last_mut()) {
                    // Keep the escape so the operator split below can tell `\=` from `=`.
                    last.push('\\');
                    last.push(next);
                }
            }
            ',' => parts.push(String::new()),
            c => {
                if let Some(last) = parts.last_mut() {
                    last.push(c);
                }
            }
        }
    }
    parts
}

/// Find an unescaped operator, returning (left, right) with escapes removed.
fn split_op(term: &str, op: &str) -> Option<(String, String)> {
    let bytes = term.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            i += 2;
            continue;
        }
        // Byte comparison: `op` is ASCII, so a match sits on a char boundary.
        if bytes[i..].starts_with(op.as_bytes()) {
            return Some((unescape(&term[..i]), unescape(&term[i + op.len()..])));
        }
        i += 1;
    }
    None
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl FieldSelector {
    /// Parse a `fieldSelector` query value; the error is the message for a 400 Status.
    pub(crate) fn parse(s: &str) -> Result<FieldSelector, String> {
        if s.trim().is_empty() {
            return Ok(FieldSelector::default());
        }
        let mut terms = Vec::new();
        for term in split_unescaped(s) {
            // Order matters: `!=` and `==` contain `=`.
            let parsed = split_op(&term, "!=")
                .map(|(k, v)| (k, v, false))
                .or_else(|| split_op(&term, "==").map(|(k, v)| (k, v, true)))
                .or_else(|| split_op(&term, "=").map(|(k, v)| (k, v, true)));
            match parsed {
                Some((k, v, eq)) if !k.trim().is_empty() => {
                    terms.push((k.trim().to_string(), v, eq))
                }
                _ => {
                    return Err(format!(
                        "invalid selector: '{s}'; can't understand '{term}'"
                    ));
                }
            }
        }
        Ok(FieldSelector(terms))
    }

    /// Does the object match? Fields are dotted JSON paths; a missing field reads as "".
    pub(crate) fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(path, want, eq)| {
            let got = lookup(obj, path);
            (got == *want) == *eq
        })
    }
}

/// Look up a dotted path (`status.phase`, `involvedObject.name`) as the string the API server
/// compares against.
fn lookup(obj: &Value, path: &str) -> String {
    let mut cur = obj;
    for seg in path.split('.') {
        match cur.get(seg) {
            Some(v) => cur = v,
            None => return String::new(),
        }
    }
    match cur {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(v: Value) -> serde_json::Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn label_selector_semantics() {
        let l = labels(json!({"app": "model-server", "tier": "gpu"}));
        let m = |s: &str| LabelSelector::parse(s).map(|sel| sel.matches(Some(&l)));
        assert_eq!(m("app=model-server"), Ok(true));
        assert_eq!(m("app==model-server,tier!=cpu"), Ok(true));
        assert_eq!(m("app in (a, model-server),!missing"), Ok(true));
        assert_eq!(m("tier notin (gpu)"), Ok(false));
        assert_eq!(m("missing notin (x)"), Ok(true));
        assert_eq!(m("tier"), Ok(true));
        assert_eq!(m("!tier"), Ok(false));
        assert!(m("app=(").is_err());
        assert!(m("a b c").is_err());
        assert!(m("app in (x").is_err());
    }

    #[test]
    fn field_selector_semantics() {
        let ev =
            json!({"type": "Warning", "involvedObject": {"name": "p", "kind": "Pod"}, "count": 3});
        let m = |s: &str| FieldSelector::parse(s).map(|sel| sel.matches(&ev));
        assert_eq!(m("involvedObject.name=p,type=Warning"), Ok(true));
        assert_eq!(m("type!=Warning"), Ok(false));
        assert_eq!(m("count==3"), Ok(true));
        assert_eq!(m("reason="), Ok(true));
        assert!(m("type").is_err());
    }
}
