//! Approval requests and decisions, and the one transaction that makes execution happen at most
//! once: a vote, its audit line and the `pending → executing` transition commit together under
//! `BEGIN IMMEDIATE`, so of any number of concurrent or replayed clicks exactly one sees
//! [`Vote::Execute`].

use rusqlite::{OptionalExtension, TransactionBehavior, params};
use serde::Serialize;

use super::audit::{Actor, AuditKind, Record, append_in};
use super::{Store, StoreError};
use crate::approval::Policy;
use crate::runbook::actions::{DryRun, Plan};

/// Where a request is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestState {
    /// Waiting for approvals.
    Pending,
    /// Approved; its calls are being made.
    Executing,
    /// Applied and verified.
    Succeeded,
    /// Applied (or tried) and failed or did not settle; the outcome says how.
    Failed,
    /// Denied by an approver (or withdrawn by the requester).
    Denied,
    /// Nobody decided in time.
    Expired,
    /// Firebreak stopped while executing it; it is never retried automatically.
    Interrupted,
}

impl RequestState {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestState::Pending => "pending",
            RequestState::Executing => "executing",
            RequestState::Succeeded => "succeeded",
            RequestState::Failed => "failed",
            RequestState::Denied => "denied",
            RequestState::Expired => "expired",
            RequestState::Interrupted => "interrupted",
        }
    }

    fn parse(text: &str) -> RequestState {
        match text {
            "pending" => RequestState::Pending,
            "executing" => RequestState::Executing,
            "succeeded" => RequestState::Succeeded,
            "failed" => RequestState::Failed,
            "denied" => RequestState::Denied,
            "expired" => RequestState::Expired,
            // Only Firebreak writes this column; anything else was interrupted mid-write.
            _ => RequestState::Interrupted,
        }
    }
}

/// Approve or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Let it run.
    Approve,
    /// Do not.
    Deny,
}

impl Decision {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Deny => "deny",
        }
    }
}

/// One recorded decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecisionRecord {
    /// Who decided, where.
    pub actor: Actor,
    /// Which way.
    pub decision: Decision,
    /// Why, when given.
    pub reason: Option<String>,
    /// When (RFC 3339 UTC).
    pub at: String,
}

/// A request to run one planned action.
#[derive(Debug, Clone, Serialize)]
pub struct Request {
    /// Short id, what `/approve ID` names.
    pub id: String,
    /// The runbook's service.
    pub service: String,
    /// The stage that offered the action.
    pub stage: String,
    /// The action's id in the runbook.
    pub action: String,
    /// What will change.
    pub plan: Plan,
    /// Who may approve.
    pub policy: Policy,
    /// Who asked, where.
    pub requester: Actor,
    /// The incident it belongs to, if any.
    pub incident: Option<String>,
    /// When it was asked (RFC 3339 UTC).
    pub created_at: String,
    /// When it stops being clickable.
    pub expires_at: String,
    /// Where it is now.
    pub state: RequestState,
    /// How it ended, in words.
    pub outcome: Option<String>,
    /// Decisions so far, in order.
    pub decisions: Vec<DecisionRecord>,
}

impl Request {
    /// Distinct approvals so far.
    pub fn approvals(&self) -> usize {
        self.decisions
            .iter()
            .filter(|d| d.decision == Decision::Approve)
            .count()
    }
}

/// What to create.
#[derive(Debug, Clone)]
pub struct NewRequest {
    /// The runbook's service.
    pub service: String,
    /// The stage that offered the action.
    pub stage: String,
    /// The plan, already dry-run.
    pub plan: Plan,
    /// The policy; `None` for an action the runbook marks safe, which starts executing.
    pub policy: Option<Policy>,
    /// Who asked.
    pub requester: Actor,
    /// The incident, if any.
    pub incident: Option<String>,
}

/// The result of a vote that was counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vote {
    /// Recorded; more approvals are needed.
    Recorded,
    /// This vote completed the approvals: the caller, and only the caller, executes.
    Execute,
    /// Denied; nothing will run.
    Denied,
}

