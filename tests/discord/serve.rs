//! `firebreak serve` as an operator runs it, with Discord configured in the environment.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;

use super::fake::FakeDiscord;
use super::payloads::{self, APPLICATION_ID};
use super::{TOKEN, hex, now, signing_key};
use crate::support::{demo, sim};
use ed25519_dalek::Signer;

/// Kills the server when the test ends, pass or fail.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(envs: &[(&str, String)], args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_firebreak"));
    command
        .arg("serve")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("FIREBREAK_RUNBOOKS")
        .env_remove("FIREBREAK_TEMPLATES")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in envs {
        command.env(name, value);
    }
    command
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn serve_registers_the_commands_and_answers_a_signed_ping() {
    let sim = sim(demo()).await;
    let fake = FakeDiscord::start().await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, sim.kubeconfig_yaml("ai-production")).unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let _server = Running(
        serve(
            &[
                (
                    "FIREBREAK_DISCORD_BOT_TOKEN_FILE",
                    token_file.display().to_string(),
                ),
                (
                    "FIREBREAK_DISCORD_APPLICATION_ID",
                    APPLICATION_ID.to_string(),
                ),
                (
                    "FIREBREAK_DISCORD_PUBLIC_KEY",
                    hex(&signing_key().verifying_key().to_bytes()),
                ),
                ("FIREBREAK_DISCORD_API_URL", fake.url.clone()),
            ],
            &[
                "--listen",
                &listen,
                "--kubeconfig",
                kubeconfig.to_str().unwrap(),
            ],
        )
        .spawn()
        .expect("firebreak serve starts"),
    );
    fake.wait_for("the bulk overwrite at start", |calls| {
        calls.iter().any(|c| c.method == "PUT")
    })
    .await;
    let body = serde_json::to_vec(&payloads::ping()).unwrap();
    let timestamp = now().to_string();
    let signature = hex(&signing_key()
        .sign(&[timestamp.as_bytes(), &body].concat())
        .to_bytes());
    let client = reqwest::Client::new();
    let url = format!("http://{listen}/discord/interactions");
    let mut answer = None;
    for _ in 0..200 {
        let sent = client
            .post(&url)
            .header("X-Signature-Ed25519", &signature)
            .header("X-Signature-Timestamp", &timestamp)
            .body(body.clone())
            .send()
            .await;
        if let Ok(response) = sent {
            answer = Some((
                response.status().as_u16(),
                response.json::<serde_json::Value>().await.unwrap(),
            ));
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(answer, Some((200, json!({ "type": 1 }))));
}

#[tokio::test]
async fn serve_refuses_a_bad_public_key_with_a_clear_message() {
    let sim = sim(demo()).await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, sim.kubeconfig_yaml("ai-production")).unwrap();
    let mut command = serve(
        &[
            ("FIREBREAK_DISCORD_BOT_TOKEN", TOKEN.to_string()),
            (
                "FIREBREAK_DISCORD_APPLICATION_ID",
                APPLICATION_ID.to_string(),
            ),
            ("FIREBREAK_DISCORD_PUBLIC_KEY", "0123-not-a-key".to_string()),
            (
                "FIREBREAK_DISCORD_API_URL",
                "http://127.0.0.1:9".to_string(),
            ),
        ],
        &[
            "--listen",
            "127.0.0.1:0",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
        ],
    );
    let out = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains("firebreak: FIREBREAK_DISCORD_PUBLIC_KEY: not 64 hexadecimal digits")
            && stderr.contains("Developer Portal"),
        "{stderr}"
    );
}
