//! Loading scenarios: multi-document YAML manifests (with `status`) plus per-pod log text.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::manifest::{
    fake_uid, fnv, kind_line, normalize_quantities, rfc3339, split_documents, strip_location,
    substitute_times,
};
use super::resources::Resource;
use super::workload::{self, WORKLOAD_KIND, Workload};

/// The scenarios compiled into the binary: (name, YAML text).
/// One incident story each, all on the same Deployment so one runbook serves them all.
const BUILTIN: &[(&str, &str)] = &[
    ("demo", include_str!("scenarios/demo.yaml")),
    ("oom", include_str!("scenarios/oom.yaml")),
    ("kv-cache", include_str!("scenarios/kv-cache.yaml")),
    ("bad-prompt", include_str!("scenarios/bad-prompt.yaml")),
    ("stale-index", include_str!("scenarios/stale-index.yaml")),
];

/// Names of the built-in scenarios, kept in step with `BUILTIN`.
const BUILTIN_NAMES: &[&str] = &["demo", "oom", "kv-cache", "bad-prompt", "stale-index"];

/// The apiVersion/kind of the simulator's own log documents.
const LOGS_API_VERSION: &str = "sim.firebreak.dev/v1";
const LOGS_KIND: &str = "PodLogs";

/// Everything that can go wrong loading a scenario or starting the simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The text is not valid YAML.
    #[error(
        "{origin}:{line}: YAML syntax error: {message}; fix the scenario file and load it again"
    )]
    Yaml {
        /// File name (or built-in scenario name) the text came from.
        origin: String,
        /// 1-based line of the error.
        line: usize,
        /// What the YAML parser reported.
        message: String,
    },
    /// A document's kind is not one the simulator serves.
    #[error(
        "{origin}:{line}: document {document} has kind `{kind}`, which the simulator does not serve; supported kinds: {supported}"
    )]
    UnknownKind {
        /// File name the text came from.
        origin: String,
        /// 1-based document number.
        document: usize,
        /// 1-based line of the document's `kind:`.
        line: usize,
        /// The kind found (empty when missing).
        kind: String,
        /// The kinds the simulator accepts, comma separated.
        supported: String,
    },
    /// A document has a known kind but does not deserialize as that kind, or breaks a scenario rule.
    #[error("{origin}:{line}: document {document} ({kind}) is invalid: {message}")]
    Invalid {
        /// File name the text came from.
        origin: String,
        /// 1-based document number.
        document: usize,
        /// 1-based line where the document starts.
        line: usize,
        /// The document's kind.
        kind: String,
        /// What is wrong and, where possible, how to fix it.
        message: String,
    },
    /// Neither a built-in scenario nor a file of that name exists.
    #[error(
        "no built-in scenario `{name}` and no file at that path; built-in scenarios: {builtins}"
    )]
    UnknownScenario {
        /// What the user asked for.
        name: String,
        /// The built-in names, comma separated.
        builtins: String,
    },
    /// The scenario file exists but could not be read.
    #[error("cannot read scenario file `{path}`")]
    Read {
        /// The path tried.
        path: String,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The simulator could not listen on the requested address.
    #[error("cannot listen on {addr}; use another port, or port 0 to pick a free one")]
    Bind {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Which log a [`LogKey`] names: the running container's or the previous (terminated) one's.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct LogKey {
    pub(crate) namespace: String,
    pub(crate) pod: String,
    pub(crate) container: String,
    pub(crate) previous: bool,
}

/// A loaded scenario: Kubernetes objects (as JSON, already validated) and pod logs.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Objects by resource, then by (namespace, name); cluster-scoped objects use namespace "".
    pub(crate) objects: BTreeMap<Resource, BTreeMap<(String, String), Value>>,
    pub(crate) logs: BTreeMap<LogKey, String>,
    /// What pods serve behind the pod proxy, by (namespace, pod).
    pub(crate) workloads: BTreeMap<(String, String), Workload>,
    /// The resourceVersion of the newest object, so lists can report one.
    pub(crate) resource_version: u64,
}

/// Where a document sits in the scenario text, for error messages.
#[derive(Debug, Clone, Copy)]
struct DocPos {
    number: usize,
    line: usize,
}

/// A PodLogs document, resolved against the pods once every document is loaded.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PodLogsDoc {
    #[allow(dead_code)] // checked before deserializing; kept so deny_unknown_fields accepts it
    api_version: String,
    #[allow(dead_code)]
    kind: String,
    metadata: PodLogsMeta,
    container: Option<String>,
    #[serde(default)]
    previous: bool,
    #[serde(default)]
    text: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PodLogsMeta {
    name: String,
    namespace: Option<String>,
}

impl Scenario {
    /// Names of the scenarios shipped inside the binary: `demo`, then one per failure class.
    pub fn builtin_names() -> &'static [&'static str] {
        BUILTIN_NAMES
    }

    /// A shipped scenario by name, or a path to a scenario file.
    pub fn load(name_or_path: &str) -> Result<Scenario, SimError> {
        if let Some((name, text)) = BUILTIN.iter().find(|(n, _)| *n == name_or_path) {
            return Scenario::from_yaml(text, &format!("{name}.yaml (built-in)"));
        }
        match std::fs::read_to_string(name_or_path) {
            Ok(text) => Scenario::from_yaml(&text, name_or_path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(SimError::UnknownScenario {
                name: name_or_path.to_string(),
                builtins: BUILTIN_NAMES.join(", "),
            }),
            Err(source) => Err(SimError::Read {
                path: name_or_path.to_string(),
                source,
            }),
        }
    }

    /// Parse scenario text; `origin` names it in errors (file name), errors carry the line number.
    pub fn from_yaml(text: &str, origin: &str) -> Result<Scenario, SimError> {
        let now = Timestamp::now();
        let mut scenario = Scenario {
            objects: BTreeMap::new(),
            logs: BTreeMap::new(),
            workloads: BTreeMap::new(),
            resource_version: 1000,
        };
        let mut pending_logs = Vec::new();
        let mut pending_workloads = Vec::new();
        let mut number = 0;
        for (line, doc_text) in split_documents(text) {
            let mut doc: Value = match serde_norway::from_str(&doc_text) {
                Ok(v) => v,
                Err(e) => {
                    let rel = e.location().map(|l| l.line()).unwrap_or(1);
                    return Err(SimError::Yaml {
                        origin: origin.to_string(),
                        line: line + rel.saturating_sub(1),
                        message: strip_location(&e.to_string()),
                    });
                }
            };
            if doc.is_null() {
                continue; // a document of only comments
            }
            number += 1;
            let pos = DocPos { number, line };
            let kind = doc
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let invalid = |message: String| SimError::Invalid {
                origin: origin.to_string(),
                document: pos.number,
                line: pos.line,
                kind: kind.clone(),
                message,
            };
            if !doc.is_object() {
                return Err(invalid(
                    "a document must be a mapping (apiVersion, kind, metadata, ...)".into(),
                ));
            }
            substitute_times(&mut doc, now).map_err(&invalid)?;
            if kind == LOGS_KIND {
                let logs: PodLogsDoc =
                    serde_json::from_value(doc).map_err(|e| invalid(e.to_string()))?;
                if logs.api_version != LOGS_API_VERSION {
                    return Err(invalid(format!(
                        "PodLogs must have apiVersion: {LOGS_API_VERSION}"
                    )));
                }
                pending_logs.push((pos, logs));
                continue;
            }
            if kind == WORKLOAD_KIND {
                let parsed = workload::load::parse(&doc_text).map_err(|e| SimError::Invalid {
                    origin: origin.to_string(),
                    document: pos.number,
                    line: line + e.line_offset,
                    kind: kind.clone(),
                    message: e.message,
                })?;
                pending_workloads.push((pos, doc_text, parsed));
                continue;
            }
            let Some(resource) = Resource::from_kind(&kind) else {
                return Err(SimError::UnknownKind {
                    origin: origin.to_string(),
                    document: pos.number,
                    line: kind_line(&doc_text).map_or(line, |l| line + l),
                    kind,
                    supported: supported_kinds(),
                });
            };
            normalize_quantities(&mut doc);
            let api_version = doc.get("apiVersion").and_then(Value::as_str).unwrap_or("");
            if api_version != resource.api_version() {
                return Err(invalid(format!(
                    "{kind} needs apiVersion: {}, not `{api_version}`",
                    resource.api_version()
                )));
            }
            validate(resource, &doc).map_err(&invalid)?;
            scenario.insert(resource, doc, now, pos).map_err(&invalid)?;
        }
        scenario.add_implicit_namespaces(now);
        for (pos, logs) in pending_logs {
            scenario
                .add_logs(logs)
                .map_err(|message| SimError::Invalid {
                    origin: origin.to_string(),
                    document: pos.number,
                    line: pos.line,
                    kind: LOGS_KIND.to_string(),
                    message,
                })?;
        }
        for (pos, doc_text, doc) in pending_workloads {
            let (key, w) =
                workload::load::resolve(doc, &doc_text, &scenario.objects).map_err(|e| {
                    SimError::Invalid {
                        origin: origin.to_string(),
                        document: pos.number,
                        line: pos.line + e.line_offset,
                        kind: WORKLOAD_KIND.to_string(),
                        message: e.message,
                    }
                })?;
            if scenario.workloads.contains_key(&key) {
                return Err(SimError::Invalid {
                    origin: origin.to_string(),
                    document: pos.number,
                    line: pos.line,
                    kind: WORKLOAD_KIND.to_string(),
                    message: format!(
                        "pod {}/{} already has a PodWorkload earlier in the file",
                        key.0, key.1
                    ),
                });
            }
            scenario.workloads.insert(key, w);
        }
        Ok(scenario)
    }

    /// Fill in what the API server would (uid, resourceVersion, creationTimestamp, namespace)
    /// and store the object.
    fn insert(
        &mut self,
        resource: Resource,
        mut doc: Value,
        now: Timestamp,
        pos: DocPos,
    ) -> Result<(), String> {
        let Some(obj) = doc.as_object_mut() else {
            return Err("a document must be a mapping".into());
        };
        let meta = obj
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        let Some(meta) = meta.as_object_mut() else {
            return Err("metadata must be a mapping".into());
        };
        if resource.namespaced() {
            if meta
                .get("namespace")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                meta.insert("namespace".into(), "default".into());
            }
        } else {
            // Cluster-scoped objects have no namespace; the real server drops one if given.
            meta.remove("namespace");
        }
        let mut name = meta
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if name.is_empty() {
            if resource != Resource::Events {
                return Err("metadata.name is required".into());
            }
            // Events are rarely named by hand; make one the way the kubelet does.
            let target = obj
                .get("involvedObject")
                .and_then(|o| o.get("name"))
                .and_then(Value::as_str)
                .unwrap_or("event");
            name = format!("{target}.{:016x}", fnv(&format!("{target}/{}", pos.number)));
        }
        let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
            return Err("metadata must be a mapping".into());
        };
        meta.insert("name".into(), name.clone().into());
        let ns = if resource.namespaced() {
            meta.get("namespace")
                .and_then(Value::as_str)
                .unwrap_or("default")
                .to_string()
        } else {
            String::new()
        };
        if !meta.contains_key("uid") {
            meta.insert("uid".into(), fake_uid(resource.kind(), &ns, &name).into());
        }
        self.resource_version += 1;
        if !meta.contains_key("resourceVersion") {
            meta.insert(
                "resourceVersion".into(),
                self.resource_version.to_string().into(),
            );
        }
        if !meta.contains_key("creationTimestamp") {
            meta.insert("creationTimestamp".into(), rfc3339(now).into());
        }
        if resource == Resource::Namespaces && obj.get("status").is_none() {
            obj.insert("status".into(), serde_json::json!({"phase": "Active"}));
        }
        let objects = self.objects.entry(resource).or_default();
        if objects.contains_key(&(ns.clone(), name.clone())) {
            let what = if ns.is_empty() {
                name
            } else {
                format!("{ns}/{name}")
            };
            return Err(format!(
                "a {} named {what} is already defined earlier in the file",
                resource.kind()
            ));
        }
        objects.insert((ns, name), doc);
        Ok(())
    }

    /// Namespaces used by objects but never declared exist implicitly, as does `default`.
    fn add_implicit_namespaces(&mut self, now: Timestamp) {
        let mut used: BTreeSet<String> = BTreeSet::from(["default".to_string()]);
        for (resource, objects) in &self.objects {
            if resource.namespaced() {
                used.extend(objects.keys().map(|(ns, _)| ns.clone()));
            }
        }
        for ns in used {
            let declared = self
                .objects
                .get(&Resource::Namespaces)
                .is_some_and(|m| m.contains_key(&(String::new(), ns.clone())));
            if !declared {
                let doc = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
                // Cannot fail: the document is well-formed and the name was just checked as new.
                let _ = self.insert(
                    Resource::Namespaces,
                    doc,
                    now,
                    DocPos { number: 0, line: 0 },
                );
            }
        }
    }

    fn add_logs(&mut self, logs: PodLogsDoc) -> Result<(), String> {
        let ns = logs.metadata.namespace.unwrap_or_else(|| "default".into());
        let pod_name = logs.metadata.name;
        let Some(pod) = self
            .objects
            .get(&Resource::Pods)
            .and_then(|m| m.get(&(ns.clone(), pod_name.clone())))
        else {
            return Err(format!(
                "PodLogs names pod {ns}/{pod_name}, but no Pod document declares it; check metadata.name and metadata.namespace"
            ));
        };
        let (containers, init) = container_names(pod);
        let container = match logs.container {
            Some(c) if containers.contains(&c) || init.contains(&c) => c,
            Some(c) => {
                return Err(format!(
                    "pod {ns}/{pod_name} has no container `{c}`; its containers are [{}]",
                    containers.join(" ")
                ));
            }
            None if containers.len() == 1 => containers[0].clone(),
            None => {
                return Err(format!(
                    "pod {ns}/{pod_name} has several containers; add `container:` naming one of [{}]",
                    containers.join(" ")
                ));
            }
        };
        self.logs.insert(
            LogKey {
                namespace: ns,
                pod: pod_name,
                container,
                previous: logs.previous,
            },
            logs.text,
        );
        Ok(())
    }
}

