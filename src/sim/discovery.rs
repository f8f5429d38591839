//! Discovery documents: `/version`, `/api`, `/apis` and the per-group resource lists kubectl
//! reads before anything else (a 404 on `/apis` is fatal for it). Verbs are what the
//! simulator serves: get, list, patch, update, delete (no create or watch).

use serde_json::{Value, json};

use super::resources::{GROUPS, Resource};

/// The Kubernetes version the simulator claims to be.
pub(crate) fn version() -> Value {
    json!({
        "major": "1",
        "minor": "34",
        "gitVersion": "v1.34.0",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-08-27T00:00:00Z",
        "goVersion": "go1.24.6",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// `/api`: the core group's versions.
pub(crate) fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn group(name: &str) -> Value {
    let gv = json!({"groupVersion": format!("{name}/v1"), "version": "v1"});
    json!({"name": name, "versions": [gv], "preferredVersion": gv})
}

/// `/apis`: the named groups.
pub(crate) fn group_list() -> Value {
    json!({
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": GROUPS.iter().map(|g| group(g)).collect::<Vec<_>>(),
    })
}

/// `/apis/GROUP`, or `None` for a group the simulator does not serve.
pub(crate) fn api_group(name: &str) -> Option<Value> {
    GROUPS.contains(&name).then(|| {
        let mut g = group(name);
        g["kind"] = "APIGroup".into();
        g["apiVersion"] = "v1".into();
        g
    })
}

/// `/api/v1` or `/apis/GROUP/v1`: the APIResourceList, or `None` for an unknown group.
pub(crate) fn resource_list(group: &str) -> Option<Value> {
    if !group.is_empty() && !GROUPS.contains(&group) {
        return None;
    }
    let mut resources = Vec::new();
    for r in Resource::ALL.into_iter().filter(|r| r.group() == group) {
        let mut entry = json!({
            "name": r.plural(),
            "singularName": r.singular(),
            "namespaced": r.namespaced(),
            "kind": r.kind(),
            "verbs": ["delete", "get", "list", "patch", "update"],
        });
        if !r.short_names().is_empty() {
            entry["shortNames"] = json!(r.short_names());
        }
        if !r.categories().is_empty() {
            entry["categories"] = json!(r.categories());
        }
        resources.push(entry);
        if r == Resource::Deployments {
            // kubectl scale finds the Scale kind's group/version here.
            resources.push(json!({
                "name": "deployments/scale", "singularName": "", "namespaced": true,
                "group": "autoscaling", "version": "v1", "kind": "Scale",
                "verbs": ["get", "patch", "update"],
            }));
        }
        if r == Resource::Pods {
            resources.push(json!({
                "name": "pods/log", "singularName": "", "namespaced": true, "kind": "Pod", "verbs": ["get"],
            }));
            // The real server lists the proxy's verbs as these, though the simulator's pods
            // only answer GET and POST.
            resources.push(json!({
                "name": "pods/proxy", "singularName": "", "namespaced": true, "kind": "PodProxyOptions",
                "verbs": ["create", "delete", "get", "patch", "update"],
            }));
        }
    }
    let group_version = if group.is_empty() {
        "v1".to_string()
    } else {
        format!("{group}/v1")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}