/// Why a vote was not counted. Each is audited as a refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No request has this id.
    NotFound,
    /// Someone already decided it (or it ran, or expired): `state` says which.
    AlreadyDecided,
    /// The request expired before this click.
    Expired,
    /// The voter is not among the approvers.
    NotAuthorised,
    /// The requester may not approve their own request.
    SelfApproval,
    /// The policy wants a reason and none was given.
    ReasonRequired,
    /// This voter already approved.
    AlreadyApproved,
}

impl Refusal {
    fn as_str(&self) -> &'static str {
        match self {
            Refusal::NotFound => "no such request",
            Refusal::AlreadyDecided => "already decided",
            Refusal::Expired => "expired",
            Refusal::NotAuthorised => "not an approver",
            Refusal::SelfApproval => "requester may not approve",
            Refusal::ReasonRequired => "reason required",
            Refusal::AlreadyApproved => "already approved by this user",
        }
    }
}

/// A vote to count.
#[derive(Debug, Clone)]
pub struct Ballot {
    /// The request.
    pub request: String,
    /// Who, where.
    pub voter: Actor,
    /// Which way.
    pub decision: Decision,
    /// Why.
    pub reason: Option<String>,
    /// Whether the voter may approve under the request's policy (groups resolved by the
    /// caller, from the config as it is now).
    pub is_approver: bool,
}

/// What a counted or refused vote leaves behind.
#[derive(Debug, Clone)]
pub struct Counted {
    /// The outcome, or why it was refused.
    pub result: Result<Vote, Refusal>,
    /// The request as it stands after the vote (absent when it does not exist).
    pub request: Option<Request>,
}

const REQUEST_COLUMNS: &str = "id, service, stage, action, plan, policy, requester_id, requester_name, platform, channel, incident, created_at, expires_at, state, outcome";

