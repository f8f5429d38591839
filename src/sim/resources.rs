//! The catalogue of resource types the simulator serves: names, groups, scope, short names;
//! and the HTTPRoute shape check, since k8s-openapi has no Gateway API types to validate with.

use serde_json::Value;

/// A resource type the simulated API server knows. One variant per Kubernetes kind served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Resource {
    Pods,
    Events,
    Nodes,
    Namespaces,
    ConfigMaps,
    Deployments,
    ReplicaSets,
    Jobs,
    CronJobs,
    /// Gateway API `HTTPRoute` (`gateway.networking.k8s.io/v1`), where canary weights live.
    HttpRoutes,
}

impl Resource {
    /// Every served resource, in discovery order.
    pub(crate) const ALL: [Resource; 10] = [
        Resource::Pods,
        Resource::Events,
        Resource::Nodes,
        Resource::Namespaces,
        Resource::ConfigMaps,
        Resource::Deployments,
        Resource::ReplicaSets,
        Resource::Jobs,
        Resource::CronJobs,
        Resource::HttpRoutes,
    ];

    /// The API group ("" for the core group).
    pub(crate) fn group(self) -> &'static str {
        match self {
            Resource::Deployments | Resource::ReplicaSets => "apps",
            Resource::Jobs | Resource::CronJobs => "batch",
            Resource::HttpRoutes => GATEWAY,
            _ => "",
        }
    }

    /// The `apiVersion` string objects of this resource carry.
    pub(crate) fn api_version(self) -> &'static str {
        match self.group() {
            "apps" => "apps/v1",
            "batch" => "batch/v1",
            GATEWAY => "gateway.networking.k8s.io/v1",
            _ => "v1",
        }
    }

    pub(crate) fn plural(self) -> &'static str {
        match self {
            Resource::Pods => "pods",
            Resource::Events => "events",
            Resource::Nodes => "nodes",
            Resource::Namespaces => "namespaces",
            Resource::ConfigMaps => "configmaps",
            Resource::Deployments => "deployments",
            Resource::ReplicaSets => "replicasets",
            Resource::Jobs => "jobs",
            Resource::CronJobs => "cronjobs",
            Resource::HttpRoutes => "httproutes",
        }
    }

    pub(crate) fn singular(self) -> &'static str {
        match self {
            Resource::Pods => "pod",
            Resource::Events => "event",
            Resource::Nodes => "node",
            Resource::Namespaces => "namespace",
            Resource::ConfigMaps => "configmap",
            Resource::Deployments => "deployment",
            Resource::ReplicaSets => "replicaset",
            Resource::Jobs => "job",
            Resource::CronJobs => "cronjob",
            Resource::HttpRoutes => "httproute",
        }
    }

    pub(crate) fn kind(self) -> &'static str {
        match self {
            Resource::Pods => "Pod",
            Resource::Events => "Event",
            Resource::Nodes => "Node",
            Resource::Namespaces => "Namespace",
            Resource::ConfigMaps => "ConfigMap",
            Resource::Deployments => "Deployment",
            Resource::ReplicaSets => "ReplicaSet",
            Resource::Jobs => "Job",
            Resource::CronJobs => "CronJob",
            Resource::HttpRoutes => "HTTPRoute",
        }
    }

    pub(crate) fn short_names(self) -> &'static [&'static str] {
        match self {
            Resource::Pods => &["po"],
            Resource::Events => &["ev"],
            Resource::Nodes => &["no"],
            Resource::Namespaces => &["ns"],
            Resource::ConfigMaps => &["cm"],
            Resource::Deployments => &["deploy"],
            Resource::ReplicaSets => &["rs"],
            Resource::Jobs | Resource::HttpRoutes => &[],
            Resource::CronJobs => &["cj"],
        }
    }

    /// Discovery categories; `all` is what `kubectl get all` expands.
    pub(crate) fn categories(self) -> &'static [&'static str] {
        match self {
            Resource::Pods
            | Resource::Deployments
            | Resource::ReplicaSets
            | Resource::Jobs
            | Resource::CronJobs => &["all"],
            _ => &[],
        }
    }

    pub(crate) fn namespaced(self) -> bool {
        !matches!(self, Resource::Nodes | Resource::Namespaces)
    }

    /// Find a resource by its URL segment within a group.
    pub(crate) fn from_plural(group: &str, plural: &str) -> Option<Resource> {
        Resource::ALL
            .into_iter()
            .find(|r| r.group() == group && r.plural() == plural)
    }

    /// Find a resource by the `apiVersion` and `kind` of a manifest.
    pub(crate) fn from_kind(kind: &str) -> Option<Resource> {
        Resource::ALL.into_iter().find(|r| r.kind() == kind)
    }
}

/// The group/versions served under `/apis`, besides the core `v1`.
pub(crate) const GROUPS: [&str; 3] = ["apps", "batch", GATEWAY];

/// The Gateway API group.
pub(crate) const GATEWAY: &str = "gateway.networking.k8s.io";

/// Check an HTTPRoute has the shape the simulator and Firebreak read (k8s-openapi has no type).
pub(crate) fn validate_http_route(doc: &Value) -> Result<(), String> {
    let spec = doc.get("spec").unwrap_or(&Value::Null);
    if !(spec.is_null() || spec.is_object()) {
        return Err("spec: must be an object".into());
    }
    let rules = spec.get("rules").unwrap_or(&Value::Null);
    let rules = match rules {
        Value::Null => return Ok(()),
        Value::Array(r) => r,
        _ => return Err("spec.rules: must be a list".into()),
    };
    for (i, rule) in rules.iter().enumerate() {
        let refs = rule.get("backendRefs").unwrap_or(&Value::Null);
        let refs = match refs {
            Value::Null => continue,
            Value::Array(r) => r,
            _ => return Err(format!("spec.rules[{i}].backendRefs: must be a list")),
        };
        for (j, r) in refs.iter().enumerate() {
            if r.get("name").and_then(Value::as_str).is_none() {
                return Err(format!(
                    "spec.rules[{i}].backendRefs[{j}].name: Required value"
                ));
            }
            if let Some(w) = r.get("weight")
                && w.as_u64().is_none_or(|w| w > 1_000_000)
            {
                return Err(format!(
                    "spec.rules[{i}].backendRefs[{j}].weight: Invalid value: {w}: must be an integer between 0 and 1000000"
                ));
            }
        }
    }
    Ok(())
}
