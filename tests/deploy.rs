//! The shipped manifests parse as real Kubernetes objects and grant no write access to
//! cluster objects.

use k8s_openapi::api::rbac::v1::{ClusterRole, Role};
use serde::Deserialize;

#[test]
fn rbac_is_read_only_and_parses() {
    let text = include_str!("../deploy/rbac.yaml");
    let mut roles = 0;
    for doc in serde_norway::Deserializer::from_str(text) {
        let value = serde_norway::Value::deserialize(doc).expect("rbac.yaml parses");
        let kind = value
            .get("kind")
            .and_then(|k| k.as_str())
            .unwrap_or_default()
            .to_string();
        let rules = match kind.as_str() {
            "Role" => {
                serde_norway::from_value::<Role>(value)
                    .expect("a valid Role")
                    .rules
            }
            "ClusterRole" => {
                serde_norway::from_value::<ClusterRole>(value)
                    .expect("a valid ClusterRole")
                    .rules
            }
            _ => continue,
        };
        roles += 1;
        for rule in rules.unwrap_or_default() {
            // POSTing a golden prompt through the pod proxy is `create` on `pods/proxy`; it
            // changes nothing in the cluster, so it is the one non-read verb allowed.
            let proxy_only = rule.resources.as_deref() == Some(&["pods/proxy".to_string()][..]);
            for verb in &rule.verbs {
                assert!(
                    ["get", "list", "watch"].contains(&verb.as_str())
                        || (proxy_only && verb == "create"),
                    "{kind} grants `{verb}` on {:?}",
                    rule.resources
                );
            }
            assert!(
                !rule
                    .resources
                    .unwrap_or_default()
                    .iter()
                    .any(|r| r == "*" || r == "secrets"),
                "{kind} is too broad"
            );
        }
    }
    assert_eq!(roles, 2, "one Role and one ClusterRole");
}
