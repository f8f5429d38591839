//! No panic on outside input: every fuzz target (`properties/targets.rs`) with a few thousand
//! generated inputs per run of the test suite; `cargo run --example fuzz` runs a million.

mod targets;

/// Inputs per target in the test suite: real coverage, seconds of run time.
const CASES: u32 = 1_500;

fn check(name: &str) {
    let target = targets::TARGETS
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no target {name}"));
    // A new seed each run widens what the suite covers over time; the failure names it.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    if let Err(failure) = targets::run(target, CASES, seed) {
        panic!(
            "{failure}\n(reproduce: cargo run --example fuzz -- --only {name} --seed {seed} --cases {CASES})"
        );
    }
}

#[test]
fn every_target_is_tested() {
    assert_eq!(targets::TARGETS.len(), 9);
}

#[test]
fn command_parser() {
    check("command_parser");
}

#[test]
fn slack_requests() {
    check("slack_requests");
}

#[test]
fn slack_signature() {
    check("slack_signature");
}

#[test]
fn discord_interactions() {
    check("discord_interactions");
}

#[test]
fn discord_signature() {
    check("discord_signature");
}

#[test]
fn runbook_loader() {
    check("runbook_loader");
}

#[test]
fn scenario_loader() {
    check("scenario_loader");
}

#[test]
fn exposition_parser() {
    check("exposition_parser");
}

#[test]
fn alertmanager_payload() {
    check("alertmanager_payload");
}
