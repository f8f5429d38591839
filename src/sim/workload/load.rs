//! Loading PodWorkload documents: parse with line numbers, then check them against the pods and
//! ConfigMaps of the same scenario once every document is in.

use std::collections::BTreeMap;

use serde_json::Value;

use super::spec::{PodWorkloadDoc, WORKLOAD_API_VERSION, Workload};
use crate::sim::manifest::strip_location;
use crate::sim::resources::Resource;

/// A problem in one PodWorkload document, at a 0-based line offset within it.
#[derive(Debug)]
pub(crate) struct DocError {
    pub(crate) line_offset: usize,
    pub(crate) message: String,
}

/// The 0-based offset of the first line of `doc` containing `needle`, or 0.
fn line_of(doc: &str, needle: &str) -> usize {
    doc.lines().position(|l| l.contains(needle)).unwrap_or(0)
}

/// Parse the document text itself (not the JSON it became), so serde's errors carry the line.
pub(crate) fn parse(doc_text: &str) -> Result<PodWorkloadDoc, DocError> {
    let doc: PodWorkloadDoc = serde_norway::from_str(doc_text).map_err(|e| DocError {
        line_offset: e.location().map_or(0, |l| l.line().saturating_sub(1)),
        message: strip_location(&e.to_string()),
    })?;
    if doc.api_version != WORKLOAD_API_VERSION {
        return Err(DocError {
            line_offset: line_of(doc_text, "apiVersion:"),
            message: format!("PodWorkload must have apiVersion: {WORKLOAD_API_VERSION}"),
        });
    }
    Ok(doc)
}

/// Check a parsed workload against the scenario's objects; gives its (namespace, pod) key.
pub(crate) fn resolve(
    doc: PodWorkloadDoc,
    doc_text: &str,
    objects: &BTreeMap<Resource, BTreeMap<(String, String), Value>>,
) -> Result<((String, String), Workload), DocError> {
    let ns = doc
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let pod_name = doc.metadata.name.clone();
    let at = |needle: &str, message: String| DocError {
        line_offset: line_of(doc_text, needle),
        message,
    };
    let get = |r: Resource, name: &str| {
        objects
            .get(&r)
            .and_then(|m| m.get(&(ns.clone(), name.to_string())))
    };
    let Some(pod) = get(Resource::Pods, &pod_name) else {
        return Err(at(
            "name:",
            format!(
                "PodWorkload names pod {ns}/{pod_name}, but no Pod document declares it; check metadata.name and metadata.namespace"
            ),
        ));
    };
    let workload = doc.into_workload();
    workload.check().map_err(|m| at("metrics:", m))?;
    let declared: Vec<u64> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("ports").and_then(Value::as_array))
        .flatten()
        .filter_map(|p| p.get("containerPort").and_then(Value::as_u64))
        .collect();
    if !declared.contains(&u64::from(workload.port)) {
        return Err(at(
            "port:",
            format!(
                "pod {ns}/{pod_name} declares no containerPort {}; add it to the pod's container or set `port:` to one of {declared:?}",
                workload.port
            ),
        ));
    }
    if let Some(chat) = &workload.chat {
        let cfg = &chat.prompt_config;
        let Some(cm) = get(Resource::ConfigMaps, &cfg.configmap) else {
            return Err(at(
                "configmap:",
                format!(
                    "chat.prompt_config names ConfigMap {ns}/{}, but no ConfigMap document declares it",
                    cfg.configmap
                ),
            ));
        };
        let active = cm
            .get("data")
            .and_then(|d| d.get(&cfg.active_key))
            .and_then(Value::as_str);
        match active.map(str::trim) {
            None => {
                return Err(at(
                    "active_key:",
                    format!(
                        "ConfigMap {ns}/{} has no data key `{}` naming the active prompt version",
                        cfg.configmap, cfg.active_key
                    ),
                ));
            }
            Some(v) if !chat.versions.contains_key(v) => {
                return Err(at(
                    "versions:",
                    format!(
                        "the active prompt version is `{v}` (ConfigMap {ns}/{}), but chat.versions has no `{v}`; known: {}",
                        cfg.configmap,
                        chat.versions.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    Ok(((ns, pod_name), workload))
}
