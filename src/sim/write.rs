//! Write handlers: PATCH and PUT of objects, the Deployment scale subresource, and DELETE.
//!
//! Every write goes through [`commit`]: keep the identity fields, validate by deserializing into
//! the k8s-openapi type (422 when that fails), bump `resourceVersion` (and `generation` when the
//! spec changed), store unless `?dryRun=All`, and run the deployment controller.

use std::collections::HashMap;

use axum::Json;
use axum::http::{HeaderMap, Method, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde_json::{Value, json};

use super::controller;
use super::manifest::rfc3339;
use super::patch::{self, PatchKind};
use super::resources::Resource;
use super::scenario::validate;
use super::server::Route;
use super::status::ApiError;
use super::store::Store;

/// What a write did: the answer, and whether anything was stored (for the writes log).
pub(crate) struct Written {
    /// The HTTP answer.
    pub(crate) response: Response,
    /// False for dry runs.
    pub(crate) stored: bool,
}

/// Serve a PATCH, PUT or DELETE on `route`.
pub(crate) fn dispatch(
    store: &mut Store,
    method: &Method,
    route: Route,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Written, ApiError> {
    let dry_run = match query.get("dryRun").map(String::as_str) {
        None | Some("") => false,
        Some("All") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "dryRun: Unsupported value: \"{other}\": supported values: \"All\""
            )));
        }
    };
    // DeleteOptions in a DELETE body may ask for a dry run too (kube-rs puts it there).
    let dry_run = dry_run
        || (*method == Method::DELETE
            && serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|o| o.get("dryRun").cloned())
                .and_then(|d| d.as_array().cloned())
                .is_some_and(|d| d.iter().any(|v| v == "All")));
    let not_allowed = || ApiError::method_not_allowed(&format!("{method} is not served here"));
    let (resource, ns, name, sub) = match route {
        Route::Object {
            resource,
            namespace,
            name,
        } => (resource, namespace.unwrap_or_default(), name, None),
        Route::Subresource {
            resource: Resource::Deployments,
            namespace: Some(ns),
            name,
            sub,
            rest,
        } if sub == "scale" && rest.is_empty() => (Resource::Deployments, ns, name, Some(())),
        _ => return Err(not_allowed()),
    };
    let current = store
        .get(resource, &ns, &name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(resource, &name))?;
    let now = Timestamp::now();
    let obj = match (method.as_str(), sub) {
        ("PATCH", None) => {
            let patched = apply_patch(resource, &name, &current, headers, body)?;
            commit(store, resource, &ns, &name, &current, patched, dry_run, now)?
        }
        ("PUT", None) => {
            let new = parse_body(body)?;
            check_put(resource, &name, &current, &new)?;
            commit(store, resource, &ns, &name, &current, new, dry_run, now)?
        }
        ("DELETE", None) => {
            check_preconditions(resource, &name, &current, body)?;
            delete(store, resource, &ns, &name, current, dry_run, now)
        }
        ("PATCH" | "PUT", Some(())) => {
            let scale = scale_of(&current);
            let new_scale = if method == Method::PATCH {
                apply_patch(resource, &name, &scale, headers, body)?
            } else {
                parse_body(body)?
            };
            let typed: k8s_openapi::api::autoscaling::v1::Scale =
                serde_json::from_value(new_scale.clone())
                    .map_err(|e| invalid_scale(&name, &e.to_string()))?;
            let replicas = typed.spec.and_then(|s| s.replicas).unwrap_or(0);
            if replicas < 0 {
                return Err(invalid_scale(
                    &name,
                    &format!(
                        "spec.replicas: Invalid value: {replicas}: must be greater than or equal to 0"
                    ),
                ));
            }
            let mut deploy = current.clone();
            deploy["spec"]["replicas"] = replicas.into();
            let stored = commit(store, resource, &ns, &name, &current, deploy, dry_run, now)?;
            scale_of(&stored)
        }
        _ => return Err(not_allowed()),
    };
    Ok(Written {
        response: Json(obj).into_response(),
        stored: !dry_run,
    })
}

fn invalid_scale(name: &str, why: &str) -> ApiError {
    ApiError::invalid(Resource::Deployments, name, why)
}

fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding the request body as JSON: {e}")))
}

fn apply_patch(
    resource: Resource,
    name: &str,
    target: &Value,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let kind = PatchKind::from_content_type(content_type)
        .ok_or_else(|| ApiError::unsupported_media_type(content_type))?;
    let patch = parse_body(body)?;
    patch::apply(kind, target, &patch).map_err(|why| ApiError::invalid(resource, name, &why))
}

