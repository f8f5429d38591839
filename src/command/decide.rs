//! `/approve <id> [reason]` and `/deny <id> [reason]`, typed or clicked: count the vote, and
//! if it completes the approvals, execute the action — once, however many clicks race.

use crate::approval::{describe_approvers, is_approver, refusal_message};
use crate::bot::Bot;
use crate::chat::Invocation;
use crate::render::{Delivery, Reply, TemplateError};
use crate::store::{Actor, Ballot, Decision, Vote};

/// Count `inv.user`'s vote on request `id`.
pub async fn handle(
    bot: &Bot,
    inv: &Invocation,
    id: &str,
    decision: Decision,
    reason: Option<String>,
    on_progress: &(dyn Fn(&Reply) + Send + Sync),
) -> Result<Reply, TemplateError> {
    let request = match bot.store.request(id).await {
        Ok(request) => request,
        Err(error) => return bot.state_error(&error),
    };
    let approver = request
        .as_ref()
        .is_some_and(|r| is_approver(&r.policy, &bot.groups, &inv.user.id));
    let counted = match bot
        .store
        .vote(Ballot {
            request: id.to_string(),
            voter: Actor::of(inv),
            decision,
            reason,
            is_approver: approver,
        })
        .await
    {
        Ok(counted) => counted,
        Err(error) => return bot.state_error(&error),
    };
    let request = counted.request;
    match (counted.result, request) {
        (Err(refusal), request) => {
            tracing::info!(request = id, refusal = ?refusal, "vote refused");
            let approvers = request
                .as_ref()
                .map(|r| describe_approvers(&r.policy, &bot.groups))
                .unwrap_or_default();
            let mut reply = bot.error_reply(
                refusal_message(&refusal, id, request.as_ref(), &approvers),
                None,
            )?;
            reply.delivery = Delivery::Ephemeral;
            Ok(reply)
        }
        (Ok(Vote::Execute), Some(request)) => bot.execute(&request, on_progress).await,
        (Ok(Vote::Recorded | Vote::Denied), Some(request)) => {
            let mut reply = bot.render_request(&request, Vec::new(), None, None)?;
            reply.delivery = Delivery::ReplaceOrigin;
            Ok(reply)
        }
        (Ok(_), None) => bot.error_reply(
            format!("request `{id}` vanished from the state store while being decided"),
            Some("Nothing was run. Check `firebreak audit` and the state file.".to_string()),
        ),
    }
}
