//! A minimal deployment controller, run synchronously after every write that touches a
//! Deployment or one of its pods, so rollouts finish by the time the write is answered.
//!
//! What it does, in one pass: find the ReplicaSet whose template equals the Deployment's
//! (ignoring `pod-template-hash`), or create `NAME-HASH`; give it the next
//! `deployment.kubernetes.io/revision` unless it is already the newest (so `rollout undo`
//! reuses the old ReplicaSet with a new revision, as the real controller does); scale it to
//! `spec.replicas` and the others to 0; replace the pods of old ReplicaSets with Running,
//! ready pods of the new template; and write a status `kubectl rollout status` accepts.
//! There is no surge, no pacing and no pause: a rollout is one step.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde_json::{Value, json};

use super::manifest::{fnv, rfc3339};
use super::resources::Resource;
use super::store::Store;

const REVISION: &str = "deployment.kubernetes.io/revision";
const HASH_LABEL: &str = "pod-template-hash";
/// The alphabet Kubernetes uses for generated names (no vowels, no look-alikes).
const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// A template as the API server would store it, without `pod-template-hash`: round-tripping
/// through the typed struct drops the `creationTimestamp: null` and other empty fields kubectl
/// sends, so a rollback's template compares equal to the ReplicaSet it came from.
fn normalized_template(template: Option<&Value>) -> Value {
    let mut t = template.cloned().unwrap_or(Value::Null);
    if let Some(labels) = t
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(HASH_LABEL);
    }
    serde_json::from_value::<PodTemplateSpec>(t.clone())
        .ok()
        .and_then(|typed| serde_json::to_value(typed).ok())
        .unwrap_or(t)
}

/// A stable short name suffix from a hash, in the Kubernetes name alphabet.
fn suffix(mut h: u64, len: usize) -> String {
    let base = ALPHABET.len() as u64;
    (0..len)
        .map(|_| {
            let c = ALPHABET[(h % base) as usize] as char;
            h /= base;
            c
        })
        .collect()
}

fn revision(obj: &Value) -> u64 {
    obj.pointer("/metadata/annotations")
        .and_then(|a| a.get(REVISION))
        .and_then(Value::as_str)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn owned_by(obj: &Value, kind: &str, name: &str, uid: Option<&str>) -> bool {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| {
            refs.iter().any(|r| {
                r.get("kind").and_then(Value::as_str) == Some(kind)
                    && r.get("name").and_then(Value::as_str) == Some(name)
                    // Hand-written scenarios may leave the owner's uid out; trust the name then.
                    && match (uid, r.get("uid").and_then(Value::as_str)) {
                        (Some(want), Some(got)) => want == got,
                        _ => true,
                    }
            })
        })
}

fn owner_ref(kind: &str, obj: &Value) -> Value {
    json!([{
        "apiVersion": if kind == "Deployment" || kind == "ReplicaSet" { "apps/v1" } else { "v1" },
        "kind": kind,
        "name": obj.pointer("/metadata/name").cloned().unwrap_or(Value::Null),
        "uid": obj.pointer("/metadata/uid").cloned().unwrap_or(Value::Null),
        "controller": true,
        "blockOwnerDeletion": true,
    }])
}

/// The Deployment that (through a ReplicaSet) owns `pod`, if any.
pub(crate) fn deployment_of_pod(store: &Store, ns: &str, pod: &Value) -> Option<String> {
    let refs = pod.pointer("/metadata/ownerReferences")?.as_array()?;
    let rs_name = refs
        .iter()
        .find(|r| r.get("kind").and_then(Value::as_str) == Some("ReplicaSet"))?
        .get("name")?
        .as_str()?;
    let rs = store.get(Resource::ReplicaSets, ns, rs_name)?;
    let refs = rs.pointer("/metadata/ownerReferences")?.as_array()?;
    let d = refs
        .iter()
        .find(|r| r.get("kind").and_then(Value::as_str) == Some("Deployment"))?;
    d.get("name")?.as_str().map(str::to_string)
}

