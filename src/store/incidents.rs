//! Incidents, the channels bound to them, and their timelines.
//!
//! An incident's queried facts (id, open, the Alertmanager group that opened it) are columns;
//! everything else it accumulates (roles, status text, last verdict, milestones) is one JSON
//! document, so adding a field needs no migration.

use std::collections::BTreeMap;

use rusqlite::{OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use super::audit::Actor;
use super::{Store, StoreError};

/// What an incident accumulates besides its id, title and severity.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IncidentData {
    /// The service it is about, when known (from the alert, or the first stage command).
    pub service: Option<String>,
    /// The latest `/incident status` text.
    pub status_text: Option<String>,
    /// Roles by name (`commander`, `scribe`, ...) → who holds them (display name or mention).
    pub roles: BTreeMap<String, String>,
    /// The commander's user id, for invitations.
    pub commander_id: String,
    /// Who or what declared it: a person's name, or `alert <alertname>`.
    pub detected_by: String,
    /// When the problem started: the alert's `startsAt`, else the declaration.
    pub started_at: String,
    /// The first successful action.
    pub mitigated_at: Option<String>,
    /// When it was resolved.
    pub resolved_at: Option<String>,
    /// The last triage verdict, one line.
    pub last_verdict: Option<String>,
    /// Where it was declared.
    pub platform: String,
    /// The channel it was declared in.
    pub channel: String,
}

/// An incident.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Incident {
    /// `INC-7`.
    pub id: String,
    /// One line.
    pub title: String,
    /// `sev1` (worst) to `sev4`.
    pub severity: String,
    /// Open or resolved.
    pub open: bool,
    /// The Alertmanager `groupKey` that opened it, if any.
    pub group_key: Option<String>,
    /// When it was declared (RFC 3339 UTC).
    pub declared_at: String,
    /// The rest.
    #[serde(flatten)]
    pub data: IncidentData,
}

/// One timeline event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineEntry {
    /// Order.
    pub seq: i64,
    /// RFC 3339 UTC.
    pub at: String,
    /// Who.
    pub actor: Actor,
    /// `declared`, `command`, `verdict`, `plan`, `decision`, `action`, `status`, `severity`,
    /// `role`, `note`, `pinned`, `alert`, `resolved`.
    pub kind: String,
    /// What, in words.
    pub text: String,
    /// Structured detail (versions, evidence), kind-specific.
    pub data: serde_json::Value,
}

fn corrupt(what: &'static str) -> impl Fn(serde_json::Error) -> StoreError {
    move |source| StoreError::Corrupt { what, source }
}

fn load(connection: &rusqlite::Connection, id: &str) -> Result<Option<Incident>, StoreError> {
    let row = connection
        .query_row(
            "SELECT id, title, severity, open, group_key, data, declared_at FROM incidents WHERE id = ?1 COLLATE NOCASE",
            params![id],
            |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, bool>(3)?,
                    row.get::<_, Option<String>>(4)?,
                    row.get::<_, String>(5)?,
                    row.get::<_, String>(6)?,
                ))
            },
        )
        .optional()?;
    let Some((id, title, severity, open, group_key, data, declared_at)) = row else {
        return Ok(None);
    };
    Ok(Some(Incident {
        id,
        title,
        severity,
        open,
        group_key,
        declared_at,
        data: serde_json::from_str(&data).map_err(corrupt("incidents.data"))?,
    }))
}

fn append(
    connection: &rusqlite::Connection,
    incident: &str,
    actor: &Actor,
    kind: &str,
    text: &str,
    data: &serde_json::Value,
) -> Result<(), StoreError> {
    connection.execute(
        "INSERT INTO timeline (incident, at, actor_id, actor_name, platform, channel, kind, text, data)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            incident,
            super::now().to_string(),
            actor.id,
            actor.name,
            actor.platform,
            actor.channel,
            kind,
            text,
            data.to_string(),
        ],
    )?;
    Ok(())
}

