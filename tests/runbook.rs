//! Runbooks as data: the shipped runbook loads, and broken ones fail with file, line and what
//! was expected.

use firebreak::runbook::{Runbook, RunbookError, Runbooks, Stage};

const SHIPPED: &str = include_str!("../runbooks/model-server.yaml");

fn parse_error(text: &str) -> (usize, String) {
    match Runbook::from_yaml(text, "runbooks/broken.yaml") {
        Err(RunbookError::Parse {
            file,
            line,
            message,
            ..
        }) => {
            assert_eq!(file, "runbooks/broken.yaml");
            (line, message)
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
}

#[test]
fn shipped_runbook_loads_with_every_stage() {
    let runbook = Runbook::from_yaml(SHIPPED, "runbooks/model-server.yaml").unwrap();
    assert_eq!(runbook.service, "model-server");
    assert_eq!(runbook.namespace, "ai-production");
    for stage in Stage::ALL {
        assert!(runbook.stage(stage).is_some(), "missing stage {stage}");
    }
    let kinds: Vec<&str> = runbook
        .stage(Stage::Triage)
        .unwrap()
        .steps
        .iter()
        .map(|s| s.kind())
        .collect();
    assert_eq!(
        kinds,
        [
            "pods",
            "events",
            "logs",
            "rollout_history",
            "metrics",
            "gpu",
            "pipelines",
            "canary"
        ]
    );
    assert!(Runbooks::embedded().unwrap().get("model-server").is_some());
}

#[test]
fn unknown_step_kind_names_line_and_the_kinds_that_exist() {
    let broken = SHIPPED.replacen("- kind: events", "- kind: eventz", 1);
    let expected_line = broken
        .lines()
        .position(|l| l.contains("kind: eventz"))
        .unwrap()
        + 1;
    let (line, message) = parse_error(&broken);
    assert_eq!(line, expected_line, "{message}");
    assert!(message.contains("unknown variant `eventz`"), "{message}");
    assert!(
        message.contains("rollout_history"),
        "lists the kinds that exist: {message}"
    );
}

#[test]
fn misspelled_field_is_refused_not_ignored() {
    let broken = SHIPPED.replacen("limit: 10\n", "limt: 10\n", 1);
    let (line, message) = parse_error(&broken);
    assert!(line > 0);
    assert!(message.contains("unknown field `limt`"), "{message}");
}

#[test]
fn bad_values_are_caught_at_load() {
    let (_, message) = parse_error(&SHIPPED.replacen("timeout: 10s", "timeout: soon", 1));
    assert!(message.contains("`soon` is not a duration"), "{message}");
    let (_, message) =
        parse_error(&SHIPPED.replacen("selector: app=model-server", "selector: 'app=(oops'", 1));
    assert!(message.contains("not a label selector"), "{message}");
    let (_, message) = parse_error(&SHIPPED.replacen(
        "pattern: 'GPU KV cache usage: ([0-9]+(?:\\.[0-9]+)?)%'",
        "pattern: 'usage: [0-9]+'",
        1,
    ));
    assert!(message.contains("no capture group"), "{message}");
    let (_, message) = parse_error(&SHIPPED.replacen("  rollback:\n", "  rolback:\n", 1));
    assert!(message.contains("unknown variant `rolback`"), "{message}");
}

#[test]
fn yaml_syntax_error_has_its_line() {
    let broken =
        "service: model-server\nnamespace: ai-production\nselector: [unclosed\ndeployment: x\n";
    let (line, message) = parse_error(broken);
    assert!(line >= 3, "line {line}: {message}");
    let shown = Runbook::from_yaml(broken, "runbooks/broken.yaml")
        .unwrap_err()
        .to_string();
    assert!(
        shown.starts_with(&format!("runbooks/broken.yaml:{line}:")),
        "{shown}"
    );
}

#[test]
fn two_runbooks_for_one_service_are_refused() {
    let mut all = Runbooks::default();
    all.add(Runbook::from_yaml(SHIPPED, "a.yaml").unwrap())
        .unwrap();
    let err = all
        .add(Runbook::from_yaml(SHIPPED, "b.yaml").unwrap())
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("defined twice: in a.yaml and in b.yaml"),
        "{err}"
    );
}
