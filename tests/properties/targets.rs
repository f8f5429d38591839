//! Property targets over every parser of outside input, shared by the test suite (a few
//! thousand generated inputs each, `tests/properties.rs`) and the fuzz command
//! (`cargo run --example fuzz`, a million by default).
//!
//! Inputs are arbitrary Unicode text and, mostly, valid samples (a signed Slack form, a
//! Discord interaction, the shipped runbook, scenario documents, vLLM's exposition, an
//! Alertmanager notification) with a few characters inserted, deleted or replaced, so the
//! parsers are driven past their first line. The property is the same everywhere: no panic,
//! and where a parser accepts, what follows it (building an invocation, parsing the command,
//! rendering the command text) does not panic either. Signature checks must also refuse what
//! was not signed and accept what was.

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use serde_json::Value;

/// One fuzz target.
pub struct Target {
    /// Its name, for `--only` and the report.
    pub name: &'static str,
    /// Runs `runner`'s configured number of cases.
    pub run: fn(&mut TestRunner) -> Result<(), String>,
}

/// Every target.
pub const TARGETS: &[Target] = &[
    Target {
        name: "command_parser",
        run: command_parser,
    },
    Target {
        name: "slack_requests",
        run: slack_requests,
    },
    Target {
        name: "slack_signature",
        run: slack_signature,
    },
    Target {
        name: "discord_interactions",
        run: discord_interactions,
    },
    Target {
        name: "discord_signature",
        run: discord_signature,
    },
    Target {
        name: "runbook_loader",
        run: runbook_loader,
    },
    Target {
        name: "scenario_loader",
        run: scenario_loader,
    },
    Target {
        name: "exposition_parser",
        run: exposition_parser,
    },
    Target {
        name: "alertmanager_payload",
        run: alertmanager_payload,
    },
];

/// Run `target` for `cases` generated inputs from `seed`; the failing input and its panic
/// message when the property fails.
pub fn run(target: &Target, cases: u32, seed: u64) -> Result<(), String> {
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 512,
        ..Config::default()
    };
    let mut bytes = [0u8; 32];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(
            &(seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)).to_le_bytes(),
        );
    }
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes));
    (target.run)(&mut runner).map_err(|error| format!("{}: {error}", target.name))
}

/// Characters that matter to the formats: YAML, JSON, forms, quotes, mentions.
const STRUCTURAL: &[char] = &[
    ':', '-', '[', ']', '{', '}', '"', '\'', ',', '#', '&', '*', '!', '|', '>', '<', '\n', ' ',
    '=', '%', '+', '@', '\\', '\t', '\0', 'é', '数', '\u{feff}',
];

fn a_char() -> impl Strategy<Value = char> {
    prop_oneof![
        2 => prop::sample::select(STRUCTURAL),
        1 => any::<char>(),
        1 => proptest::char::range('0', 'z'),
    ]
}

/// A seed with up to 6 single-character edits.
fn mutated(seeds: &'static [&'static str]) -> impl Strategy<Value = String> {
    (
        any::<Index>(),
        prop::collection::vec((any::<Index>(), 0u8..3, a_char()), 0..6),
    )
        .prop_map(move |(which, edits)| {
            let mut text: Vec<char> = which.get(seeds).chars().collect();
            for (at, op, c) in edits {
                let pos = at.index(text.len() + 1);
                match op {
                    0 => text.insert(pos, c),
                    1 if pos < text.len() => {
                        text.remove(pos);
                    }
                    _ if pos < text.len() => text[pos] = c,
                    _ => text.push(c),
                }
            }
            text.into_iter().collect()
        })
}

/// Mostly mutated seeds, sometimes arbitrary text.
fn input(seeds: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        6 => mutated(seeds),
        1 => any::<String>(),
        1 => "\\PC{0,80}",
    ]
}

fn fail(error: impl std::fmt::Display) -> String {
    error.to_string()
}

// ---- the command parser -------------------------------------------------------------------

const COMMANDS: &[&str] = &[
    "/incident note Noté",
    "/incident resolve INC-12 ñoño",
    "/incident -- INC-1 text",
    "/incident declare sev2 \"KV cache full\"",
    "/incident role scribe <@U024BE7LH|bob>",
    "/triage model-server",
    "/mitigate model-server scale 8",
    "/approve 7f3a9c1e 'looks right'",
    "/help incident",
    "@Firebreak /deny abc",
];

