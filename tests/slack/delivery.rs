//! Where a finished reply goes: `Delivery` as Slack calls, and Slack's rate limits obeyed.

use firebreak::chat::slack::Origin;
use firebreak::chat::slack::events::ClickedMessage;
use firebreak::chat::{ChannelRef, Invocation, Platform, UserRef};
use firebreak::render::{Block, Delivery, Reply, Severity};
use serde_json::json;
use slack_morphism::prelude::{SlackResponseUrl, SlackTs};

use super::fake::FakeSlack;
use super::{Harness, Mode, header};

fn invocation() -> Invocation {
    Invocation::from_text(
        Platform::Slack,
        UserRef {
            id: "U_ALICE".into(),
            name: "alice".into(),
        },
        ChannelRef { id: "C_INC".into() },
        "/approve 7f3a",
    )
    .unwrap()
}

fn reply(delivery: Delivery) -> Reply {
    Reply {
        title: "Approved: scale model-server to 8".to_string(),
        severity: Severity::Ok,
        blocks: vec![Block::Text {
            text: "**alice** approved request 7f3a.".to_string(),
        }],
        buttons: Vec::new(),
        in_progress: false,
        delivery,
        effects: Vec::new(),
    }
}

fn response_url(fake: &FakeSlack) -> SlackResponseUrl {
    serde_json::from_value(json!(fake.response_url("click-7f3a"))).unwrap()
}

fn clicked(ephemeral: bool) -> Option<ClickedMessage> {
    Some(ClickedMessage {
        channel: "C_INC".to_string(),
        ts: SlackTs("1700000000.000042".to_string()),
        ephemeral,
    })
}

#[tokio::test]
async fn replace_origin_edits_the_clicked_message() {
    let h = Harness::start(Mode::Http).await;
    let origin = Origin {
        response_url: Some(response_url(&h.fake)),
        clicked: clicked(false),
    };
    h.slack
        .deliver(&invocation(), &origin, &reply(Delivery::ReplaceOrigin))
        .await;
    let calls = h.fake.calls();
    assert_eq!(calls.len(), 1, "{calls:#?}");
    assert_eq!(calls[0].method, "chat.update");
    assert_eq!(calls[0].body["channel"], "C_INC");
    assert_eq!(calls[0].body["ts"], "1700000000.000042");
    assert!(header(&calls[0].body).contains("Approved"));
}

#[tokio::test]
async fn a_clicked_message_the_bot_cannot_edit_is_replaced_through_the_response_url() {
    let h = Harness::start(Mode::Http).await;
    h.fake.fail_next("chat.update", "cant_update_message");
    let origin = Origin {
        response_url: Some(response_url(&h.fake)),
        clicked: clicked(false),
    };
    h.slack
        .deliver(&invocation(), &origin, &reply(Delivery::ReplaceOrigin))
        .await;
    let methods: Vec<String> = h.fake.calls().into_iter().map(|c| c.method).collect();
    assert_eq!(methods, vec!["chat.update", "response_url"]);
    assert_eq!(h.fake.calls()[1].body["replace_original"], true);
}

#[tokio::test]
async fn a_channel_the_bot_is_not_in_still_gets_the_reply_through_the_response_url() {
    let h = Harness::start(Mode::Http).await;
    h.fake.fail_next("chat.postMessage", "not_in_channel");
    let origin = Origin {
        response_url: Some(response_url(&h.fake)),
        clicked: None,
    };
    h.slack
        .deliver(&invocation(), &origin, &reply(Delivery::NewMessage))
        .await;
    let calls = h.fake.calls();
    let methods: Vec<&str> = calls.iter().map(|c| c.method.as_str()).collect();
    assert_eq!(methods, vec!["chat.postMessage", "response_url"]);
    assert_eq!(calls[1].body["response_type"], "in_channel");
    assert!(header(&calls[1].body).contains("Approved"));
}