/// DeleteOptions `preconditions` (`uid`, `resourceVersion`) must match the object, so a
/// client that planned to delete one pod never deletes its same-named replacement.
fn check_preconditions(
    resource: Resource,
    name: &str,
    current: &Value,
    body: &[u8],
) -> Result<(), ApiError> {
    let Ok(options) = serde_json::from_slice::<Value>(body) else {
        return Ok(());
    };
    for (field, pointer) in [("UID", "uid"), ("ResourceVersion", "resourceVersion")] {
        let Some(want) = options
            .pointer(&format!("/preconditions/{pointer}"))
            .and_then(Value::as_str)
        else {
            continue;
        };
        let got = current
            .pointer(&format!("/metadata/{pointer}"))
            .and_then(Value::as_str)
            .unwrap_or("");
        if want != got {
            return Err(ApiError::precondition_failed(
                resource, name, field, want, got,
            ));
        }
    }
    Ok(())
}

/// PUT must name the same object and, if it carries a resourceVersion, the current one.
fn check_put(resource: Resource, name: &str, current: &Value, new: &Value) -> Result<(), ApiError> {
    let new_name = new.pointer("/metadata/name").and_then(Value::as_str);
    if new_name != Some(name) {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({name})",
            new_name.unwrap_or("")
        )));
    }
    let rv = new
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str);
    if rv.is_some_and(|rv| {
        Some(rv)
            != current
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
    }) {
        return Err(ApiError::conflict(resource, name));
    }
    Ok(())
}

/// Validate and store `new` in place of `current`; returns what is stored (or would be).
#[allow(clippy::too_many_arguments)] // one write's facts; a struct would only rename them
fn commit(
    store: &mut Store,
    resource: Resource,
    ns: &str,
    name: &str,
    current: &Value,
    mut new: Value,
    dry_run: bool,
    now: Timestamp,
) -> Result<Value, ApiError> {
    if !new.is_object() {
        return Err(ApiError::invalid(
            resource,
            name,
            "the object must be a JSON object",
        ));
    }
    // Identity is the server's, whatever the write said.
    for field in ["name", "namespace", "uid", "creationTimestamp"] {
        match current.pointer(&format!("/metadata/{field}")) {
            Some(v) => new["metadata"][field] = v.clone(),
            None => {
                if let Some(m) = new.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.remove(field);
                }
            }
        }
    }
    new["apiVersion"] = resource.api_version().into();
    new["kind"] = resource.kind().into();
    let spec_changed = new.get("spec") != current.get("spec");
    if spec_changed && resource != Resource::Pods && resource != Resource::ConfigMaps {
        let generation = current
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        new["metadata"]["generation"] = (generation + 1).into();
    }
    validate(resource, &new).map_err(|why| ApiError::invalid(resource, name, &why))?;
    if dry_run {
        return Ok(new);
    }
    new["metadata"]["resourceVersion"] = store.next_resource_version().to_string().into();
    store.put(resource, ns, name, new.clone());
    if resource == Resource::Deployments && spec_changed {
        controller::reconcile(store, ns, name, now);
    }
    Ok(store.get(resource, ns, name).cloned().unwrap_or(new))
}

/// Remove the object; a pod of a Deployment is replaced by the controller at once. Answers
/// with the object as deleted (pods carry a deletionTimestamp, as on the real server).
fn delete(
    store: &mut Store,
    resource: Resource,
    ns: &str,
    name: &str,
    mut obj: Value,
    dry_run: bool,
    now: Timestamp,
) -> Value {
    if resource == Resource::Pods {
        obj["metadata"]["deletionTimestamp"] = rfc3339(now).into();
        obj["metadata"]["deletionGracePeriodSeconds"] = 30.into();
    }
    if dry_run {
        return obj;
    }
    let deployment = (resource == Resource::Pods)
        .then(|| controller::deployment_of_pod(store, ns, &obj))
        .flatten();
    store.remove(resource, ns, name);
    if let Some(d) = deployment {
        controller::reconcile(store, ns, &d, now);
    }
    obj
}

/// The autoscaling/v1 Scale view of a Deployment.
pub(crate) fn scale_of(deploy: &Value) -> Value {
    let selector = deploy
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let meta = |f: &str| {
        deploy
            .pointer(&format!("/metadata/{f}"))
            .cloned()
            .unwrap_or(Value::Null)
    };
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta("name"),
            "namespace": meta("namespace"),
            "uid": meta("uid"),
            "resourceVersion": meta("resourceVersion"),
            "creationTimestamp": meta("creationTimestamp"),
        },
        "spec": {"replicas": deploy.pointer("/spec/replicas").cloned().unwrap_or(1.into())},
        "status": {
            "replicas": deploy.pointer("/status/replicas").cloned().unwrap_or(0.into()),
            "selector": selector,
        },
    })
}