fn command_parser(runner: &mut TestRunner) -> Result<(), String> {
    use firebreak::chat::{ChannelRef, Invocation, Platform, UserRef, split_words};
    runner
        .run(&input(COMMANDS), |line| {
            let user = UserRef {
                id: "U1".into(),
                name: "u".into(),
            };
            let channel = ChannelRef { id: "C1".into() };
            if let Ok(inv) = Invocation::from_text(Platform::Console, user, channel, &line) {
                let _ = firebreak::command::parse(&inv);
                let _ = inv.rest();
                // What `/incident` does with its first argument (finding 1 panicked here).
                for word in &inv.args {
                    let _ = firebreak::command::incident::is_incident_id(word);
                }
            }
            let _ = firebreak::incident::parse_severity(&line);
            let name = firebreak::incident::channel_name("INC-1", &line);
            prop_assert!(name.len() <= 80);
            // Discord's option values come back as one word of the command text.
            let quoted = firebreak::chat::discord::commands::quote(&line);
            let words = split_words(&quoted).map_err(|e| TestCaseError::fail(e.to_string()))?;
            if !(line.contains('"') && line.contains('\'')) {
                prop_assert_eq!(words, vec![line.trim().to_string()]);
            }
            Ok(())
        })
        .map_err(fail)
}

// ---- Slack ----------------------------------------------------------------------------------

const SLACK_FORM: &str = "token=gIkuvaNzQIHg97ATvDxqgjtO&team_id=T0001&team_domain=example&enterprise_id=E1&channel_id=C2147483705&channel_name=test&user_id=U2147483697&user_name=Steve&command=%2Fincident&text=note+Not%C3%A9+%3C%40U1%7Cbob%3E&api_app_id=A123456&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2F1234%2F5678&trigger_id=13345224609.738474920.8088930838d88f008e0";
const SLACK_JSON: &[&str] = &[
    include_str!("../slack/data/block_actions.json"),
    include_str!("../slack/data/app_mention.json"),
];

fn slack_requests(runner: &mut TestRunner) -> Result<(), String> {
    use firebreak::chat::slack::events::{
        click_invocation, command_invocation, mention_invocation,
    };
    use firebreak::chat::slack::guard::Workspace;
    use slack_morphism::prelude::*;
    const FORMS: &[&str] = &[SLACK_FORM];
    let strategy = prop_oneof![
        input(FORMS).prop_map(|f| (true, f)),
        input(SLACK_JSON).prop_map(|j| (false, j))
    ];
    runner
        .run(&strategy, |(form, text)| {
            if form {
                let pairs: Vec<(String, String)> =
                    serde_urlencoded::from_str(&text).unwrap_or_default();
                let fields = Value::Object(
                    pairs
                        .into_iter()
                        .map(|(k, v)| (k, Value::String(v)))
                        .collect(),
                );
                let _ = Workspace::of_command(&fields);
                if let Ok(event) = serde_urlencoded::from_str::<SlackCommandEvent>(&text)
                    && let Ok((inv, _)) = command_invocation(&event, fields["user_name"].as_str())
                {
                    let _ = firebreak::command::parse(&inv);
                }
                return Ok(());
            }
            let Ok(json) = serde_json::from_str::<Value>(&text) else {
                return Ok(());
            };
            let _ = Workspace::of_interaction(&json);
            let _ = Workspace::of_event(&json);
            if let Ok(SlackInteractionEvent::BlockActions(click)) =
                serde_json::from_value::<SlackInteractionEvent>(json.clone())
                && let Ok((inv, _)) = click_invocation(&click)
            {
                let _ = firebreak::command::parse(&inv);
            }
            if let Ok(SlackPushEvent::EventCallback(callback)) =
                serde_json::from_value::<SlackPushEvent>(json)
                && let SlackEventCallbackBody::AppMention(mention) = &callback.event
                && let Ok((inv, _)) = mention_invocation(mention)
            {
                let _ = firebreak::command::parse(&inv);
            }
            Ok(())
        })
        .map_err(fail)
}

const SLACK_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";

fn slack_sign(timestamp: &str, body: &str) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SLACK_SECRET.as_bytes())
        .expect("any key length");
    mac.update(format!("v0:{timestamp}:{body}").as_bytes());
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

