//! The shipped manifests (`deploy/`) parse as real Kubernetes objects, grant read access plus
//! exactly the writes the shipped runbooks' actions make, and run Firebreak the way its state
//! and secrets need: one SQLite writer, a persistent volume, credentials from mounted files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use firebreak::config::Config;
use firebreak::runbook::Runbook;
use firebreak::runbook::actions::ActionSpec;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, Namespace, PersistentVolumeClaim, PodSpec, Probe, Service, ServiceAccount,
};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Deserialize;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Where Firebreak runs and who it is, as rbac.yaml and firebreak.yaml both say.
const NAMESPACE: &str = "firebreak";
const SERVICE_ACCOUNT: &str = "firebreak";
/// The read-only roles; everything that writes is in [`ACT_ROLE`].
const READ_ROLES: [&str; 2] = ["firebreak-read", "firebreak-nodes-read"];
const ACT_ROLE: &str = "firebreak-act";
/// Every chat secret Firebreak reads (each also as `NAME_FILE`).
const SECRETS: [&str; 6] = [
    "FIREBREAK_SLACK_BOT_TOKEN",
    "FIREBREAK_SLACK_SIGNING_SECRET",
    "FIREBREAK_SLACK_APP_TOKEN",
    "FIREBREAK_DISCORD_BOT_TOKEN",
    "FIREBREAK_DISCORD_APPLICATION_ID",
    "FIREBREAK_DISCORD_PUBLIC_KEY",
];
/// `firebreak serve --listen`'s default.
const DEFAULT_LISTEN_PORT: i32 = 8080;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One YAML document of a manifest file.
struct Manifest {
    file: String,
    kind: String,
    value: serde_norway::Value,
}

impl Manifest {
    fn name(&self) -> &str {
        self.value["metadata"]["name"].as_str().unwrap_or_default()
    }

    fn typed<T: DeserializeOwned>(&self) -> T {
        serde_norway::from_value(self.value.clone()).unwrap_or_else(|e| {
            panic!(
                "{}: {} `{}` is not a valid {}: {e}",
                self.file,
                self.kind,
                self.name(),
                std::any::type_name::<T>()
            )
        })
    }
}

/// The manifest files kustomize applies: `deploy/*.yaml` but the kustomization itself. Files
/// in subdirectories (the Slack app manifest, ...) are not Kubernetes objects.
fn manifest_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("deploy"))
        .expect("deploy/ exists")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .filter(|p| p.file_stem().and_then(|s| s.to_str()) != Some("kustomization"))
        .collect();
    files.sort();
    files
}

fn documents(path: &Path) -> Vec<Manifest> {
    let file = path.file_name().unwrap().to_string_lossy().into_owned();
    let text = std::fs::read_to_string(path).expect("a readable manifest");
    let mut docs = Vec::new();
    for doc in serde_norway::Deserializer::from_str(&text) {
        let value = serde_norway::Value::deserialize(doc)
            .unwrap_or_else(|e| panic!("{file} is not valid YAML: {e}"));
        if value.is_null() {
            // A comment-only document, e.g. a header before the first `---`.
            continue;
        }
        let kind = value["kind"]
            .as_str()
            .unwrap_or_else(|| panic!("{file}: a document without `kind`"))
            .to_string();
        docs.push(Manifest {
            file: file.clone(),
            kind,
            value,
        });
    }
    docs
}

fn manifests() -> Vec<Manifest> {
    let docs: Vec<Manifest> = manifest_files().iter().flat_map(|p| documents(p)).collect();
    assert!(!docs.is_empty(), "deploy/ ships manifests");
    docs
}

fn all<T: DeserializeOwned>(docs: &[Manifest], kind: &str) -> Vec<T> {
    docs.iter()
        .filter(|m| m.kind == kind)
        .map(|m| m.typed())
        .collect()
}

fn one<T: DeserializeOwned>(docs: &[Manifest], kind: &str) -> T {
    let mut found = all::<T>(docs, kind);
    assert_eq!(found.len(), 1, "exactly one {kind} in deploy/");
    found.remove(0)
}

/// Parse as `T` and write it back: what comes back must be what was written, so a misspelt or
/// misplaced field (which the typed parse alone would drop silently) fails here.
fn round_trips<T: DeserializeOwned + Serialize>(m: &Manifest) {
    let typed: T = m.typed();
    let back = serde_json::to_value(&typed).expect("serializes");
    let written = serde_json::to_value(&m.value).expect("YAML as JSON");
    assert_eq!(
        back,
        written,
        "{}: {} `{}` has fields {} does not know (typo or wrong level?)",
        m.file,
        m.kind,
        m.name(),
        std::any::type_name::<T>()
    );
}