/// What a declaration needs.
#[derive(Debug, Clone)]
pub struct Declaration {
    /// One line.
    pub title: String,
    /// `sev1`..`sev4`.
    pub severity: String,
    /// Who declares (and commands, at first).
    pub declarer: Actor,
    /// The service, if known.
    pub service: Option<String>,
    /// The Alertmanager group, for alert-opened incidents.
    pub group_key: Option<String>,
    /// `alert HighKVCacheUsage`, or the declarer's name.
    pub detected_by: String,
    /// When the problem started, if earlier than now (an alert's `startsAt`).
    pub started_at: Option<String>,
}

impl Store {
    /// Declare an incident, bind the declaring channel to it, and start its timeline. With a
    /// `group_key` already open, returns that incident instead (`false`: not new).
    pub async fn declare(&self, declaration: Declaration) -> Result<(Incident, bool), StoreError> {
        self.with(move |connection| {
            let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if let Some(key) = &declaration.group_key {
                let existing: Option<String> = tx
                    .query_row(
                        "SELECT id FROM incidents WHERE group_key = ?1",
                        params![key],
                        |row| row.get(0),
                    )
                    .optional()?;
                if let Some(id) = existing
                    && let Some(incident) = load(&tx, &id)?
                {
                    return Ok((incident, false));
                }
            }
            let number: i64 = tx.query_row(
                "SELECT COALESCE(MAX(number), 0) + 1 FROM incidents",
                [],
                |row| row.get(0),
            )?;
            let id = format!("INC-{number}");
            let now = super::now().to_string();
            let actor = &declaration.declarer;
            let data = IncidentData {
                service: declaration.service.clone(),
                status_text: None,
                roles: [("commander".to_string(), actor.name.clone())]
                    .into_iter()
                    .collect(),
                commander_id: actor.id.clone(),
                detected_by: declaration.detected_by.clone(),
                started_at: declaration.started_at.clone().unwrap_or_else(|| now.clone()),
                mitigated_at: None,
                resolved_at: None,
                last_verdict: None,
                platform: actor.platform.clone(),
                channel: actor.channel.clone(),
            };
            tx.execute(
                "INSERT INTO incidents (number, id, title, severity, open, group_key, data, declared_at)
                 VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6, ?7)",
                params![
                    number,
                    id,
                    declaration.title,
                    declaration.severity,
                    declaration.group_key,
                    serde_json::to_string(&data).map_err(corrupt("incidents.data"))?,
                    now,
                ],
            )?;
            tx.execute(
                "INSERT INTO incident_channels (platform, channel, incident) VALUES (?1, ?2, ?3)
                 ON CONFLICT (platform, channel) DO UPDATE SET incident = excluded.incident",
                params![actor.platform, actor.channel, id],
            )?;
            append(
                &tx,
                &id,
                actor,
                "declared",
                &format!(
                    "{} declared {id} ({}): {}",
                    actor.name, declaration.severity, declaration.title
                ),
                &serde_json::json!({"detected_by": declaration.detected_by}),
            )?;
            let incident = load(&tx, &id)?.ok_or(StoreError::Sqlite(
                rusqlite::Error::QueryReturnedNoRows,
            ))?;
            tx.commit()?;
            Ok((incident, true))
        })
        .await
    }

    /// An incident by id (`INC-7`, any case).
    pub async fn incident(&self, id: &str) -> Result<Option<Incident>, StoreError> {
        let id = id.to_string();
        self.with(move |connection| load(connection, &id)).await
    }

    /// The incident an Alertmanager group opened, open or not.
    pub async fn incident_by_group(&self, group_key: &str) -> Result<Option<Incident>, StoreError> {
        let key = group_key.to_string();
        self.with(move |connection| {
            let id: Option<String> = connection
                .query_row(
                    "SELECT id FROM incidents WHERE group_key = ?1",
                    params![key],
                    |row| row.get(0),
                )
                .optional()?;
            match id {
                Some(id) => load(connection, &id),
                None => Ok(None),
            }
        })
        .await
    }

    /// The incident a channel is bound to, if it is still open.
    pub async fn incident_in(
        &self,
        platform: &str,
        channel: &str,
    ) -> Result<Option<Incident>, StoreError> {
        let (platform, channel) = (platform.to_string(), channel.to_string());
        self.with(move |connection| {
            let id: Option<String> = connection
                .query_row(
                    "SELECT incident FROM incident_channels WHERE platform = ?1 AND channel = ?2",
                    params![platform, channel],
                    |row| row.get(0),
                )
                .optional()?;
            match id {
                Some(id) => Ok(load(connection, &id)?.filter(|i| i.open)),
                None => Ok(None),
            }
        })
        .await
    }

    /// Bind another channel (a dedicated incident channel or thread) to an incident.
    pub async fn bind_channel(
        &self,
        incident: &str,
        platform: &str,
        channel: &str,
    ) -> Result<(), StoreError> {
        let (incident, platform, channel) = (
            incident.to_string(),
            platform.to_string(),
            channel.to_string(),
        );
        self.with(move |connection| {
            connection.execute(
                "INSERT INTO incident_channels (platform, channel, incident) VALUES (?1, ?2, ?3)
                 ON CONFLICT (platform, channel) DO UPDATE SET incident = excluded.incident",
                params![platform, channel, incident],
            )?;
            Ok(())
        })
        .await
    }

    /// Incidents, open first, newest first.
    pub async fn incidents(&self) -> Result<Vec<Incident>, StoreError> {
        self.with(|connection| {
            let ids = connection
                .prepare("SELECT id FROM incidents ORDER BY open DESC, number DESC")?
                .query_map([], |row| row.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            let mut incidents = Vec::with_capacity(ids.len());
            for id in ids {
                incidents.extend(load(connection, &id)?);
            }
            Ok(incidents)
        })
        .await
    }

    /// Change an incident and record why on its timeline, in one transaction. `change` edits
    /// the incident and returns the timeline text and data, or `None` to change nothing.
    pub async fn update_incident<F>(
        &self,
        id: &str,
        actor: &Actor,
        kind: &str,
        change: F,
    ) -> Result<Option<Incident>, StoreError>
    where
        F: FnOnce(&mut Incident) -> Option<(String, serde_json::Value)> + Send + 'static,
    {
        let (id, actor, kind) = (id.to_string(), actor.clone(), kind.to_string());
        self.with(move |connection| {
            let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let Some(mut incident) = load(&tx, &id)? else {
                return Ok(None);
            };
            if let Some((text, data)) = change(&mut incident) {
                tx.execute(
                    "UPDATE incidents SET title = ?2, severity = ?3, open = ?4, data = ?5 WHERE id = ?1",
                    params![
                        incident.id,
                        incident.title,
                        incident.severity,
                        incident.open,
                        serde_json::to_string(&incident.data).map_err(corrupt("incidents.data"))?,
                    ],
                )?;
                append(&tx, &incident.id, &actor, &kind, &text, &data)?;
            }
            tx.commit()?;
            Ok(Some(incident))
        })
        .await
    }

    /// Add one event to an incident's timeline.
    pub async fn timeline_event(
        &self,
        incident: &str,
        actor: &Actor,
        kind: &str,
        text: String,
        data: serde_json::Value,
    ) -> Result<(), StoreError> {
        let (incident, actor, kind) = (incident.to_string(), actor.clone(), kind.to_string());
        self.with(move |connection| append(connection, &incident, &actor, &kind, &text, &data))
            .await
    }

    /// Remember a platform message that stands for part of an incident (its `summary`, the
    /// `alert` post), so later changes update it instead of posting again.
    pub async fn remember_message(
        &self,
        incident: &str,
        platform: &str,
        role: &str,
        channel: &str,
        message: &str,
    ) -> Result<(), StoreError> {
        let values = [incident, platform, role, channel, message].map(str::to_string);
        self.with(move |connection| {
            connection.execute(
                "INSERT INTO incident_messages (incident, platform, role, channel, message) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (incident, platform, role) DO UPDATE SET channel = excluded.channel, message = excluded.message",
                params![values[0], values[1], values[2], values[3], values[4]],
            )?;
            Ok(())
        })
        .await
    }

    /// A remembered message: `(channel, message id)`.
    pub async fn message(
        &self,
        incident: &str,
        platform: &str,
        role: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        let values = [incident, platform, role].map(str::to_string);
        self.with(move |connection| {
            Ok(connection
                .query_row(
                    "SELECT channel, message FROM incident_messages WHERE incident = ?1 AND platform = ?2 AND role = ?3",
                    params![values[0], values[1], values[2]],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()?)
        })
        .await
    }

    /// An incident's timeline, in order.
    pub async fn timeline(&self, incident: &str) -> Result<Vec<TimelineEntry>, StoreError> {
        let incident = incident.to_string();
        self.with(move |connection| {
            let mut statement = connection.prepare(
                "SELECT seq, at, actor_id, actor_name, platform, channel, kind, text, data
                 FROM timeline WHERE incident = ?1 ORDER BY seq",
            )?;
            let rows = statement
                .query_map(params![incident], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, String>(1)?,
                        Actor::from_row(row, 2)?,
                        row.get::<_, String>(6)?,
                        row.get::<_, String>(7)?,
                        row.get::<_, String>(8)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter()
                .map(|(seq, at, actor, kind, text, data)| {
                    Ok(TimelineEntry {
                        seq,
                        at,
                        actor,
                        kind,
                        text,
                        data: serde_json::from_str(&data).map_err(corrupt("timeline.data"))?,
                    })
                })
                .collect()
        })
        .await
    }

    /// The approval requests made in an incident, oldest first.
    pub async fn incident_requests(
        &self,
        incident: &str,
    ) -> Result<Vec<super::Request>, StoreError> {
        let incident = incident.to_string();
        let ids: Vec<String> = self
            .with(move |connection| {
                Ok(connection
                    .prepare(
                        "SELECT id FROM requests WHERE incident = ?1 ORDER BY created_at, rowid",
                    )?
                    .query_map(params![incident], |row| row.get::<_, String>(0))?
                    .collect::<Result<Vec<_>, _>>()?)
            })
            .await?;
        let mut requests = Vec::with_capacity(ids.len());
        for id in ids {
            requests.extend(self.request(&id).await?);
        }
        Ok(requests)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Actor {
        Actor {
            id: "U1".into(),
            name: "alice".into(),
            platform: "slack".into(),
            channel: "C1".into(),
        }
    }

    fn declaration(group_key: Option<&str>) -> Declaration {
        Declaration {
            title: "KV cache full".into(),
            severity: "sev2".into(),
            declarer: alice(),
            service: Some("model-server".into()),
            group_key: group_key.map(str::to_string),
            detected_by: "alice".into(),
            started_at: None,
        }
    }

    #[tokio::test]
    async fn declared_incidents_bind_their_channel_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let store = Store::open(&path).unwrap();
        let (first, new) = store.declare(declaration(None)).await.unwrap();
        assert!(new);
        assert_eq!(first.id, "INC-1");
        assert_eq!(first.data.roles["commander"], "alice");
        store
            .update_incident(&first.id, &alice(), "note", |_| {
                Some(("looks like v2".into(), serde_json::Value::Null))
            })
            .await
            .unwrap();
        drop(store);

        let store = Store::open(&path).unwrap();
        let bound = store.incident_in("slack", "C1").await.unwrap().unwrap();
        assert_eq!(bound.id, "INC-1");
        let kinds: Vec<String> = store
            .timeline("INC-1")
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds, ["declared", "note"]);
        let (second, _) = store.declare(declaration(None)).await.unwrap();
        assert_eq!(second.id, "INC-2");
        assert_eq!(
            store.incident_in("slack", "C1").await.unwrap().unwrap().id,
            "INC-2",
            "the channel follows the newest declaration"
        );
    }

    #[tokio::test]
    async fn an_alert_group_opens_one_incident() {
        let store = Store::in_memory().unwrap();
        let (first, new) = store
            .declare(declaration(Some("{}:{alertname=\"X\"}")))
            .await
            .unwrap();
        assert!(new);
        let (again, new) = store
            .declare(declaration(Some("{}:{alertname=\"X\"}")))
            .await
            .unwrap();
        assert!(!new);
        assert_eq!(again.id, first.id);
        assert_eq!(store.incidents().await.unwrap().len(), 1);
    }
}