/// Bring Deployment `ns/name` to its spec: ReplicaSets, pods and status. A no-op if it is gone.
pub(crate) fn reconcile(store: &mut Store, ns: &str, name: &str, now: Timestamp) {
    let Some(mut deploy) = store.get(Resource::Deployments, ns, name).cloned() else {
        return;
    };
    let uid = deploy
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .map(str::to_string);
    let replicas = deploy
        .pointer("/spec/replicas")
        .and_then(Value::as_u64)
        .unwrap_or(1);
    let template = normalized_template(deploy.pointer("/spec/template"));
    let owned: Vec<(String, Value)> = store
        .list(Resource::ReplicaSets, Some(ns))
        .filter(|(_, rs)| owned_by(rs, "Deployment", name, uid.as_deref()))
        .map(|((_, n), rs)| (n.clone(), rs.clone()))
        .collect();
    let max_revision = owned.iter().map(|(_, rs)| revision(rs)).max().unwrap_or(0);
    let current = owned
        .iter()
        .find(|(_, rs)| normalized_template(rs.pointer("/spec/template")) == template)
        .cloned();
    let (rs_name, mut rs) = match current {
        Some((n, rs)) => (n, rs),
        None => new_replica_set(&deploy, name, ns, &template, now),
    };
    let rev = match revision(&rs) {
        r if r != 0 && r == max_revision => r,
        _ => max_revision + 1,
    };
    let hash = rs
        .pointer("/metadata/labels")
        .and_then(|l| l.get(HASH_LABEL))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();

    // Old ReplicaSets go to zero, with their pods.
    for (old_name, mut old) in owned.into_iter().filter(|(n, _)| *n != rs_name) {
        old["spec"]["replicas"] = 0.into();
        old["status"] = json!({"replicas": 0, "observedGeneration": old.pointer("/metadata/generation").cloned().unwrap_or(1.into())});
        old["metadata"]["resourceVersion"] = store.next_resource_version().to_string().into();
        store.put(Resource::ReplicaSets, ns, &old_name, old);
    }
    let pods: Vec<(String, Value)> = store
        .list(Resource::Pods, Some(ns))
        .filter(|(_, p)| deployment_of_pod(store, ns, p).as_deref() == Some(name))
        .map(|((_, n), p)| (n.clone(), p.clone()))
        .collect();
    // New pods keep serving what the old ones served behind the pod proxy.
    let workload = pods
        .iter()
        .find_map(|(n, _)| store.workload(ns, n).cloned());
    let node = pods
        .iter()
        .find_map(|(_, p)| p.pointer("/spec/nodeName").cloned())
        .unwrap_or(Value::Null);
    let mut keep = Vec::new();
    for (pod_name, pod) in pods {
        if owned_by(&pod, "ReplicaSet", &rs_name, None) && (keep.len() as u64) < replicas {
            keep.push(pod);
        } else {
            store.remove(Resource::Pods, ns, &pod_name);
        }
    }
    let mut salt = store.resource_version();
    while (keep.len() as u64) < replicas {
        salt += 1;
        let pod_name = format!("{rs_name}-{}", suffix(fnv(&format!("{rs_name}/{salt}")), 5));
        if store.get(Resource::Pods, ns, &pod_name).is_some() {
            continue;
        }
        let rv = store.next_resource_version();
        let pod = new_pod(rv, &rs, &pod_name, ns, &node, now);
        if let Some(w) = &workload {
            store.set_workload(ns, &pod_name, w.clone());
        }
        store.put(Resource::Pods, ns, &pod_name, pod.clone());
        keep.push(pod);
    }
    let ready = keep.iter().filter(|p| pod_ready(p)).count() as u64;

    rs["metadata"]["annotations"][REVISION] = rev.to_string().into();
    rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] =
        replicas.to_string().into();
    rs["spec"]["replicas"] = replicas.into();
    rs["status"] = json!({
        "replicas": replicas, "fullyLabeledReplicas": replicas, "readyReplicas": ready,
        "availableReplicas": ready, "observedGeneration": rs.pointer("/metadata/generation").cloned().unwrap_or(1.into()),
    });
    rs["metadata"]["resourceVersion"] = store.next_resource_version().to_string().into();
    store.put(Resource::ReplicaSets, ns, &rs_name, rs);

    let generation = deploy
        .pointer("/metadata/generation")
        .cloned()
        .unwrap_or(1.into());
    deploy["metadata"]["annotations"][REVISION] = rev.to_string().into();
    let ts = rfc3339(now);
    let available = ready >= replicas;
    deploy["status"] = json!({
        "observedGeneration": generation,
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": ready,
        "availableReplicas": ready,
        "conditions": [
            {"type": "Available", "status": if available { "True" } else { "False" },
             "reason": if available { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" },
             "message": if available { "Deployment has minimum availability." } else { "Deployment does not have minimum availability." },
             "lastUpdateTime": ts, "lastTransitionTime": ts},
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
             "message": format!("ReplicaSet \"{rs_name}\" has successfully progressed."),
             "lastUpdateTime": ts, "lastTransitionTime": ts},
        ],
    });
    if replicas > ready {
        deploy["status"]["unavailableReplicas"] = (replicas - ready).into();
    }
    deploy["metadata"]["resourceVersion"] = store.next_resource_version().to_string().into();
    tracing::debug!(%ns, deployment = %name, replicaset = %rs_name, revision = rev, %hash, "simulated rollout");
    store.put(Resource::Deployments, ns, name, deploy);
}