#[test]
fn every_manifest_parses_as_its_kubernetes_type() {
    let docs = manifests();
    for m in &docs {
        let namespaced = match m.kind.as_str() {
            "Namespace" => {
                round_trips::<Namespace>(m);
                false
            }
            "ClusterRole" => {
                round_trips::<ClusterRole>(m);
                false
            }
            "ClusterRoleBinding" => {
                round_trips::<ClusterRoleBinding>(m);
                false
            }
            "ServiceAccount" => {
                round_trips::<ServiceAccount>(m);
                true
            }
            "Role" => {
                round_trips::<Role>(m);
                true
            }
            "RoleBinding" => {
                round_trips::<RoleBinding>(m);
                true
            }
            "ConfigMap" => {
                round_trips::<ConfigMap>(m);
                true
            }
            "PersistentVolumeClaim" => {
                round_trips::<PersistentVolumeClaim>(m);
                true
            }
            "Deployment" => {
                round_trips::<Deployment>(m);
                true
            }
            "Service" => {
                round_trips::<Service>(m);
                true
            }
            // Secrets in particular: credentials are created by hand, never shipped.
            other => panic!(
                "{}: `{other}` is not a kind deploy/ is expected to ship",
                m.file
            ),
        };
        let namespace = m.value["metadata"]["namespace"].as_str();
        if namespaced {
            assert!(
                namespace.is_some(),
                "{}: {} `{}` names no namespace; kubectl would put it wherever the context points",
                m.file,
                m.kind,
                m.name()
            );
        } else {
            assert!(
                namespace.is_none(),
                "{}: {} is cluster-scoped",
                m.file,
                m.kind
            );
        }
    }
    let kinds: BTreeSet<&str> = docs.iter().map(|m| m.kind.as_str()).collect();
    for kind in [
        "Namespace",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "PersistentVolumeClaim",
        "Deployment",
        "Service",
    ] {
        assert!(kinds.contains(kind), "deploy/ ships a {kind}");
    }
}

/// The rules of every Role and ClusterRole, by name.
fn roles(docs: &[Manifest]) -> BTreeMap<String, (Option<String>, Vec<PolicyRule>)> {
    let mut roles = BTreeMap::new();
    for role in all::<Role>(docs, "Role") {
        let name = role.metadata.name.clone().unwrap_or_default();
        let ns = role.metadata.namespace.clone();
        assert!(
            roles
                .insert(name.clone(), (ns, role.rules.unwrap_or_default()))
                .is_none(),
            "two roles called {name}"
        );
    }
    for role in all::<ClusterRole>(docs, "ClusterRole") {
        let name = role.metadata.name.clone().unwrap_or_default();
        assert!(
            roles
                .insert(name.clone(), (None, role.rules.unwrap_or_default()))
                .is_none(),
            "two roles called {name}"
        );
    }
    roles
}

#[test]
fn rbac_reads_everywhere_and_writes_only_in_the_act_role() {
    let docs = manifests();
    let roles = roles(&docs);
    let names: BTreeSet<&str> = roles.keys().map(String::as_str).collect();
    let mut expected: BTreeSet<&str> = READ_ROLES.into_iter().collect();
    expected.insert(ACT_ROLE);
    assert_eq!(names, expected, "the roles deploy/ ships");
    for (name, (_, rules)) in &roles {
        assert!(!rules.is_empty(), "{name} grants nothing");
        for rule in rules {
            let resources = rule.resources.clone().unwrap_or_default();
            let groups = rule.api_groups.clone().unwrap_or_default();
            assert!(
                rule.non_resource_urls.is_none(),
                "{name} grants non-resource URLs"
            );
            assert!(
                !resources.is_empty() && !groups.is_empty() && !rule.verbs.is_empty(),
                "{name}: a rule must name its groups, resources and verbs"
            );
            for word in resources.iter().chain(&groups).chain(&rule.verbs) {
                assert!(!word.contains('*'), "{name} uses a wildcard: {rule:?}");
            }
            assert!(
                !resources
                    .iter()
                    .any(|r| r == "secrets" || r.starts_with("secrets/")),
                "{name} grants access to secrets"
            );
            for bad in ["escalate", "bind", "impersonate"] {
                assert!(!rule.verbs.iter().any(|v| v == bad), "{name} grants {bad}");
            }
            if READ_ROLES.contains(&name.as_str()) {
                // POSTing a golden prompt through the pod proxy is `create` on `pods/proxy`;
                // it changes nothing in the cluster, so it is the one non-read verb allowed.
                let proxy_only = resources == ["pods/proxy"];
                for verb in &rule.verbs {
                    assert!(
                        ["get", "list", "watch"].contains(&verb.as_str())
                            || (proxy_only && verb == "create"),
                        "{name} grants `{verb}` on {resources:?}; writes belong in {ACT_ROLE}"
                    );
                }
            }
        }
    }
}