fn slack_signature(runner: &mut TestRunner) -> Result<(), String> {
    use slack_morphism::prelude::SlackSigningSecret;
    use slack_morphism::signature_verifier::SlackEventSignatureVerifier;
    let verifier = SlackEventSignatureVerifier::new(&SlackSigningSecret(SLACK_SECRET.to_string()));
    const SIGS: &[&str] = &[
        "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
        "v0=",
        "",
    ];
    const FORMS: &[&str] = &[SLACK_FORM];
    let strategy = (input(SIGS), input(FORMS), "[0-9]{0,12}|\\PC{0,12}");
    runner
        .run(&strategy, |(signature, body, timestamp)| {
            // Whatever was not signed with the secret is refused, at any timestamp.
            if signature != slack_sign(&timestamp, &body) {
                prop_assert!(verifier.verify(&signature, &body, &timestamp).is_err());
            }
            // A genuine signature is refused at a timestamp outside the window (or not a
            // number), and accepted at now.
            if timestamp.parse::<i64>().is_err() {
                prop_assert!(
                    verifier
                        .verify(&slack_sign(&timestamp, &body), &body, &timestamp)
                        .is_err()
                );
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
                .to_string();
            prop_assert!(
                verifier
                    .verify(&slack_sign(&now, &body), &body, &now)
                    .is_ok()
            );
            Ok(())
        })
        .map_err(fail)
}

// ---- Discord --------------------------------------------------------------------------------

const DISCORD_COMMAND: &str = r#"{"id":"880000000000000001","application_id":"555000000000000001","type":2,"data":{"id":"990000000000000001","name":"incident","type":1,"guild_id":"666000000000000001","options":[{"name":"resolve","type":1,"options":[{"name":"summary","type":3,"value":"INC-1 ñoño"},{"name":"incident","type":3,"value":"INC-2"}]}]},"guild_id":"666000000000000001","channel_id":"777000000000000001","member":{"user":{"id":"111000000000000001","username":"alice","discriminator":"0","global_name":null,"avatar":null,"public_flags":0},"nick":"Alice","avatar":null,"roles":[],"joined_at":"2025-01-01T00:00:00.000000+00:00","premium_since":null,"deaf":false,"mute":false,"flags":0,"pending":false,"permissions":"2248473465835073"},"token":"t","version":1,"app_permissions":"0","locale":"en-US","entitlements":[],"authorizing_integration_owners":{"0":"666000000000000001"},"context":0,"attachment_size_limit":10485760}"#;
const DISCORD_CLICK: &str = r#"{"id":"880000000000000002","application_id":"555000000000000001","type":3,"data":{"custom_id":"/approve 7f3a9c1e","component_type":2},"channel_id":"777000000000000001","user":{"id":"111000000000000001","username":"alice","discriminator":"0","global_name":"Alice","avatar":null,"public_flags":0},"token":"t","version":1,"app_permissions":"0","locale":"en-US","entitlements":[],"authorizing_integration_owners":{},"context":1,"attachment_size_limit":10485760,"message":{"id":"440000000000000001","channel_id":"777000000000000001","author":{"id":"555000000000000001","username":"firebreak","discriminator":"0","global_name":null,"avatar":null,"bot":true},"content":"","timestamp":"2026-01-01T03:00:00.000000+00:00","edited_timestamp":null,"tts":false,"mention_everyone":false,"mentions":[],"mention_roles":[],"attachments":[],"embeds":[],"pinned":false,"type":0,"flags":0,"components":[]}}"#;

fn discord_interactions(runner: &mut TestRunner) -> Result<(), String> {
    use firebreak::chat::discord::{command_invocation, commands, component_invocation, guard};
    use serenity::model::application::Interaction;
    const SEEDS: &[&str] = &[DISCORD_COMMAND, DISCORD_CLICK];
    runner
        .run(&input(SEEDS), |text| {
            match serde_json::from_str::<Interaction>(&text) {
                Ok(Interaction::Command(command)) => {
                    let line = commands::to_text(&command.data);
                    let _ = guard::sender(&command.user, command.member.as_deref());
                    if let Ok(inv) = command_invocation(&command, &line) {
                        let _ = firebreak::command::parse(&inv);
                    }
                }
                Ok(Interaction::Component(component)) => {
                    let _ = guard::sender(&component.user, component.member.as_ref());
                    if let Ok(inv) = component_invocation(&component) {
                        let _ = firebreak::command::parse(&inv);
                    }
                }
                _ => {}
            }
            Ok(())
        })
        .map_err(fail)
}

fn discord_signature(runner: &mut TestRunner) -> Result<(), String> {
    use ed25519_dalek::{Signer, SigningKey};
    let key = SigningKey::from_bytes(&[7u8; 32]);
    let verifier =
        serenity::interactions_endpoint::Verifier::try_new(key.verifying_key().to_bytes())
            .expect("a valid key");
    const SIGS: &[&str] = &["7a3f0c1d2e", ""];
    const BODIES: &[&str] = &[DISCORD_COMMAND];
    // Ed25519 in an unoptimised build costs milliseconds a signature: the genuine round trip
    // (and a one-digit forgery of it) runs on one input in 32, the refusals on all.
    let strategy = (
        input(SIGS),
        input(BODIES),
        "[0-9]{0,12}|\\PC{0,12}",
        prop::bool::weighted(1.0 / 32.0),
        any::<Index>(),
    );
    runner
        .run(
            &strategy,
            |(signature, body, timestamp, genuine_too, digit)| {
                prop_assert!(
                    verifier
                        .verify(&signature, &timestamp, body.as_bytes())
                        .is_err()
                );
                if genuine_too {
                    let signed = [timestamp.as_bytes(), body.as_bytes()].concat();
                    let genuine = hex::encode(key.sign(&signed).to_bytes());
                    prop_assert!(
                        verifier
                            .verify(&genuine, &timestamp, body.as_bytes())
                            .is_ok()
                    );
                    let mut forged = genuine.into_bytes();
                    let at = digit.index(forged.len());
                    forged[at] = if forged[at] == b'0' { b'1' } else { b'0' };
                    let forged = String::from_utf8(forged).unwrap_or_default();
                    prop_assert!(
                        verifier
                            .verify(&forged, &timestamp, body.as_bytes())
                            .is_err()
                    );
                }
                Ok(())
            },
        )
        .map_err(fail)
}

// ---- content loaders ------------------------------------------------------------------------

const RUNBOOKS: &[&str] = &[include_str!("../../runbooks/model-server.yaml")];

fn runbook_loader(runner: &mut TestRunner) -> Result<(), String> {
    runner
        .run(&input(RUNBOOKS), |text| {
            if let Ok(runbook) = firebreak::runbook::Runbook::from_yaml(&text, "fuzz.yaml") {
                let _ = runbook.verdict_rules();
            }
            Ok(())
        })
        .map_err(fail)
}

/// Scenario documents small enough to parse by the hundred thousand: the built-in
/// scenarios' documents under 4 KB.
fn scenario_documents() -> &'static [&'static str] {
    static DOCS: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    DOCS.get_or_init(|| {
        [
            include_str!("../../src/sim/scenarios/demo.yaml"),
            include_str!("../../src/sim/scenarios/stale-index.yaml"),
            include_str!("../../src/sim/scenarios/bad-prompt.yaml"),
        ]
        .iter()
        .flat_map(|s| s.split("\n---\n"))
        .filter(|d| d.len() < 4096 && d.contains("kind:"))
        .collect()
    })
}

