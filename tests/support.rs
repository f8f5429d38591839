//! Shared test fixtures: a simulated cluster and a bot wired to it over loopback HTTP.

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};

use firebreak::Bot;
use firebreak::chat::{ChannelRef, Invocation, UserRef};
use firebreak::cluster::Cluster;
use firebreak::render::{Reply, Templates, text};
use firebreak::runbook::{Runbook, Runbooks};
use firebreak::sim::{Scenario, SimServer};

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
    )
}

/// Send `line` as `user` and wait for the final reply.
pub async fn say(bot: &Bot, line: &str) -> Reply {
    let inv = Invocation::from_text(
        UserRef {
            id: "U_ALICE".into(),
            name: "alice".into(),
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
