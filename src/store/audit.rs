//! The audit log: every command, plan, decision and cluster-changing API call, with who, when,
//! where. Append-only: triggers in the schema refuse updates and deletes.

use rusqlite::params;
use serde::Serialize;

use super::{Store, StoreError};
use crate::chat::Invocation;

/// What an audit entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    /// A command as typed or clicked.
    Command,
    /// A plan shown for approval, with its dry-run result.
    Plan,
    /// An approval or a denial.
    Decision,
    /// A refused click (unauthorised, expired, already decided...).
    Refused,
    /// One API call that changed the cluster, with its HTTP status.
    ApiCall,
    /// How an action ended: applied and verified, failed, or interrupted by a restart.
    Outcome,
}

impl AuditKind {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::Command => "command",
            AuditKind::Plan => "plan",
            AuditKind::Decision => "decision",
            AuditKind::Refused => "refused",
            AuditKind::ApiCall => "api_call",
            AuditKind::Outcome => "outcome",
        }
    }
}

/// Who did something, and through which platform and channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Actor {
    /// Platform user id, or `firebreak` for what the bot does on its own.
    pub id: String,
    /// Display name.
    pub name: String,
    /// `slack`, `discord`, `console`, `alertmanager`, or `firebreak`.
    pub platform: String,
    /// Channel id.
    pub channel: String,
}

impl Actor {
    /// The person behind an invocation.
    pub fn of(inv: &Invocation) -> Actor {
        Actor {
            id: inv.user.id.clone(),
            name: inv.user.name.clone(),
            platform: inv.platform.as_str().to_string(),
            channel: inv.channel.id.clone(),
        }
    }

    /// Firebreak itself, acting in `channel` (executing an approved action, recovering).
    pub fn firebreak(channel: &str) -> Actor {
        Actor {
            id: "firebreak".to_string(),
            name: "Firebreak".to_string(),
            platform: "firebreak".to_string(),
            channel: channel.to_string(),
        }
    }
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// Order of writing.
    pub seq: i64,
    /// RFC 3339 UTC.
    pub at: String,
    /// What kind of record.
    pub kind: String,
    /// The incident, if any.
    pub incident: Option<String>,
    /// The approval request, if any.
    pub request: Option<String>,
    /// Who.
    pub actor: Actor,
    /// What, in words (the command line, the plan summary, `PATCH /apis/... → 200`).
    pub detail: String,
}

/// What to record; the store adds the sequence number and time.
#[derive(Debug, Clone)]
pub struct Record<'a> {
    /// Kind.
    pub kind: AuditKind,
    /// Who.
    pub actor: &'a Actor,
    /// The incident, if any.
    pub incident: Option<&'a str>,
    /// The approval request, if any.
    pub request: Option<&'a str>,
    /// What.
    pub detail: String,
}

/// Append inside an open transaction, so a decision and its audit line commit together.
pub(crate) fn append_in(
    connection: &rusqlite::Connection,
    record: &Record<'_>,
) -> Result<(), StoreError> {
    connection.execute(
        "INSERT INTO audit (at, kind, incident, request, actor_id, actor_name, platform, channel, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            super::now().to_string(),
            record.kind.as_str(),
            record.incident,
            record.request,
            record.actor.id,
            record.actor.name,
            record.actor.platform,
            record.actor.channel,
            record.detail,
        ],
    )?;
    Ok(())
}

impl Store {
    /// Append one record; returns once it is on disk.
    pub async fn audit(&self, record: Record<'_>) -> Result<(), StoreError> {
        let kind = record.kind;
        let actor = record.actor.clone();
        let incident = record.incident.map(str::to_string);
        let request = record.request.map(str::to_string);
        let detail = record.detail;
        self.with(move |connection| {
            append_in(
                connection,
                &Record {
                    kind,
                    actor: &actor,
                    incident: incident.as_deref(),
                    request: request.as_deref(),
                    detail,
                },
            )
        })
        .await
    }

    /// The audit log in order of writing; with `incident`, only that incident's entries
    /// (including those of its approval requests).
    pub async fn audit_log(&self, incident: Option<&str>) -> Result<Vec<AuditEntry>, StoreError> {
        let incident = incident.map(str::to_string);
        self.with(move |connection| {
            let mut statement = connection.prepare(
                "SELECT seq, at, kind, incident, request, actor_id, actor_name, platform, channel, detail
                 FROM audit
                 WHERE ?1 IS NULL OR incident = ?1
                    OR request IN (SELECT id FROM requests WHERE incident = ?1)
                 ORDER BY seq",
            )?;
            let rows = statement.query_map(params![incident], |row| {
                Ok(AuditEntry {
                    seq: row.get(0)?,
                    at: row.get(1)?,
                    kind: row.get(2)?,
                    incident: row.get(3)?,
                    request: row.get(4)?,
                    actor: Actor {
                        id: row.get(5)?,
                        name: row.get(6)?,
                        platform: row.get(7)?,
                        channel: row.get(8)?,
                    },
                    detail: row.get(9)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }
}

impl AuditEntry {
    /// One line for `firebreak audit`.
    pub fn line(&self) -> String {
        let scope = match (&self.incident, &self.request) {
            (Some(incident), Some(request)) => format!("{incident}/{request}"),
            (Some(incident), None) => incident.clone(),
            (None, Some(request)) => format!("req {request}"),
            (None, None) => "-".to_string(),
        };
        format!(
            "{at}  {kind:<9} {scope:<14} {who} via {platform}#{channel}: {detail}",
            at = self.at,
            kind = self.kind,
            who = self.actor.name,
            platform = self.actor.platform,
            channel = self.actor.channel,
            detail = self.detail,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn appends_in_order_and_refuses_edits() {
        let store = Store::in_memory().unwrap();
        let alice = Actor::firebreak("C1");
        for n in 0..3 {
            store
                .audit(Record {
                    kind: AuditKind::Command,
                    actor: &alice,
                    incident: (n == 1).then_some("INC-1"),
                    request: None,
                    detail: format!("/triage {n}"),
                })
                .await
                .unwrap();
        }
        let all = store.audit_log(None).await.unwrap();
        assert_eq!(
            all.iter().map(|e| e.detail.as_str()).collect::<Vec<_>>(),
            ["/triage 0", "/triage 1", "/triage 2"]
        );
        let one = store.audit_log(Some("INC-1")).await.unwrap();
        assert_eq!(one.len(), 1);

        let tampered = store
            .with(|c| Ok(c.execute("UPDATE audit SET detail = 'nothing happened'", [])))
            .await
            .unwrap();
        assert!(tampered.unwrap_err().to_string().contains("append-only"));
        let deleted = store
            .with(|c| Ok(c.execute("DELETE FROM audit", [])))
            .await
            .unwrap();
        assert!(deleted.is_err());
        assert_eq!(store.audit_log(None).await.unwrap().len(), 3);
    }
}