fn load(connection: &rusqlite::Connection, id: &str) -> Result<Option<Request>, StoreError> {
    let row = connection
        .query_row(
            &format!("SELECT {REQUEST_COLUMNS} FROM requests WHERE id = ?1"),
            params![id],
            |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, String>(4)?,
                    row.get::<_, String>(5)?,
                    Actor {
                        id: row.get(6)?,
                        name: row.get(7)?,
                        platform: row.get(8)?,
                        channel: row.get(9)?,
                    },
                    row.get::<_, Option<String>>(10)?,
                    row.get::<_, String>(11)?,
                    row.get::<_, String>(12)?,
                    row.get::<_, String>(13)?,
                    row.get::<_, Option<String>>(14)?,
                ))
            },
        )
        .optional()?;
    let Some((
        id,
        service,
        stage,
        action,
        plan,
        policy,
        requester,
        incident,
        created_at,
        expires_at,
        state,
        outcome,
    )) = row
    else {
        return Ok(None);
    };
    let plan: Plan = serde_json::from_str(&plan).map_err(|source| StoreError::Corrupt {
        what: "requests.plan",
        source,
    })?;
    let policy: Policy = serde_json::from_str(&policy).map_err(|source| StoreError::Corrupt {
        what: "requests.policy",
        source,
    })?;
    let mut statement = connection.prepare(
        "SELECT user_id, user_name, platform, channel, decision, reason, at
         FROM decisions WHERE request = ?1 ORDER BY at, rowid",
    )?;
    let decisions = statement
        .query_map(params![id], |row| {
            Ok(DecisionRecord {
                actor: Actor {
                    id: row.get(0)?,
                    name: row.get(1)?,
                    platform: row.get(2)?,
                    channel: row.get(3)?,
                },
                decision: if row.get::<_, String>(4)? == "deny" {
                    Decision::Deny
                } else {
                    Decision::Approve
                },
                reason: row.get(5)?,
                at: row.get(6)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(Request {
        id,
        service,
        stage,
        action,
        plan,
        policy,
        requester,
        incident,
        created_at,
        expires_at,
        state: RequestState::parse(&state),
        outcome,
        decisions,
    }))
}

fn is_expired(request: &Request, now: jiff::Timestamp) -> bool {
    request
        .expires_at
        .parse::<jiff::Timestamp>()
        .map(|at| now >= at)
        // An unreadable expiry is treated as expired: refusing is the safe side.
        .unwrap_or(true)
}

impl Store {
    /// Record a new request (and its plan in the audit log). A safe action's request starts
    /// in `executing`: the caller runs it at once.
    pub async fn create_request(&self, new: NewRequest) -> Result<Request, StoreError> {
        self.with(move |connection| {
            let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let id = loop {
                let id = super::new_id();
                let taken: bool = tx.query_row(
                    "SELECT EXISTS(SELECT 1 FROM requests WHERE id = ?1)",
                    params![id],
                    |row| row.get(0),
                )?;
                if !taken {
                    break id;
                }
            };
            let now = super::now();
            let policy = new.policy.clone().unwrap_or_default();
            let expires = jiff::SignedDuration::try_from(policy.expires.0)
                .unwrap_or(jiff::SignedDuration::from_secs(15 * 60));
            let expires_at = now
                .checked_add(expires)
                .unwrap_or(jiff::Timestamp::MAX);
            let state = if new.policy.is_some() {
                RequestState::Pending
            } else {
                RequestState::Executing
            };
            tx.execute(
                &format!(
                    "INSERT INTO requests ({REQUEST_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, NULL)"
                ),
                params![
                    id,
                    new.service,
                    new.stage,
                    new.plan.action,
                    serde_json::to_string(&new.plan).map_err(|source| StoreError::Corrupt {
                        what: "requests.plan",
                        source
                    })?,
                    serde_json::to_string(&policy).map_err(|source| StoreError::Corrupt {
                        what: "requests.policy",
                        source
                    })?,
                    new.requester.id,
                    new.requester.name,
                    new.requester.platform,
                    new.requester.channel,
                    new.incident,
                    now.to_string(),
                    expires_at.to_string(),
                    state.as_str(),
                ],
            )?;
            append_in(
                &tx,
                &Record {
                    kind: AuditKind::Plan,
                    actor: &new.requester,
                    incident: new.incident.as_deref(),
                    request: Some(&id),
                    detail: format!(
                        "{} {}: {} [dry run: {}]{}",
                        new.plan.kind,
                        new.plan.target,
                        new.plan.summary,
                        dry_run_text(&new.plan.dry_run),
                        if state == RequestState::Executing {
                            " (marked safe: no approval needed)"
                        } else {
                            ""
                        }
                    ),
                },
            )?;
            let request = load(&tx, &id)?.ok_or(StoreError::Sqlite(
                rusqlite::Error::QueryReturnedNoRows,
            ))?;
            tx.commit()?;
            Ok(request)
        })
        .await
    }

    /// A request by id.
    pub async fn request(&self, id: &str) -> Result<Option<Request>, StoreError> {
        let id = id.to_string();
        self.with(move |connection| load(connection, &id)).await
    }

    /// Count one vote, atomically with its audit line and any state change. Refusals are
    /// audited too, so a stream of unauthorised clicks is visible afterwards.
    pub async fn vote(&self, ballot: Ballot) -> Result<Counted, StoreError> {
        self.with(move |connection| {
            let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let request = load(&tx, &ballot.request)?;
            let refuse = |tx: &rusqlite::Transaction<'_>,
                          refusal: Refusal,
                          request: Option<Request>|
             -> Result<Counted, StoreError> {
                append_in(
                    tx,
                    &Record {
                        kind: AuditKind::Refused,
                        actor: &ballot.voter,
                        incident: request.as_ref().and_then(|r| r.incident.as_deref()),
                        request: Some(&ballot.request),
                        detail: format!("{} refused: {}", ballot.decision.as_str(), refusal.as_str()),
                    },
                )?;
                Ok(Counted {
                    result: Err(refusal),
                    request,
                })
            };
            let Some(request) = request else {
                // No request row to reference: the refusal is still audited by id.
                let counted = refuse(&tx, Refusal::NotFound, None)?;
                tx.commit()?;
                return Ok(counted);
            };
            let now = super::now();
            let counted = if request.state != RequestState::Pending {
                refuse(&tx, Refusal::AlreadyDecided, Some(request))?
            } else if is_expired(&request, now) {
                tx.execute(
                    "UPDATE requests SET state = 'expired', outcome = 'expired before a decision', finished_at = ?2 WHERE id = ?1",
                    params![request.id, now.to_string()],
                )?;
                let request = load(&tx, &request.id)?;
                refuse(&tx, Refusal::Expired, request)?
            } else if let Some(refusal) = policy_refusal(&request, &ballot) {
                refuse(&tx, refusal, Some(request))?
            } else {
                count(&tx, &request, &ballot, now)?
            };
            tx.commit()?;
            Ok(counted)
        })
        .await
    }

    /// Record how an executing request ended. Only an `executing` request can finish, once.
    pub async fn finish_request(
        &self,
        id: &str,
        state: RequestState,
        outcome: String,
    ) -> Result<Option<Request>, StoreError> {
        let id = id.to_string();
        self.with(move |connection| {
            let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let changed = tx.execute(
                "UPDATE requests SET state = ?2, outcome = ?3, finished_at = ?4 WHERE id = ?1 AND state = 'executing'",
                params![id, state.as_str(), outcome, super::now().to_string()],
            )?;
            let request = load(&tx, &id)?;
            if changed == 1
                && let Some(request) = &request
            {
                append_in(
                    &tx,
                    &Record {
                        kind: AuditKind::Outcome,
                        actor: &Actor::firebreak(&request.requester.channel),
                        incident: request.incident.as_deref(),
                        request: Some(&id),
                        detail: format!("{}: {outcome}", state.as_str()),
                    },
                )?;
            }
            tx.commit()?;
            Ok(request)
        })
        .await
    }

    /// At start: requests left `executing` by a process that died are marked `interrupted`,
    /// never re-run, since some of their calls may already have been made. Returns them.
    pub async fn recover_interrupted(&self) -> Result<Vec<Request>, StoreError> {
        self.with(|connection| {
            let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let ids = tx
                .prepare("SELECT id FROM requests WHERE state = 'executing'")?
                .query_map([], |row| row.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            let mut interrupted = Vec::new();
            for id in ids {
                let outcome = "Firebreak stopped while executing this action; check the cluster before running it again";
                tx.execute(
                    "UPDATE requests SET state = 'interrupted', outcome = ?2, finished_at = ?3 WHERE id = ?1",
                    params![id, outcome, super::now().to_string()],
                )?;
                if let Some(request) = load(&tx, &id)? {
                    append_in(
                        &tx,
                        &Record {
                            kind: AuditKind::Outcome,
                            actor: &Actor::firebreak(&request.requester.channel),
                            incident: request.incident.as_deref(),
                            request: Some(&id),
                            detail: format!("interrupted: {outcome}"),
                        },
                    )?;
                    interrupted.push(request);
                }
            }
            tx.commit()?;
            Ok(interrupted)
        })
        .await
    }
}

fn policy_refusal(request: &Request, ballot: &Ballot) -> Option<Refusal> {
    let is_requester = ballot.voter.id == request.requester.id;
    let needs_reason = request.policy.reason
        && ballot
            .reason
            .as_deref()
            .is_none_or(|reason| reason.trim().is_empty());
    match ballot.decision {
        Decision::Approve if is_requester && !request.policy.self_approve => {
            Some(Refusal::SelfApproval)
        }
        Decision::Approve if !ballot.is_approver => Some(Refusal::NotAuthorised),
        // The requester may withdraw their own request; anyone else needs approver rights.
        Decision::Deny if !ballot.is_approver && !is_requester => Some(Refusal::NotAuthorised),
        _ if needs_reason => Some(Refusal::ReasonRequired),
        Decision::Approve
            if request
                .decisions
                .iter()
                .any(|d| d.actor.id == ballot.voter.id && d.decision == Decision::Approve) =>
        {
            Some(Refusal::AlreadyApproved)
        }
        _ => None,
    }
}

fn count(
    tx: &rusqlite::Transaction<'_>,
    request: &Request,
    ballot: &Ballot,
    now: jiff::Timestamp,
) -> Result<Counted, StoreError> {
    tx.execute(
        "INSERT INTO decisions (request, user_id, user_name, decision, reason, platform, channel, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            request.id,
            ballot.voter.id,
            ballot.voter.name,
            ballot.decision.as_str(),
            ballot.reason,
            ballot.voter.platform,
            ballot.voter.channel,
            now.to_string(),
        ],
    )?;
    let approvals = request.approvals() + usize::from(ballot.decision == Decision::Approve);
    let needed = request.policy.approvals.max(1) as usize;
    let (vote, detail) = match ballot.decision {
        Decision::Deny => {
            tx.execute(
                "UPDATE requests SET state = 'denied', outcome = ?2, finished_at = ?3 WHERE id = ?1 AND state = 'pending'",
                params![
                    request.id,
                    format!("denied by {}", ballot.voter.name),
                    now.to_string()
                ],
            )?;
            (Vote::Denied, "denied".to_string())
        }
        Decision::Approve if approvals >= needed => {
            tx.execute(
                "UPDATE requests SET state = 'executing' WHERE id = ?1 AND state = 'pending'",
                params![request.id],
            )?;
            (
                Vote::Execute,
                format!("approved ({approvals}/{needed}): executing"),
            )
        }
        Decision::Approve => (
            Vote::Recorded,
            format!("approved ({approvals}/{needed}): waiting for more approvals"),
        ),
    };
    let reason = ballot
        .reason
        .as_deref()
        .map(|r| format!("; reason: {r}"))
        .unwrap_or_default();
    append_in(
        tx,
        &Record {
            kind: AuditKind::Decision,
            actor: &ballot.voter,
            incident: request.incident.as_deref(),
            request: Some(&request.id),
            detail: format!("{detail}{reason}"),
        },
    )?;
    Ok(Counted {
        result: Ok(vote),
        request: load(tx, &request.id)?,
    })
}

fn dry_run_text(dry_run: &DryRun) -> String {
    match dry_run {
        DryRun::Passed => "passed".to_string(),
        DryRun::Refused(message) => format!("refused: {message}"),
        DryRun::NotSupported => "not supported".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::runbook::steps::Timeout;

    fn plan() -> Plan {
        Plan {
            action: "restart".into(),
            kind: "rollout_restart".into(),
            target: "deployment/model-server -n ai-production".into(),
            summary: "restart model-server".into(),
            diff: "+ restartedAt: now".into(),
            calls: Vec::new(),
            dry_run: DryRun::Passed,
            versions: Vec::new(),
        }
    }

    fn person(id: &str) -> Actor {
        Actor {
            id: id.into(),
            name: id.into(),
            platform: "console".into(),
            channel: "console".into(),
        }
    }

    async fn request(store: &Store, policy: Policy) -> Request {
        store
            .create_request(NewRequest {
                service: "model-server".into(),
                stage: "mitigate".into(),
                plan: plan(),
                policy: Some(policy),
                requester: person("alice"),
                incident: None,
            })
            .await
            .unwrap()
    }

    fn ballot(request: &Request, who: &str, decision: Decision, approver: bool) -> Ballot {
        Ballot {
            request: request.id.clone(),
            voter: person(who),
            decision,
            reason: None,
            is_approver: approver,
        }
    }

    #[tokio::test]
    async fn policy_refusals_are_counted_as_nothing_and_audited() {
        let store = Store::in_memory().unwrap();
        let open = request(&store, Policy::default()).await;
        let refused = |b| async { store.vote(b).await.unwrap().result.unwrap_err() };
        assert_eq!(
            refused(ballot(&open, "alice", Decision::Approve, true)).await,
            Refusal::SelfApproval
        );
        assert_eq!(
            refused(ballot(&open, "mallory", Decision::Approve, false)).await,
            Refusal::NotAuthorised
        );
        assert_eq!(
            refused(ballot(&open, "mallory", Decision::Deny, false)).await,
            Refusal::NotAuthorised
        );
        let with_reason = request(
            &store,
            Policy {
                reason: true,
                ..Policy::default()
            },
        )
        .await;
        assert_eq!(
            refused(ballot(&with_reason, "bob", Decision::Approve, true)).await,
            Refusal::ReasonRequired
        );
        let mut explained = ballot(&with_reason, "bob", Decision::Approve, true);
        explained.reason = Some("KV cache is full since v2".into());
        assert_eq!(
            store.vote(explained).await.unwrap().result,
            Ok(Vote::Execute)
        );

        let still = store.request(&open.id).await.unwrap().unwrap();
        assert_eq!(still.state, RequestState::Pending);
        assert!(still.decisions.is_empty());
        let refusals = store
            .audit_log(None)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == "refused")
            .count();
        assert_eq!(refusals, 4);
    }

    #[tokio::test]
    async fn deny_and_withdraw_end_the_request() {
        let store = Store::in_memory().unwrap();
        let denied = request(&store, Policy::default()).await;
        let counted = store
            .vote(ballot(&denied, "bob", Decision::Deny, true))
            .await
            .unwrap();
        assert_eq!(counted.result, Ok(Vote::Denied));
        assert_eq!(counted.request.unwrap().state, RequestState::Denied);
        let late = store
            .vote(ballot(&denied, "carol", Decision::Approve, true))
            .await
            .unwrap();
        assert_eq!(late.result, Err(Refusal::AlreadyDecided));

        let withdrawn = request(&store, Policy::default()).await;
        let counted = store
            .vote(ballot(&withdrawn, "alice", Decision::Deny, false))
            .await
            .unwrap();
        assert_eq!(counted.result, Ok(Vote::Denied));
    }

    #[tokio::test]
    async fn expired_requests_refuse_clicks() {
        let store = Store::in_memory().unwrap();
        let stale = request(
            &store,
            Policy {
                expires: Timeout(Duration::ZERO),
                ..Policy::default()
            },
        )
        .await;
        let counted = store
            .vote(ballot(&stale, "bob", Decision::Approve, true))
            .await
            .unwrap();
        assert_eq!(counted.result, Err(Refusal::Expired));
        assert_eq!(counted.request.unwrap().state, RequestState::Expired);
    }

    #[tokio::test]
    async fn two_person_rule_needs_two_distinct_approvers() {
        let store = Store::in_memory().unwrap();
        let two = request(
            &store,
            Policy {
                approvals: 2,
                ..Policy::default()
            },
        )
        .await;
        let vote = |who: &str| store.vote(ballot(&two, who, Decision::Approve, true));
        assert_eq!(vote("bob").await.unwrap().result, Ok(Vote::Recorded));
        assert_eq!(
            vote("bob").await.unwrap().result,
            Err(Refusal::AlreadyApproved)
        );
        assert_eq!(vote("carol").await.unwrap().result, Ok(Vote::Execute));
        assert_eq!(
            vote("dave").await.unwrap().result,
            Err(Refusal::AlreadyDecided)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn of_a_hundred_concurrent_approvals_exactly_one_executes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.db")).unwrap();
        let one = request(&store, Policy::default()).await;
        let votes = (0..100).map(|n| {
            let store = store.clone();
            let b = ballot(
                &one,
                &format!("approver-{}", n % 7),
                Decision::Approve,
                true,
            );
            tokio::spawn(async move { store.vote(b).await.unwrap().result })
        });
        let results = futures::future::join_all(votes).await;
        let executes = results
            .iter()
            .filter(|r| matches!(r, Ok(Ok(Vote::Execute))))
            .count();
        assert_eq!(executes, 1);
        let finished = store
            .finish_request(&one.id, RequestState::Succeeded, "ok".into())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(finished.state, RequestState::Succeeded);
        assert_eq!(finished.decisions.len(), 1);
        // A second finish (a duplicate executor) changes nothing.
        let again = store
            .finish_request(&one.id, RequestState::Failed, "late".into())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again.outcome.as_deref(), Some("ok"));
    }

    #[tokio::test]
    async fn a_restart_marks_executing_requests_interrupted_and_keeps_pending_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let store = Store::open(&path).unwrap();
        let pending = request(&store, Policy::default()).await;
        let running = request(&store, Policy::default()).await;
        store
            .vote(ballot(&running, "bob", Decision::Approve, true))
            .await
            .unwrap();
        drop(store);

        let store = Store::open(&path).unwrap();
        let interrupted = store.recover_interrupted().await.unwrap();
        assert_eq!(interrupted.len(), 1);
        assert_eq!(interrupted[0].id, running.id);
        assert_eq!(interrupted[0].state, RequestState::Interrupted);
        let pending = store.request(&pending.id).await.unwrap().unwrap();
        assert_eq!(pending.state, RequestState::Pending);
        assert_eq!(pending.plan, plan());
    }
}
