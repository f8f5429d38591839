//! The object store behind the simulated API server, kept apart from HTTP routing: reads for
//! the GET handlers, and the few primitive writes PATCH, DELETE and the deployment controller use.

use std::collections::BTreeMap;

use serde_json::Value;

use super::resources::Resource;
use super::scenario::{LogKey, Scenario};
use super::workload::Workload;

/// Objects and logs, as loaded from a scenario. Lives behind a lock in the server.
#[derive(Debug)]
pub(crate) struct Store {
    objects: BTreeMap<Resource, BTreeMap<(String, String), Value>>,
    logs: BTreeMap<LogKey, String>,
    /// What each simulated pod serves behind the pod proxy, by (namespace, pod).
    workloads: BTreeMap<(String, String), Workload>,
    resource_version: u64,
}

impl Store {
    pub(crate) fn new(scenario: Scenario) -> Store {
        Store {
            objects: scenario.objects,
            logs: scenario.logs,
            workloads: scenario.workloads,
            resource_version: scenario.resource_version,
        }
    }

    /// The store-wide resourceVersion lists report.
    pub(crate) fn resource_version(&self) -> u64 {
        self.resource_version
    }

    /// Objects of `resource` in `namespace` (all namespaces when `None`), sorted by
    /// (namespace, name), each with its key.
    pub(crate) fn list(
        &self,
        resource: Resource,
        namespace: Option<&str>,
    ) -> impl Iterator<Item = (&(String, String), &Value)> {
        self.objects
            .get(&resource)
            .into_iter()
            .flat_map(|m| m.iter())
            .filter(move |((ns, _), _)| namespace.is_none_or(|want| want == ns))
    }

    /// One object; cluster-scoped resources use namespace "".
    pub(crate) fn get(&self, resource: Resource, namespace: &str, name: &str) -> Option<&Value> {
        self.objects
            .get(&resource)
            .and_then(|m| m.get(&(namespace.to_string(), name.to_string())))
    }

    /// The log text of one container, if the scenario has any.
    pub(crate) fn log(&self, key: &LogKey) -> Option<&str> {
        self.logs.get(key).map(String::as_str)
    }

    /// The workload of one pod, if the scenario gives it one.
    pub(crate) fn workload(&self, namespace: &str, pod: &str) -> Option<&Workload> {
        self.workloads
            .get(&(namespace.to_string(), pod.to_string()))
    }

    /// The next resourceVersion, for an object about to be written.
    pub(crate) fn next_resource_version(&mut self) -> u64 {
        self.resource_version += 1;
        self.resource_version
    }

    /// Store (create or replace) one object under its key.
    pub(crate) fn put(&mut self, resource: Resource, namespace: &str, name: &str, obj: Value) {
        self.objects
            .entry(resource)
            .or_default()
            .insert((namespace.to_string(), name.to_string()), obj);
    }

    /// Remove one object, returning it; a pod's workload goes with it.
    pub(crate) fn remove(
        &mut self,
        resource: Resource,
        namespace: &str,
        name: &str,
    ) -> Option<Value> {
        let key = (namespace.to_string(), name.to_string());
        if resource == Resource::Pods {
            self.workloads.remove(&key);
        }
        self.objects.get_mut(&resource).and_then(|m| m.remove(&key))
    }

    /// Give a (new) pod a workload, e.g. the one of the pod it replaces.
    pub(crate) fn set_workload(&mut self, namespace: &str, pod: &str, workload: Workload) {
        self.workloads
            .insert((namespace.to_string(), pod.to_string()), workload);
    }

    /// Test hook: the object to change in place (what a PATCH would do).
    #[cfg(test)]
    pub(crate) fn get_mut(
        &mut self,
        resource: Resource,
        namespace: &str,
        name: &str,
    ) -> Option<&mut Value> {
        self.objects
            .get_mut(&resource)
            .and_then(|m| m.get_mut(&(namespace.to_string(), name.to_string())))
    }
}
