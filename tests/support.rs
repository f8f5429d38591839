//! Shared test fixtures: a simulated cluster and a bot wired to it over loopback HTTP.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use firebreak::Bot;
use firebreak::chat::{ChannelRef, Invocation, Platform, UserRef};
use firebreak::cluster::Cluster;
use firebreak::render::{Reply, Templates, text};
use firebreak::runbook::{Runbook, Runbooks};
use firebreak::sim::{Scenario, SimServer};
use firebreak::store::Store;

/// The shipped runbook, for tests that edit a copy.
pub const SHIPPED_RUNBOOK: &str = include_str!("../runbooks/model-server.yaml");

/// A simulator on an ephemeral loopback port.
pub async fn sim(scenario: Scenario) -> SimServer {
    SimServer::start(scenario, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("simulator starts")
}

/// The shipped demo scenario.
pub fn demo() -> Scenario {
    Scenario::load("demo").expect("the demo scenario loads")
}

/// A bot over the given runbooks (YAML texts), the shipped templates and the simulator.
pub fn bot(sim: &SimServer, runbooks: &[&str]) -> Bot {
    let mut all = Runbooks::default();
    for (i, text) in runbooks.iter().enumerate() {
        all.add(
            Runbook::from_yaml(text, &format!("test-runbook-{i}.yaml"))
                .expect("test runbook parses"),
        )
        .unwrap();
    }
    let cluster = Cluster::from_url(&sim.url()).expect("client builds");
    Bot::new(
        all,
        Templates::load_dir("templates".as_ref()).expect("templates load"),
        cluster,
        Store::in_memory().expect("in-memory state"),
    )
}

/// Send `line` as alice (`U_ALICE`) and wait for the final reply.
pub async fn say(bot: &Bot, line: &str) -> Reply {
    say_as(bot, "U_ALICE", "alice", line).await
}

/// Send `line` as the user with this id and name, from channel `C_TEST`.
pub async fn say_as(bot: &Bot, id: &str, name: &str, line: &str) -> Reply {
    let inv = Invocation::from_text(
        Platform::Console,
        UserRef {
            id: id.into(),
            name: name.into(),
        },
        ChannelRef {
            id: "C_TEST".into(),
        },
        line,
    )
    .expect("test command parses");
    bot.handle(&inv, &|_| {}).await
}

/// A reply as the console would print it.
pub fn shown(reply: &Reply) -> String {
    text::render(reply)
}

/// The step finding (not the verdict's copy of it, a `- ` evidence line) that contains `needle`.
pub fn finding_line(text: &str, needle: &str) -> String {
    text.lines()
        .find(|l| l.contains(needle) && !l.starts_with("- "))
        .unwrap_or_else(|| panic!("no finding with {needle:?} in:\n{text}"))
        .to_string()
}

/// Run the built binary from the repository root, as the README does, feeding `stdin`.
pub fn firebreak(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_firebreak"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("FIREBREAK_RUNBOOKS")
        .env_remove("FIREBREAK_TEMPLATES")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("firebreak runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Run the real kubectl against `server` with its own HOME and cache, so nothing leaks.
pub async fn kubectl(
    server: &SimServer,
    args: &[&str],
) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("kubectl").is_file()));
    assert!(
        found,
        "kubectl is not on PATH; these tests need the real kubectl: install Debian's `kubernetes-client` package (apt-get install kubernetes-client)"
    );
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, server.kubeconfig_yaml("ai-production"))?;
    let home = dir.path().to_path_buf();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let output =
        tokio::task::spawn_blocking(move || run_kubectl(&home, &kubeconfig, &args)).await??;
    Ok(output)
}

fn run_kubectl(
    home: &Path,
    kubeconfig: &Path,
    args: &[String],
) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    let out = Command::new("kubectl")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(home.join("cache"))
        .args(args)
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!(
            "kubectl {args:?} failed ({}):\nstdout: {stdout}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(stdout)
}