#[test]
fn every_role_is_bound_to_firebreaks_service_account_only() {
    let docs = manifests();
    let roles = roles(&docs);
    let mut bound = BTreeSet::new();
    let bindings = all::<RoleBinding>(&docs, "RoleBinding")
        .into_iter()
        .map(|b| {
            (
                b.metadata.namespace,
                b.role_ref.kind,
                b.role_ref.name,
                b.subjects,
            )
        })
        .chain(
            all::<ClusterRoleBinding>(&docs, "ClusterRoleBinding")
                .into_iter()
                .map(|b| (None, b.role_ref.kind, b.role_ref.name, b.subjects)),
        );
    for (namespace, kind, name, subjects) in bindings {
        let (role_ns, _) = roles
            .get(&name)
            .unwrap_or_else(|| panic!("a binding refers to {kind} `{name}`, which is not shipped"));
        if kind == "Role" {
            assert_eq!(&namespace, role_ns, "{name}'s binding is in its namespace");
        } else {
            assert!(role_ns.is_none(), "{name} is bound as a ClusterRole");
        }
        let subjects = subjects.unwrap_or_default();
        assert_eq!(subjects.len(), 1, "{name} is bound to one subject");
        let s = &subjects[0];
        assert_eq!(
            (s.kind.as_str(), s.name.as_str(), s.namespace.as_deref()),
            ("ServiceAccount", SERVICE_ACCOUNT, Some(NAMESPACE)),
            "{name} is bound to Firebreak's ServiceAccount"
        );
        bound.insert(name);
    }
    let all_roles: BTreeSet<String> = roles.keys().cloned().collect();
    assert_eq!(bound, all_roles, "every shipped role is bound");
    let accounts = all::<ServiceAccount>(&docs, "ServiceAccount");
    assert!(
        accounts.iter().any(|a| {
            a.metadata.name.as_deref() == Some(SERVICE_ACCOUNT)
                && a.metadata.namespace.as_deref() == Some(NAMESPACE)
        }),
        "the ServiceAccount the bindings name is shipped"
    );
}

/// One thing RBAC allows: in a namespace, `verb` on `group`/`resource`, on one named object or
/// (`None`) on all of them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Grant {
    namespace: String,
    group: String,
    resource: String,
    verb: String,
    name: Option<String>,
}

fn grant(ns: &str, group: &str, resource: &str, verb: &str, name: Option<&str>) -> Grant {
    Grant {
        namespace: ns.into(),
        group: group.into(),
        resource: resource.into(),
        verb: verb.into(),
        name: name.map(Into::into),
    }
}

/// The shipped runbooks, parsed the way Firebreak parses them.
fn runbooks() -> Vec<Runbook> {
    let mut runbooks = Vec::new();
    for entry in std::fs::read_dir(repo().join("runbooks")).expect("runbooks/ exists") {
        let path = entry.unwrap().path();
        if !matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let runbook = Runbook::from_yaml(&text, &path.display().to_string())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        runbooks.push(runbook);
    }
    assert!(!runbooks.is_empty(), "runbooks/ ships a runbook");
    runbooks
}

