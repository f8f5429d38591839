//! Read handlers: list (selectors, pagination, Table), get, and pod logs.

use std::collections::HashMap;

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::Timestamp;
use serde_json::{Value, json};

use super::manifest::rfc3339;
use super::resources::Resource;
use super::scenario::{LogKey, container_names};
use super::selectors::{FieldSelector, LabelSelector};
use super::status::ApiError;
use super::store::Store;
use super::table::{IncludeObject, table};

/// Does the Accept header ask for server-side printing (kubectl's `as=Table`)?
fn wants_table(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|media| {
            let params: Vec<&str> = media.split(';').map(str::trim).collect();
            params.contains(&"as=Table")
                && params
                    .iter()
                    .all(|p| !p.starts_with("g=") || *p == "g=meta.k8s.io")
        })
}

/// The continue token: like the real server's, base64 of JSON naming where the next page starts.
fn encode_continue(rv: u64, key: &(String, String)) -> String {
    let token = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": [key.0, key.1]});
    URL_SAFE_NO_PAD.encode(token.to_string())
}

fn decode_continue(token: &str) -> Result<(String, String), ApiError> {
    let invalid = |why: &str| {
        ApiError::bad_request(format!(
            "continue key is not valid: {why}; the continue parameter is invalid, start the list again without it"
        ))
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| invalid("not base64"))?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| invalid("not a JSON token"))?;
    if v.get("v").and_then(Value::as_str) != Some("meta.k8s.io/v1") {
        return Err(invalid(
            "incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        ));
    }
    match v.get("start").and_then(Value::as_array).map(Vec::as_slice) {
        Some([Value::String(ns), Value::String(name)]) => Ok((ns.clone(), name.clone())),
        _ => Err(invalid("no start key")),
    }
}

/// `?limit=`: absent or <= 0 means everything, as on the real server.
fn parse_limit(query: &HashMap<String, String>) -> Result<Option<usize>, ApiError> {
    match query.get("limit").map(String::as_str) {
        None | Some("") => Ok(None),
        Some(v) => {
            let n: i64 = v.parse().map_err(|_| {
                ApiError::bad_request(format!("limit: Invalid value: \"{v}\": must be an integer"))
            })?;
            Ok(usize::try_from(n).ok().filter(|n| *n > 0))
        }
    }
}

fn reject_watch(query: &HashMap<String, String>) -> Result<(), ApiError> {
    match query.get("watch").map(String::as_str) {
        Some("true" | "1") => Err(ApiError::method_not_allowed(
            "the simulator does not support watch",
        )),
        _ => Ok(()),
    }
}

/// List a collection: filter by selectors, page with limit/continue, answer a List or a Table.
pub(crate) fn list(
    store: &Store,
    resource: Resource,
    namespace: Option<&str>,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    reject_watch(query)?;
    let labels = LabelSelector::parse(query.get("labelSelector").map_or("", String::as_str))
        .map_err(ApiError::bad_request)?;
    let fields = FieldSelector::parse(query.get("fieldSelector").map_or("", String::as_str))
        .map_err(ApiError::bad_request)?;
    let limit = parse_limit(query)?;
    let start = match query.get("continue").map(String::as_str) {
        None | Some("") => None,
        Some(token) => Some(decode_continue(token)?),
    };
    let include = IncludeObject::parse(query.get("includeObject").map(String::as_str))
        .map_err(ApiError::bad_request)?;
    let matching: Vec<(&(String, String), &Value)> = store
        .list(resource, namespace)
        .filter(|(key, _)| start.as_ref().is_none_or(|s| *key > s))
        .filter(|(_, obj)| {
            labels.matches(obj.pointer("/metadata/labels").and_then(Value::as_object))
        })
        .filter(|(_, obj)| fields.matches(obj))
        .collect();
    let take = limit.unwrap_or(matching.len()).min(matching.len());
    let remaining = matching.len() - take;
    let page = &matching[..take];
    let rv = store.resource_version();
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if remaining > 0
        && let Some((last_key, _)) = page.last()
    {
        meta["continue"] = encode_continue(rv, last_key).into();
        meta["remainingItemCount"] = remaining.into();
    }
    let items: Vec<Value> = page.iter().map(|(_, obj)| (*obj).clone()).collect();
    if wants_table(headers) {
        return Ok(Json(table(resource, &items, include, Timestamp::now(), meta)).into_response());
    }
    Ok(Json(json!({
        "kind": format!("{}List", resource.kind()),
        "apiVersion": resource.api_version(),
        "metadata": meta,
        "items": items,
    }))
    .into_response())
}

/// Get one object, as JSON or as a one-row Table.
pub(crate) fn get(
    store: &Store,
    resource: Resource,
    namespace: Option<&str>,
    name: &str,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    reject_watch(query)?;
    let obj = store
        .get(resource, namespace.unwrap_or(""), name)
        .ok_or_else(|| ApiError::not_found(resource, name))?;
    if wants_table(headers) {
        let include = IncludeObject::parse(query.get("includeObject").map(String::as_str))
            .map_err(ApiError::bad_request)?;
        let meta = json!({"resourceVersion": store.resource_version().to_string()});
        return Ok(Json(table(
            resource,
            std::slice::from_ref(obj),
            include,
            Timestamp::now(),
            meta,
        ))
        .into_response());
    }
    Ok(Json(obj.clone()).into_response())
}

fn flag(query: &HashMap<String, String>, key: &str) -> bool {
    matches!(query.get(key).map(String::as_str), Some("true" | "1"))
}

fn non_negative(query: &HashMap<String, String>, key: &str) -> Result<Option<usize>, ApiError> {
    match query.get(key).map(String::as_str) {
        None | Some("") => Ok(None),
        Some(v) => v.parse::<usize>().map(Some).map_err(|_| {
            ApiError::bad_request(format!(
                "{key}: Invalid value: \"{v}\": must be greater than or equal to 0"
            ))
        }),
    }
}

/// `GET .../pods/NAME/log`: the scenario's log text, with `container`, `tailLines`,
/// `timestamps`, `previous` and `limitBytes`. `follow` is accepted and ignored.
pub(crate) fn pod_log(
    store: &Store,
    ns: &str,
    name: &str,
    query: &HashMap<String, String>,
) -> Result<Response, ApiError> {
    let pod = store
        .get(Resource::Pods, ns, name)
        .ok_or_else(|| ApiError::not_found(Resource::Pods, name))?;
    let (containers, init) = container_names(pod);
    let container = match query.get("container").map(String::as_str) {
        Some(c) if !c.is_empty() => {
            if !containers.iter().chain(&init).any(|x| x == c) {
                return Err(ApiError::bad_request(format!(
                    "container {c} is not valid for pod {name}"
                )));
            }
            c.to_string()
        }
        _ => match containers.as_slice() {
            [only] => only.clone(),
            [] => return Ok(text_response(String::new())),
            many => {
                let mut message = format!(
                    "a container name must be specified for pod {name}, choose one of: [{}]",
                    many.join(" ")
                );
                if !init.is_empty() {
                    message.push_str(&format!(
                        " or one of the init containers: [{}]",
                        init.join(" ")
                    ));
                }
                return Err(ApiError::bad_request(message));
            }
        },
    };
    let tail = non_negative(query, "tailLines")?;
    let limit_bytes = non_negative(query, "limitBytes")?;
    let previous = flag(query, "previous");
    let key = LogKey {
        namespace: ns.to_string(),
        pod: name.to_string(),
        container: container.clone(),
        previous,
    };
    let text = match store.log(&key) {
        Some(text) => text,
        None if previous => {
            return Err(ApiError::bad_request(format!(
                "previous terminated container \"{container}\" in pod \"{name}\" not found"
            )));
        }
        None => "",
    };
    let lines: Vec<&str> = text.lines().collect();
    let skip = tail.map_or(0, |n| lines.len().saturating_sub(n));
    let shown = &lines[skip..];
    let mut body = String::new();
    let now = Timestamp::now().as_second();
    for (i, line) in shown.iter().enumerate() {
        if flag(query, "timestamps") {
            // The scenario has no per-line times; space lines a second apart, ending now.
            let back = i64::try_from(shown.len() - i).unwrap_or(0);
            let at = Timestamp::from_second(now - back).unwrap_or(Timestamp::UNIX_EPOCH);
            body.push_str(&rfc3339(at));
            body.push(' ');
        }
        body.push_str(line);
        body.push('\n');
    }
    if let Some(max) = limit_bytes
        && body.len() > max
    {
        let mut cut = max;
        while !body.is_char_boundary(cut) {
            cut -= 1;
        }
        body.truncate(cut);
    }
    Ok(text_response(body))
}

fn text_response(body: String) -> Response {
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}