fn scenario_loader(runner: &mut TestRunner) -> Result<(), String> {
    let docs = scenario_documents();
    let strategy = (
        any::<Index>(),
        prop::collection::vec((any::<Index>(), 0u8..3, a_char()), 0..6),
        any::<Index>(),
    )
        .prop_map(move |(which, edits, second)| {
            // Two documents, so cross-document checks (a pod's node, a workload's pod) run.
            let mut text: Vec<char> = format!("{}\n---\n{}", which.get(docs), second.get(docs))
                .chars()
                .collect();
            for (at, op, c) in edits {
                let pos = at.index(text.len() + 1);
                match op {
                    0 => text.insert(pos, c),
                    1 if pos < text.len() => {
                        text.remove(pos);
                    }
                    _ if pos < text.len() => text[pos] = c,
                    _ => text.push(c),
                }
            }
            text.into_iter().collect::<String>()
        });
    runner
        .run(&strategy, |text| {
            let _ = firebreak::sim::Scenario::from_yaml(&text, "fuzz.yaml");
            Ok(())
        })
        .map_err(fail)
}

const EXPOSITION: &str = "# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.\n# TYPE vllm:kv_cache_usage_perc gauge\nvllm:kv_cache_usage_perc{engine=\"0\",model_name=\"meta-llama/Llama-3.1-8B-Instruct\"} 0.97\nvllm:num_requests_waiting{engine=\"0\",model_name=\"m\"} 64.0\nvllm:time_to_first_token_seconds_bucket{engine=\"0\",le=\"0.5\",model_name=\"m\"} 3.0\nvllm:time_to_first_token_seconds_bucket{engine=\"0\",le=\"+Inf\",model_name=\"m\"} 12.0\nvllm:request_success_total{finished_reason=\"length\",model_name=\"m\\\"q\"} 7 1700000000000\nDCGM_FI_DEV_XID_ERRORS{gpu=\"0\",UUID=\"GPU-1\"} 79\nnan_metric NaN\n";

fn exposition_parser(runner: &mut TestRunner) -> Result<(), String> {
    const SEEDS: &[&str] = &[EXPOSITION];
    runner
        .run(&input(SEEDS), |text| {
            let exposition = firebreak::metrics::exposition::parse(&text);
            for sample in exposition.named("vllm:kv_cache_usage_perc") {
                let _ = sample.label("model_name");
            }
            Ok(())
        })
        .map_err(fail)
}

const ALERTS: &[&str] = &[include_str!("../data/alertmanager-firing.json")];

fn alertmanager_payload(runner: &mut TestRunner) -> Result<(), String> {
    runner
        .run(&input(ALERTS), |text| {
            let _ = firebreak::incident::alerts::Notification::parse(text.as_bytes());
            Ok(())
        })
        .map_err(fail)
}