/// The writes (and the reads the read-only roles do not cover) each action kind makes, from
/// the calls in `src/runbook/actions/`. Every call is first sent with `dryRun=All`, which RBAC
/// checks with the same verb. No wildcard arm: a new action kind must say what it needs.
fn needs(runbook: &Runbook, action: &ActionSpec) -> Vec<Grant> {
    let ns = runbook.namespace.as_str();
    let deployment = Some(runbook.deployment.as_str());
    match action {
        // JSON patch of spec.template (reading replicasets: firebreak-read).
        ActionSpec::RolloutUndo(_) => vec![grant(ns, "apps", "deployments", "patch", deployment)],
        // Strategic-merge patch of the restartedAt annotation.
        ActionSpec::RolloutRestart(_) => {
            vec![grant(ns, "apps", "deployments", "patch", deployment)]
        }
        // JSON patch through the scale subresource; the plan reads the deployment itself.
        ActionSpec::Scale(_) => vec![grant(ns, "apps", "deployments/scale", "patch", deployment)],
        // JSON patch of the active key (reading configmaps: firebreak-read).
        ActionSpec::PromptRollback(p) => {
            vec![grant(ns, "", "configmaps", "patch", Some(&p.configmap))]
        }
        // GET, then JSON patch of the weights, of a Gateway API HTTPRoute.
        ActionSpec::TrafficShift(t) => ["get", "patch"]
            .into_iter()
            .map(|verb| {
                grant(
                    ns,
                    "gateway.networking.k8s.io",
                    "httproutes",
                    verb,
                    Some(&t.route),
                )
            })
            .collect(),
        // Pod names are generated: RBAC cannot pin this one by name.
        ActionSpec::DeletePod(_) => vec![grant(ns, "", "pods", "delete", None)],
    }
}

#[test]
fn act_role_grants_exactly_what_the_shipped_actions_need() {
    let mut expected = BTreeSet::new();
    let mut kinds = BTreeSet::new();
    for runbook in runbooks() {
        for stage in runbook.stages.values() {
            for action in &stage.actions {
                kinds.insert(action.kind());
                expected.extend(needs(&runbook, action));
            }
        }
    }
    assert!(
        kinds.len() >= 6,
        "the shipped runbook offers every action kind: {kinds:?}"
    );

    let docs = manifests();
    let roles = roles(&docs);
    let (namespace, rules) = roles.get(ACT_ROLE).expect("the act Role is shipped");
    let namespace = namespace
        .clone()
        .expect("the act Role is a namespaced Role");
    let mut granted = BTreeSet::new();
    for rule in rules {
        let names: Vec<Option<String>> = match &rule.resource_names {
            Some(names) if !names.is_empty() => names.iter().cloned().map(Some).collect(),
            _ => vec![None],
        };
        for group in rule.api_groups.iter().flatten() {
            for resource in rule.resources.iter().flatten() {
                for verb in &rule.verbs {
                    assert!(
                        !["list", "watch", "deletecollection"].contains(&verb.as_str())
                            || names == [None],
                        "{ACT_ROLE}: RBAC cannot restrict `{verb}` by resourceNames"
                    );
                    for name in &names {
                        granted.insert(Grant {
                            namespace: namespace.clone(),
                            group: group.clone(),
                            resource: resource.clone(),
                            verb: verb.clone(),
                            name: name.clone(),
                        });
                    }
                }
            }
        }
    }
    let missing: Vec<&Grant> = expected.difference(&granted).collect();
    let unused: Vec<&Grant> = granted.difference(&expected).collect();
    assert!(
        missing.is_empty(),
        "{ACT_ROLE} lacks what the runbooks' actions need: {missing:#?}"
    );
    assert!(
        unused.is_empty(),
        "{ACT_ROLE} grants what no runbook action uses: {unused:#?}"
    );
}

fn deployment(docs: &[Manifest]) -> Deployment {
    one(docs, "Deployment")
}

fn pod_spec(d: &Deployment) -> &PodSpec {
    d.spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .expect("a pod template")
}

fn container(d: &Deployment) -> &Container {
    let spec = pod_spec(d);
    assert_eq!(spec.containers.len(), 1, "one container");
    assert!(spec.init_containers.is_none(), "no init containers");
    &spec.containers[0]
}

fn env(c: &Container) -> BTreeMap<String, String> {
    c.env
        .iter()
        .flatten()
        .map(|e| {
            assert!(
                e.value_from.is_none(),
                "env {} comes from elsewhere; the manifests set plain values and mount secrets",
                e.name
            );
            (e.name.clone(), e.value.clone().unwrap_or_default())
        })
        .collect()
}

