//! The three PATCH flavours the API server accepts, applied to plain JSON values.
//!
//! - `application/merge-patch+json`: RFC 7386.
//! - `application/json-patch+json`: RFC 6902 (add, remove, replace, move, copy, test).
//! - `application/strategic-merge-patch+json`: merge-patch, except that lists of objects merge
//!   by a key (`containerPort` for `ports`, `mountPath` for `volumeMounts`, `name` otherwise,
//!   when every element has it) instead of being replaced. Supported directives: `$patch:
//!   delete` on a list element or map, `$patch: replace` on a map. Other `$`-keys
//!   (`$setElementOrder/...`, `$retainKeys`, `$deleteFromPrimitiveList/...`) are dropped, so
//!   kubectl's patches apply but those fine points are not honoured.

use serde_json::{Map, Value};

/// A PATCH body's flavour, from its Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PatchKind {
    /// RFC 7386 merge patch.
    Merge,
    /// RFC 6902 JSON patch.
    Json,
    /// Kubernetes strategic merge patch (what kubectl sends by default).
    Strategic,
}

impl PatchKind {
    /// The flavour a Content-Type names (parameters ignored), or `None` if unsupported.
    pub(crate) fn from_content_type(content_type: &str) -> Option<PatchKind> {
        match content_type.split(';').next().map(str::trim) {
            Some("application/merge-patch+json") => Some(PatchKind::Merge),
            Some("application/json-patch+json") => Some(PatchKind::Json),
            Some("application/strategic-merge-patch+json") => Some(PatchKind::Strategic),
            _ => None,
        }
    }
}

/// Apply `patch` to `target`; the error is the reason, worded for a 4xx Status.
pub(crate) fn apply(kind: PatchKind, target: &Value, patch: &Value) -> Result<Value, String> {
    match kind {
        PatchKind::Merge => {
            if !patch.is_object() {
                return Err("a merge patch must be a JSON object".into());
            }
            Ok(merge(target.clone(), patch))
        }
        PatchKind::Strategic => {
            if !patch.is_object() {
                return Err("a strategic merge patch must be a JSON object".into());
            }
            Ok(strategic(target.clone(), patch))
        }
        PatchKind::Json => json_patch(target.clone(), patch),
    }
}

/// RFC 7386: objects merge key by key, `null` removes, anything else replaces.
fn merge(target: Value, patch: &Value) -> Value {
    let Value::Object(p) = patch else {
        return patch.clone();
    };
    let mut t = match target {
        Value::Object(t) => t,
        _ => Map::new(),
    };
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            let old = t.remove(k).unwrap_or(Value::Null);
            t.insert(k.clone(), merge(old, v));
        }
    }
    Value::Object(t)
}

/// The key a strategic merge matches list elements by, for a list stored under `field`.
fn merge_key(field: &str) -> &'static str {
    match field {
        "ports" => "containerPort",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        _ => "name",
    }
}

fn strategic(target: Value, patch: &Value) -> Value {
    let Value::Object(p) = patch else {
        return patch.clone();
    };
    match p.get("$patch").and_then(Value::as_str) {
        Some("replace") => return strip_directives(patch),
        Some("delete") => return Value::Null,
        _ => {}
    }
    let mut t = match target {
        Value::Object(t) => t,
        _ => Map::new(),
    };
    for (k, v) in p {
        if k.starts_with('$') {
            continue;
        }
        if v.is_null() {
            t.remove(k);
            continue;
        }
        let old = t.remove(k).unwrap_or(Value::Null);
        let merged = match (old, v) {
            (Value::Array(old), Value::Array(new)) => merge_list(old, new, merge_key(k)),
            (old, v) => strategic(old, v),
        };
        if !merged.is_null() {
            t.insert(k.clone(), merged);
        }
    }
    Value::Object(t)
}