fn new_replica_set(
    deploy: &Value,
    name: &str,
    ns: &str,
    template: &Value,
    now: Timestamp,
) -> (String, Value) {
    let hash = suffix(fnv(&template.to_string()), 10);
    let rs_name = format!("{name}-{hash}");
    let mut labels = template
        .pointer("/metadata/labels")
        .cloned()
        .unwrap_or_else(|| json!({}));
    labels[HASH_LABEL] = hash.clone().into();
    let mut selector = deploy
        .pointer("/spec/selector")
        .cloned()
        .unwrap_or_else(|| json!({}));
    selector["matchLabels"][HASH_LABEL] = hash.into();
    let mut tpl = template.clone();
    tpl["metadata"]["labels"] = labels.clone();
    let rs = json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": rs_name,
            "namespace": ns,
            "uid": super::manifest::fake_uid("ReplicaSet", ns, &rs_name),
            "creationTimestamp": rfc3339(now),
            "generation": 1,
            "labels": labels,
            "annotations": {},
            "ownerReferences": owner_ref("Deployment", deploy),
        },
        "spec": {"replicas": 0, "selector": selector, "template": tpl},
    });
    (rs_name, rs)
}

fn new_pod(
    resource_version: u64,
    rs: &Value,
    pod_name: &str,
    ns: &str,
    node: &Value,
    now: Timestamp,
) -> Value {
    let ts = rfc3339(now);
    let template = rs.pointer("/spec/template").cloned().unwrap_or(Value::Null);
    let mut spec = template.get("spec").cloned().unwrap_or_else(|| json!({}));
    if !node.is_null() {
        spec["nodeName"] = node.clone();
    }
    let statuses: Vec<Value> = spec
        .get("containers")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .map(|c| {
            json!({
                "name": c.get("name").cloned().unwrap_or(Value::Null),
                "image": c.get("image").cloned().unwrap_or(Value::Null),
                "imageID": "",
                "ready": true, "started": true, "restartCount": 0,
                "state": {"running": {"startedAt": ts}},
            })
        })
        .collect();
    let n = fnv(pod_name);
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name,
            "namespace": ns,
            "uid": super::manifest::fake_uid("Pod", ns, pod_name),
            "creationTimestamp": ts,
            "resourceVersion": resource_version.to_string(),
            "labels": template.pointer("/metadata/labels").cloned().unwrap_or_else(|| json!({})),
            "annotations": template.pointer("/metadata/annotations").cloned().unwrap_or_else(|| json!({})),
            "ownerReferences": owner_ref("ReplicaSet", rs),
        },
        "spec": spec,
        "status": {
            "phase": "Running",
            "podIP": format!("10.244.{}.{}", (n >> 8) % 250, n % 250 + 2),
            "startTime": ts,
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": ts},
                {"type": "Initialized", "status": "True", "lastTransitionTime": ts},
                {"type": "ContainersReady", "status": "True", "lastTransitionTime": ts},
                {"type": "Ready", "status": "True", "lastTransitionTime": ts},
            ],
            "containerStatuses": statuses,
        },
    })
}

fn pod_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some("Ready")
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}