/// The volume mounted at the longest mount path that is a prefix of `path`, with its mount's
/// read-only flag.
fn volume_of<'a>(d: &'a Deployment, path: &str) -> (&'a k8s_openapi::api::core::v1::Volume, bool) {
    let mount = container(d)
        .volume_mounts
        .iter()
        .flatten()
        .filter(|m| Path::new(path).starts_with(&m.mount_path))
        .max_by_key(|m| m.mount_path.len())
        .unwrap_or_else(|| panic!("{path} is on no mounted volume"));
    let volume = pod_spec(d)
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == mount.name)
        .unwrap_or_else(|| panic!("mount {} names no volume", mount.name));
    (volume, mount.read_only == Some(true))
}

fn container_port(c: &Container, port: &IntOrString) -> i32 {
    let ports = c.ports.clone().unwrap_or_default();
    match port {
        IntOrString::Int(n) => {
            assert!(
                ports.iter().any(|p| p.container_port == *n),
                "port {n} is not a container port"
            );
            *n
        }
        IntOrString::String(name) => {
            ports
                .iter()
                .find(|p| p.name.as_deref() == Some(name))
                .unwrap_or_else(|| panic!("no container port is named {name}"))
                .container_port
        }
    }
}

/// The port `firebreak serve` listens on, as the container's env sets it.
fn listen_port(c: &Container) -> i32 {
    match env(c).get("FIREBREAK_LISTEN") {
        Some(addr) => addr
            .parse::<std::net::SocketAddr>()
            .unwrap_or_else(|e| panic!("FIREBREAK_LISTEN={addr}: {e}"))
            .port()
            .into(),
        None => DEFAULT_LISTEN_PORT,
    }
}

#[test]
fn deployment_is_one_sqlite_writer_hardened_and_probed() {
    let docs = manifests();
    let d = deployment(&docs);
    let spec = d.spec.as_ref().unwrap();
    assert_eq!(spec.replicas, Some(1), "SQLite has one writer: one replica");
    let strategy = spec.strategy.as_ref().expect("a strategy");
    assert_eq!(
        strategy.type_.as_deref(),
        Some("Recreate"),
        "the old pod stops before the new one opens the state file"
    );
    assert!(strategy.rolling_update.is_none());
    let selector = spec.selector.match_labels.clone().unwrap_or_default();
    let labels = spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    assert!(!selector.is_empty());
    assert!(
        selector.iter().all(|(k, v)| labels.get(k) == Some(v)),
        "the selector matches the pod template"
    );

    let pod = pod_spec(&d);
    assert_eq!(pod.service_account_name.as_deref(), Some(SERVICE_ACCOUNT));
    assert_eq!(d.metadata.namespace.as_deref(), Some(NAMESPACE));
    assert_ne!(pod.host_network, Some(true));
    let psc = pod.security_context.clone().unwrap_or_default();
    let c = container(&d);
    let sc = c
        .security_context
        .clone()
        .expect("a container securityContext");
    assert_eq!(
        sc.run_as_non_root.or(psc.run_as_non_root),
        Some(true),
        "runAsNonRoot"
    );
    let uid = sc.run_as_user.or(psc.run_as_user);
    assert_eq!(uid, Some(65532), "distroless's nonroot uid");
    assert_eq!(
        psc.fs_group,
        Some(65532),
        "the state volume is writable by the uid"
    );
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_ne!(sc.privileged, Some(true));
    let caps = sc.capabilities.clone().expect("capabilities");
    assert_eq!(caps.drop, Some(vec!["ALL".to_string()]));
    assert!(caps.add.is_none(), "no capabilities added");
    let seccomp = sc.seccomp_profile.or(psc.seccomp_profile).expect("seccomp");
    assert_eq!(seccomp.type_, "RuntimeDefault");

    let image = c.image.as_deref().expect("an image");
    assert_eq!(
        image,
        format!(
            "ghcr.io/firebreak-ops/firebreak:{}",
            env!("CARGO_PKG_VERSION")
        ),
        "the image is the crate's release"
    );
    assert_eq!(c.args, Some(vec!["serve".to_string()]));
    assert!(c.command.is_none(), "the image's entrypoint runs");

    // The probes reach /healthz where `firebreak serve` listens.
    let listen = listen_port(c);
    for (which, probe) in [
        ("readiness", &c.readiness_probe),
        ("liveness", &c.liveness_probe),
    ] {
        let get = probe
            .as_ref()
            .and_then(|p: &Probe| p.http_get.as_ref())
            .unwrap_or_else(|| panic!("a {which} probe over HTTP"));
        assert_eq!(get.path.as_deref(), Some("/healthz"), "{which} probe path");
        assert_eq!(
            container_port(c, &get.port),
            listen,
            "{which} probe port is the one Firebreak listens on"
        );
    }

    let resources = c.resources.clone().expect("resources");
    let requests = resources.requests.unwrap_or_default();
    let limits = resources.limits.unwrap_or_default();
    assert_eq!(requests.get("cpu").map(|q| q.0.as_str()), Some("50m"));
    assert_eq!(requests.get("memory").map(|q| q.0.as_str()), Some("64Mi"));
    assert_eq!(limits.get("memory").map(|q| q.0.as_str()), Some("256Mi"));
}