/// Merge lists of objects by `key` when every element has it; otherwise the patch replaces.
fn merge_list(old: Vec<Value>, new: &[Value], key: &str) -> Value {
    let keyed = |items: &[Value]| {
        items
            .iter()
            .all(|i| i.get(key).is_some_and(|k| !k.is_null()))
    };
    if new.is_empty() || !keyed(&old) || !keyed(new) {
        return Value::Array(new.iter().map(strip_directives).collect());
    }
    let mut out = old;
    for item in new {
        let id = item.get(key);
        let pos = out.iter().position(|o| o.get(key) == id);
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (pos, delete) {
            (Some(i), true) => {
                out.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => {
                let old = std::mem::take(&mut out[i]);
                out[i] = strategic(old, item);
            }
            (None, false) => out.push(strip_directives(item)),
        }
    }
    Value::Array(out)
}

fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

/// RFC 6902, applied operation by operation; any failure leaves nothing applied.
fn json_patch(mut doc: Value, patch: &Value) -> Result<Value, String> {
    let Value::Array(ops) = patch else {
        return Err("a JSON patch must be a JSON array of operations".into());
    };
    for (i, op) in ops.iter().enumerate() {
        let field = |name: &str| {
            op.get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| format!("operation {i}: missing `{name}`"))
        };
        let path = field("path")?;
        let value = || {
            op.get("value")
                .cloned()
                .ok_or_else(|| format!("operation {i}: missing `value`"))
        };
        let at = |e: String| format!("operation {i} ({}): {e}", field("op").unwrap_or("?"));
        match field("op")? {
            "add" => add(&mut doc, path, value()?).map_err(at)?,
            "remove" => drop(remove(&mut doc, path).map_err(at)?),
            "replace" => {
                remove(&mut doc, path).map_err(at)?;
                add(&mut doc, path, value()?).map_err(at)?;
            }
            "move" => {
                let from = field("from")?;
                let v = remove(&mut doc, from).map_err(at)?;
                add(&mut doc, path, v).map_err(at)?;
            }
            "copy" => {
                let from = field("from")?;
                let v = doc
                    .pointer(from)
                    .cloned()
                    .ok_or_else(|| at(format!("path {from} not found")))?;
                add(&mut doc, path, v).map_err(at)?;
            }
            "test" => {
                let want = value()?;
                if doc.pointer(path) != Some(&want) {
                    return Err(at(format!("testing value {path} failed")));
                }
            }
            other => return Err(format!("operation {i}: unknown op `{other}`")),
        }
    }
    Ok(doc)
}

/// Split a JSON pointer into its parent pointer and unescaped last token.
fn split(path: &str) -> Result<(&str, String), String> {
    if path.is_empty() {
        return Err("the whole document cannot be the target".into());
    }
    if !path.starts_with('/') {
        return Err(format!("path {path} is not a JSON pointer"));
    }
    let cut = path.rfind('/').unwrap_or(0);
    let token = path[cut + 1..].replace("~1", "/").replace("~0", "~");
    Ok((&path[..cut], token))
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), String> {
    let (parent, token) = split(path)?;
    match doc.pointer_mut(parent) {
        Some(Value::Object(m)) => {
            m.insert(token, value);
            Ok(())
        }
        Some(Value::Array(a)) => {
            let i = if token == "-" {
                a.len()
            } else {
                token
                    .parse::<usize>()
                    .ok()
                    .filter(|i| *i <= a.len())
                    .ok_or_else(|| format!("array index {token} out of range in {path}"))?
            };
            a.insert(i, value);
            Ok(())
        }
        _ => Err(format!("doc is missing path: {path}")),
    }
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, token) = split(path)?;
    let missing = || format!("doc is missing path: {path}");
    match doc.pointer_mut(parent) {
        Some(Value::Object(m)) => m.remove(&token).ok_or_else(missing),
        Some(Value::Array(a)) => match token.parse::<usize>() {
            Ok(i) if i < a.len() => Ok(a.remove(i)),
            _ => Err(missing()),
        },
        _ => Err(missing()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_removes_with_null() {
        let t = json!({"a": 1, "b": {"c": 2, "d": 3}});
        let out = apply(PatchKind::Merge, &t, &json!({"a": null, "b": {"c": 9}})).ok();
        assert_eq!(out, Some(json!({"b": {"c": 9, "d": 3}})));
    }

    #[test]
    fn strategic_merges_containers_by_name() {
        let t = json!({"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]});
        let p = json!({"$setElementOrder/containers": [{"name": "a"}],
            "containers": [{"name": "b", "image": "z"}, {"name": "a", "$patch": "delete"}]});
        let out = apply(PatchKind::Strategic, &t, &p).ok();
        assert_eq!(
            out,
            Some(json!({"containers": [{"name": "b", "image": "z"}]}))
        );
    }

    #[test]
    fn json_patch_ops() {
        let t = json!({"a": [1, 2], "b": {"x/y": 1}});
        let p = json!([
            {"op": "add", "path": "/a/-", "value": 3},
            {"op": "replace", "path": "/b/x~1y", "value": 2},
            {"op": "copy", "from": "/b", "path": "/c"},
            {"op": "move", "from": "/a/0", "path": "/d"},
            {"op": "test", "path": "/d", "value": 1},
            {"op": "remove", "path": "/b"},
        ]);
        let out = apply(PatchKind::Json, &t, &p).ok();
        assert_eq!(out, Some(json!({"a": [2, 3], "c": {"x/y": 2}, "d": 1})));
        assert!(
            apply(
                PatchKind::Json,
                &t,
                &json!([{"op": "test", "path": "/a/0", "value": 9}])
            )
            .is_err()
        );
        assert!(
            apply(
                PatchKind::Json,
                &t,
                &json!([{"op": "remove", "path": "/zz"}])
            )
            .is_err()
        );
    }
}