#[tokio::test]
async fn replace_origin_of_an_ephemeral_message_goes_through_the_response_url() {
    let h = Harness::start(Mode::Http).await;
    let origin = Origin {
        response_url: Some(response_url(&h.fake)),
        clicked: clicked(true),
    };
    h.slack
        .deliver(&invocation(), &origin, &reply(Delivery::ReplaceOrigin))
        .await;
    let calls = h.fake.calls();
    assert_eq!(calls.len(), 1, "{calls:#?}");
    assert_eq!(calls[0].method, "response_url");
    assert_eq!(calls[0].body["replace_original"], true);
    assert_eq!(calls[0].body["_response_url_id"], "click-7f3a");
}

#[tokio::test]
async fn replace_origin_when_typed_is_a_new_message() {
    let h = Harness::start(Mode::Http).await;
    let origin = Origin {
        response_url: Some(response_url(&h.fake)),
        clicked: None,
    };
    h.slack
        .deliver(&invocation(), &origin, &reply(Delivery::ReplaceOrigin))
        .await;
    let calls = h.fake.calls();
    assert_eq!(calls.len(), 1, "{calls:#?}");
    assert_eq!(calls[0].method, "chat.postMessage");
    assert_eq!(calls[0].body["channel"], "C_INC");
}

#[tokio::test]
async fn ephemeral_replies_reach_only_the_invoker() {
    let h = Harness::start(Mode::Http).await;
    let with_url = Origin {
        response_url: Some(response_url(&h.fake)),
        clicked: clicked(false),
    };
    h.slack
        .deliver(&invocation(), &with_url, &reply(Delivery::Ephemeral))
        .await;
    h.slack
        .deliver(
            &invocation(),
            &Origin::default(),
            &reply(Delivery::Ephemeral),
        )
        .await;
    let calls = h.fake.calls();
    assert_eq!(calls.len(), 2, "{calls:#?}");
    assert_eq!(calls[0].method, "response_url");
    assert_eq!(calls[0].body["response_type"], "ephemeral");
    assert!(calls[0].body.get("replace_original").is_none());
    assert_eq!(calls[1].method, "chat.postEphemeral");
    assert_eq!(calls[1].body["user"], "U_ALICE");
    assert_eq!(calls[1].body["channel"], "C_INC");
}

#[tokio::test]
async fn rate_limited_calls_are_retried_after_the_wait_slack_asks_for() {
    let h = Harness::start(Mode::Http).await;
    h.fake.rate_limit_next(2);
    h.slack
        .deliver(
            &invocation(),
            &Origin::default(),
            &reply(Delivery::NewMessage),
        )
        .await;
    let posts = h.fake.calls_of("chat.postMessage");
    assert_eq!(posts.len(), 3, "two 429s, then the post: {posts:#?}");
    assert!(posts.iter().all(|p| header(&p.body).contains("Approved")));
}

#[test]
fn a_click_becomes_an_invocation_by_the_clicker_with_the_buttons_command() {
    let payload = super::block_actions(
        "https://hooks.slack.com/actions/T0001/1234/abcd",
        ("U_BOB", "bob"),
        "/mitigate model-server",
        "1700000000.000001",
    );
    let event: slack_morphism::prelude::SlackInteractionEvent =
        serde_json::from_value(payload).unwrap();
    let slack_morphism::prelude::SlackInteractionEvent::BlockActions(click) = event else {
        panic!("block_actions parses as a click");
    };
    let (inv, origin) = firebreak::chat::slack::events::click_invocation(&click).unwrap();
    assert_eq!(inv.platform, Platform::Slack);
    assert_eq!(inv.user.id, "U_BOB");
    assert_eq!(inv.user.name, "bob");
    assert_eq!(inv.channel.id, "C_INC");
    assert_eq!(inv.command, "mitigate");
    assert_eq!(inv.args, vec!["model-server"]);
    let clicked = origin.clicked.unwrap();
    assert_eq!(clicked.ts.0, "1700000000.000001");
    assert!(!clicked.ephemeral);
    assert!(origin.response_url.is_some());
}