#[test]
fn state_and_config_are_where_firebreak_looks() {
    let docs = manifests();
    let d = deployment(&docs);
    let vars = env(container(&d));

    // The state file is on the claim, writable; the claim is shipped.
    let state = vars.get("FIREBREAK_STATE").expect("FIREBREAK_STATE is set");
    let (volume, read_only) = volume_of(&d, state);
    assert!(!read_only, "the state volume is writable");
    let claim = &volume
        .persistent_volume_claim
        .as_ref()
        .expect("the state is on a PersistentVolumeClaim, not the container's disk")
        .claim_name;
    let pvc = all::<PersistentVolumeClaim>(&docs, "PersistentVolumeClaim")
        .into_iter()
        .find(|p| p.metadata.name.as_ref() == Some(claim))
        .unwrap_or_else(|| panic!("claim {claim} is shipped"));
    assert_eq!(pvc.metadata.namespace.as_deref(), Some(NAMESPACE));
    let pvc_spec = pvc.spec.expect("a claim spec");
    assert_eq!(
        pvc_spec.access_modes,
        Some(vec!["ReadWriteOnce".to_string()])
    );
    let size = pvc_spec
        .resources
        .and_then(|r| r.requests)
        .and_then(|r| r.get("storage").cloned())
        .expect("a storage request");
    assert_eq!(size.0, "1Gi");

    // The config file is a key of the shipped ConfigMap, and Firebreak accepts it.
    let config_path = Path::new(vars.get("FIREBREAK_CONFIG").expect("FIREBREAK_CONFIG"));
    let (volume, _) = volume_of(&d, config_path.to_str().unwrap());
    let cm_name = &volume
        .config_map
        .as_ref()
        .expect("the config comes from a ConfigMap")
        .name;
    let cm = all::<ConfigMap>(&docs, "ConfigMap")
        .into_iter()
        .find(|c| c.metadata.name.as_ref() == Some(cm_name))
        .unwrap_or_else(|| panic!("ConfigMap {cm_name} is shipped"));
    let key = config_path.file_name().unwrap().to_str().unwrap();
    let text = cm
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .unwrap_or_else(|| panic!("{cm_name} has the key {key}"));
    let config = Config::from_yaml(text).unwrap_or_else(|e| panic!("{cm_name}/{key}: {e}"));
    assert_eq!(
        config.state.as_deref(),
        Some(Path::new(state)),
        "the config's state path agrees with FIREBREAK_STATE"
    );

    // Every group the runbooks' approval policies name exists, with someone in it.
    let mut referenced = BTreeSet::new();
    for runbook in runbooks() {
        for stage in runbook.stages.values() {
            for action in &stage.actions {
                for approver in action.policy().map(|p| &p.approvers).into_iter().flatten() {
                    if let Some(group) = approver.strip_prefix("group:") {
                        referenced.insert(group.to_string());
                    }
                }
            }
        }
    }
    assert!(!referenced.is_empty(), "the runbook's actions name a group");
    for group in referenced {
        let members = config
            .groups
            .get(&group)
            .unwrap_or_else(|| panic!("the example config defines group:{group}"));
        assert!(!members.is_empty(), "group:{group} has members");
    }

    // The root filesystem is read-only: /tmp (SQLite's temporary files) is a volume.
    let (tmp, read_only) = volume_of(&d, "/tmp");
    assert!(
        tmp.empty_dir.is_some() && !read_only,
        "/tmp is a writable emptyDir"
    );
}

