//! The binary as a user runs it: the README's demo command and `firebreak check`.

use std::path::Path;
use std::process::Output;

use crate::support::firebreak;

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn demo_triage_from_a_pipe() {
    let out = firebreak(&["demo"], "/triage model-server\n");
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("model-server-7c9d4f8b6-x2k9p` was OOMKilled (exit 137), 6 restarts"),
        "{text}"
    );
    assert!(
        text.contains("model-server-7c9d4f8b6-q8w4n` is in CrashLoopBackOff"),
        "{text}"
    );
    assert!(text.contains("model-server-7c9d4f8b6-m3z7t` is Pending: 0/3 nodes are available: 3 Insufficient nvidia.com/gpu"), "{text}");
    assert!(
        text.contains("model-server-7c9d4f8b6-x2k9p` KV cache usage 97.0%"),
        "{text}"
    );
    assert!(
        text.contains("[Mitigate] /mitigate model-server"),
        "buttons print as commands:\n{text}"
    );
}

#[test]
fn demo_answers_each_line_and_survives_bad_ones() {
    let out = firebreak(
        &["demo"],
        "# a comment\n/nonsense\n/triage 'unclosed\n/help\n",
    );
    let text = stdout(&out);
    assert!(out.status.success());
    assert!(text.contains("unknown command `/nonsense`"), "{text}");
    assert!(
        text.contains("cannot read that command: unclosed quote"),
        "{text}"
    );
    assert_eq!(
        text.matches("== Firebreak commands").count(),
        2,
        "help after the bad quote, then /help:\n{text}"
    );
}

#[test]
fn check_passes_on_the_shipped_files() {
    let out = firebreak(&["check", "runbooks", "templates"], "");
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert_eq!(text.matches("SUCCESS").count(), 2, "{text}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn check_fails_on_a_broken_runbook_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks/model-server.yaml"),
    )
    .unwrap();
    let broken = shipped.replacen("- kind: logs", "- kind: log", 1);
    let line = broken
        .lines()
        .position(|l| l.contains("- kind: log"))
        .unwrap()
        + 1;
    let file = dir.path().join("model-server.yaml");
    std::fs::write(&file, broken).unwrap();
    let out = firebreak(&["check", dir.path().to_str().unwrap()], "");
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let expected = format!("FAILED: {}:{line}:", file.display());
    assert!(
        text.contains(&expected),
        "expected {expected:?} in:\n{text}"
    );
    assert!(
        text.contains(
            "unknown variant `log`, expected one of `pods`, `events`, `logs`, `rollout_history`"
        ),
        "{text}"
    );
}

#[test]
fn check_fails_on_broken_templates() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("templates"),
        dir.path(),
    );
    let triage = dir.path().join("triage.hbs");
    let text = std::fs::read_to_string(&triage).unwrap();
    std::fs::write(&triage, text.replacen("{{/unless}}", "", 1)).unwrap();
    let out = firebreak(&["check", dir.path().to_str().unwrap()], "");
    let shown = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(shown.contains("triage.hbs:"), "names the file: {shown}");

    // A misspelled variable compiles but cannot render: strict mode catches it at check time.
    std::fs::write(&triage, text.replacen("{{service}}", "{{servce}}", 1)).unwrap();
    let out = firebreak(&["check", triage.to_str().unwrap()], "");
    let shown = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("template `triage` failed to render") && shown.contains("servce"),
        "{shown}"
    );

    std::fs::remove_file(&triage).unwrap();
    let out = firebreak(&["check", dir.path().to_str().unwrap()], "");
    assert!(
        stdout(&out).contains("template `triage.hbs` is missing"),
        "{}",
        stdout(&out)
    );
}