/// The names of a pod's containers and init containers.
pub(crate) fn container_names(pod: &Value) -> (Vec<String>, Vec<String>) {
    let names = |key: &str| -> Vec<String> {
        pod.pointer(&format!("/spec/{key}"))
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    (names("containers"), names("initContainers"))
}

fn supported_kinds() -> String {
    let mut kinds: Vec<String> = Resource::ALL
        .iter()
        .map(|r| format!("{} ({})", r.kind(), r.api_version()))
        .collect();
    kinds.push(format!("{LOGS_KIND} ({LOGS_API_VERSION})"));
    kinds.push(format!("{WORKLOAD_KIND} ({LOGS_API_VERSION})"));
    kinds.join(", ")
}

/// Deserialize into the k8s-openapi type so typos and wrong types surface at load time (and
/// patched objects are checked the same way).
pub(crate) fn validate(resource: Resource, doc: &Value) -> Result<(), String> {
    use k8s_openapi::api::{apps::v1 as apps, batch::v1 as batch, core::v1 as core};
    let v = doc.clone();
    let r = match resource {
        Resource::Pods => serde_json::from_value::<core::Pod>(v).map(drop),
        Resource::Events => serde_json::from_value::<core::Event>(v).map(drop),
        Resource::Nodes => serde_json::from_value::<core::Node>(v).map(drop),
        Resource::Namespaces => serde_json::from_value::<core::Namespace>(v).map(drop),
        Resource::ConfigMaps => serde_json::from_value::<core::ConfigMap>(v).map(drop),
        Resource::Deployments => serde_json::from_value::<apps::Deployment>(v).map(drop),
        Resource::ReplicaSets => serde_json::from_value::<apps::ReplicaSet>(v).map(drop),
        Resource::Jobs => serde_json::from_value::<batch::Job>(v).map(drop),
        Resource::CronJobs => serde_json::from_value::<batch::CronJob>(v).map(drop),
        // k8s-openapi has no Gateway API types; check the shape the simulator reads.
        Resource::HttpRoutes => return super::resources::validate_http_route(doc),
    };
    r.map_err(|e| e.to_string())
}