#[test]
fn chat_secrets_come_from_mounted_files_only() {
    let docs = manifests();
    let d = deployment(&docs);
    let c = container(&d);
    assert!(
        c.env_from.is_none(),
        "no envFrom: every variable is visible in the manifest"
    );
    let vars = env(c);
    let mut files = BTreeSet::new();
    for (name, value) in &vars {
        assert!(
            !SECRETS.contains(&name.as_str()),
            "{name} is set as a value; mount it and set {name}_FILE"
        );
        let Some(secret) = name.strip_suffix("_FILE") else {
            continue;
        };
        assert!(
            SECRETS.contains(&secret),
            "{name}: Firebreak reads no secret called {secret}"
        );
        let (volume, read_only) = volume_of(&d, value);
        assert!(read_only, "{name}: the secret volume is mounted read-only");
        let source = volume
            .secret
            .as_ref()
            .unwrap_or_else(|| panic!("{name}={value} is not on a Secret volume"));
        assert_eq!(source.secret_name.as_deref(), Some("firebreak-chat"));
        assert_eq!(
            source.optional,
            Some(true),
            "optional: the Secret may hold one platform's keys, and come after the pod"
        );
        files.insert(secret);
    }
    // A *_FILE naming a missing file stops Firebreak, so what is set must be a whole platform.
    let slack = files.contains("FIREBREAK_SLACK_BOT_TOKEN")
        && (files.contains("FIREBREAK_SLACK_SIGNING_SECRET")
            || files.contains("FIREBREAK_SLACK_APP_TOKEN"));
    let discord = files.contains("FIREBREAK_DISCORD_BOT_TOKEN")
        && files.contains("FIREBREAK_DISCORD_APPLICATION_ID");
    assert!(
        slack || discord,
        "the env configures a whole chat platform: {files:?}"
    );
}

#[test]
fn service_reaches_the_http_endpoints() {
    let docs = manifests();
    let d = deployment(&docs);
    let svc: Service = one(&docs, "Service");
    assert_eq!(svc.metadata.namespace.as_deref(), Some(NAMESPACE));
    let spec = svc.spec.expect("a service spec");
    assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
    let labels = d
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let selector = spec.selector.unwrap_or_default();
    assert!(
        !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v)),
        "the Service selects Firebreak's pod"
    );
    let ports = spec.ports.unwrap_or_default();
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0].port, 80);
    let target = ports[0].target_port.clone().expect("a targetPort");
    let c = container(&d);
    assert_eq!(container_port(c, &target), listen_port(c));
}

#[test]
fn kustomization_lists_every_manifest() {
    let deploy = repo().join("deploy");
    let text = std::fs::read_to_string(deploy.join("kustomization.yaml")).unwrap();
    let k: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    assert_eq!(k["kind"].as_str(), Some("Kustomization"));
    let resources: Vec<String> = k["resources"]
        .as_sequence()
        .expect("a resources list")
        .iter()
        .map(|r| r.as_str().expect("a path").to_string())
        .collect();
    let listed: BTreeSet<&str> = resources.iter().map(String::as_str).collect();
    assert_eq!(listed.len(), resources.len(), "no resource twice");
    for r in &resources {
        assert!(
            deploy.join(r).exists(),
            "kustomization lists {r}, not in deploy/"
        );
    }
    let files = manifest_files();
    assert!(files.len() >= 2);
    for file in files {
        let name = file.file_name().unwrap().to_str().unwrap();
        assert!(
            listed.contains(name),
            "deploy/{name} is not in kustomization.yaml's resources"
        );
    }
}

#[test]
fn dockerfile_runs_as_the_deployments_user_on_its_port() {
    let text = std::fs::read_to_string(repo().join("deploy/Dockerfile")).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .collect();
    let has = |line: &str| lines.contains(&line);
    let docs = manifests();
    let d = deployment(&docs);
    let c = container(&d);
    let uid = c
        .security_context
        .as_ref()
        .and_then(|s| s.run_as_user)
        .unwrap();
    assert!(has(&format!("USER {uid}")), "the image's user is {uid}");
    assert!(has(&format!("EXPOSE {}", listen_port(c))));
    assert!(has(r#"ENTRYPOINT ["/usr/local/bin/firebreak"]"#));
    assert!(
        lines
            .iter()
            .any(|l| l.contains("cargo build --release --locked")),
        "a locked release build"
    );
    let stages: Vec<&&str> = lines.iter().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(stages.len(), 2, "a builder and a runtime stage");
    assert!(stages[1].contains("distroless") && stages[1].contains(":nonroot"));
    for dir in ["runbooks", "templates"] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("COPY {dir}/ /app/{dir}/"))),
            "the image ships {dir}/"
        );
    }
}
