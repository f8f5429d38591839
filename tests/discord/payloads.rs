//! Interaction payloads in the shapes Discord documents (receiving-and-responding:
//! interaction object), as a guild sends them: `member` with its `user`, not `user` alone.

use serde_json::{Value, json};

pub const APPLICATION_ID: &str = "555000000000000001";
pub const GUILD_ID: &str = "666000000000000001";
pub const CHANNEL_ID: &str = "777000000000000001";

pub fn member(user_id: &str, username: &str, nick: Option<&str>) -> Value {
    json!({
        "user": {
            "id": user_id,
            "username": username,
            "discriminator": "0",
            "global_name": null,
            "avatar": null,
            "public_flags": 0
        },
        "nick": nick,
        "avatar": null,
        "roles": [],
        "joined_at": "2025-01-01T00:00:00.000000+00:00",
        "premium_since": null,
        "deaf": false,
        "mute": false,
        "flags": 0,
        "pending": false,
        "permissions": "2248473465835073"
    })
}

fn envelope(kind: u8, id: &str, token: &str, data: Value) -> Value {
    json!({
        "id": id,
        "application_id": APPLICATION_ID,
        "type": kind,
        "data": data,
        "guild_id": GUILD_ID,
        "channel_id": CHANNEL_ID,
        "channel": { "id": CHANNEL_ID, "type": 0, "name": "incidents", "guild_id": GUILD_ID, "permissions": "2248473465835073" },
        "member": member("111000000000000001", "alice", Some("Alice (on call)")),
        "token": token,
        "version": 1,
        "app_permissions": "2248473465835073",
        "locale": "en-US",
        "guild_locale": "en-US",
        "entitlements": [],
        "authorizing_integration_owners": { "0": GUILD_ID },
        "context": 0,
        "attachment_size_limit": 10485760
    })
}

pub fn ping() -> Value {
    json!({
        "id": "880000000000000000",
        "application_id": APPLICATION_ID,
        "type": 1,
        "token": "ping-token",
        "version": 1
    })
}

/// A slash command with string options: `[("service", "model-server")]`.
pub fn command(id: &str, token: &str, name: &str, options: Value) -> Value {
    envelope(
        2,
        id,
        token,
        json!({ "id": "990000000000000001", "name": name, "type": 1, "options": options, "guild_id": GUILD_ID }),
    )
}

pub fn string_option(name: &str, value: &str) -> Value {
    json!({ "name": name, "type": 3, "value": value })
}

/// The autocomplete of `/triage service:<typed>`.
pub fn autocomplete(typed: &str) -> Value {
    envelope(
        4,
        "880000000000000004",
        "autocomplete-token",
        json!({
            "id": "990000000000000001", "name": "triage", "type": 1, "guild_id": GUILD_ID,
            "options": [{ "name": "service", "type": 3, "value": typed, "focused": true }]
        }),
    )
}

/// A click on the button `custom_id` of a message the bot posted, by `member`.
pub fn click(id: &str, token: &str, custom_id: &str, member: Value) -> Value {
    let mut payload = envelope(
        3,
        id,
        token,
        json!({ "custom_id": custom_id, "component_type": 2 }),
    );
    payload["member"] = member;
    payload["message"] = json!({
        "id": "440000000000000001",
        "channel_id": CHANNEL_ID,
        "author": { "id": APPLICATION_ID, "username": "firebreak", "discriminator": "0", "global_name": null, "avatar": null, "bot": true },
        "content": "",
        "timestamp": "2026-01-01T03:00:00.000000+00:00",
        "edited_timestamp": null,
        "tts": false,
        "mention_everyone": false,
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": [{ "type": "rich", "title": "Triage: model-server", "color": 15158332 }],
        "pinned": false,
        "type": 20,
        "flags": 0,
        "application_id": APPLICATION_ID,
        "webhook_id": APPLICATION_ID,
        "components": [{ "type": 1, "components": [
            { "type": 2, "style": 1, "label": "Mitigate", "custom_id": custom_id }
        ]}]
    });
    payload
}
