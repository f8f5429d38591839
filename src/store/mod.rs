//! Durable state: one SQLite file holding approval requests and decisions, incidents and their
//! timelines, and the append-only audit log.
//!
//! Every write commits (WAL, `synchronous=FULL`) before the caller returns, so when the chat is
//! told something happened it survives a `kill -9`. The schema is versioned with SQLite's
//! `user_version` and migrated forward at open. Calls run on tokio's blocking pool behind one
//! connection: SQLite serialises writers anyway, and one connection makes `BEGIN IMMEDIATE`
//! transactions the only concurrency story to reason about.

pub mod audit;
pub mod incidents;
pub mod replay;
pub mod requests;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

pub use audit::{Actor, AuditEntry, AuditKind, Record};
pub use incidents::{Declaration, Incident, IncidentData, TimelineEntry};
pub use requests::{
    Ballot, Counted, Decision, DecisionRecord, NewRequest, Refusal, Request, RequestState, Vote,
};

/// Why the state store failed. Messages say which file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file cannot be opened or created.
    #[error(
        "cannot open the state file {path}: {source} (check the directory exists and is writable, or pass --state)"
    )]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: rusqlite::Error,
    },
    /// The directory for a new state file cannot be created.
    #[error("cannot create {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file was written by a newer Firebreak.
    #[error(
        "the state file is at schema version {found}, newer than this Firebreak knows ({known}); upgrade Firebreak or point --state elsewhere"
    )]
    TooNew {
        /// Its version.
        found: i64,
        /// Ours.
        known: i64,
    },
    /// A query failed.
    #[error("state store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored JSON column cannot be read back.
    #[error("state store holds unreadable data in {what}: {source}")]
    Corrupt {
        /// Which column.
        what: &'static str,
        /// Why.
        source: serde_json::Error,
    },
    /// The blocking task running a query died.
    #[error("state store task failed: {0}")]
    Task(String),
}

/// The schema, one entry per version; entry `n` migrates version `n` to `n + 1`.
/// Never edit a shipped entry: add a new one.
const MIGRATIONS: &[&str] = &[
    // 1: approvals, the audit log, incidents and their timelines.
    r#"
    CREATE TABLE requests (
        id TEXT PRIMARY KEY,
        service TEXT NOT NULL,
        stage TEXT NOT NULL,
        action TEXT NOT NULL,
        plan TEXT NOT NULL,
        policy TEXT NOT NULL,
        requester_id TEXT NOT NULL,
        requester_name TEXT NOT NULL,
        platform TEXT NOT NULL,
        channel TEXT NOT NULL,
        incident TEXT,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        state TEXT NOT NULL,
        outcome TEXT,
        finished_at TEXT
    );
    CREATE TABLE decisions (
        request TEXT NOT NULL REFERENCES requests(id),
        user_id TEXT NOT NULL,
        user_name TEXT NOT NULL,
        decision TEXT NOT NULL,
        reason TEXT,
        platform TEXT NOT NULL,
        channel TEXT NOT NULL,
        at TEXT NOT NULL,
        PRIMARY KEY (request, user_id)
    );
    CREATE TABLE audit (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        kind TEXT NOT NULL,
        incident TEXT,
        request TEXT,
        actor_id TEXT NOT NULL,
        actor_name TEXT NOT NULL,
        platform TEXT NOT NULL,
        channel TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    CREATE INDEX audit_incident ON audit(incident, seq);
    CREATE TRIGGER audit_append_only_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TRIGGER audit_append_only_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TABLE incidents (
        number INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        title TEXT NOT NULL,
        severity TEXT NOT NULL,
        open INTEGER NOT NULL,
        group_key TEXT UNIQUE,
        data TEXT NOT NULL,
        declared_at TEXT NOT NULL
    );
    CREATE TABLE incident_channels (
        platform TEXT NOT NULL,
        channel TEXT NOT NULL,
        incident TEXT NOT NULL REFERENCES incidents(id),
        PRIMARY KEY (platform, channel)
    );
    CREATE TABLE incident_messages (
        incident TEXT NOT NULL REFERENCES incidents(id),
        platform TEXT NOT NULL,
        role TEXT NOT NULL,
        channel TEXT NOT NULL,
        message TEXT NOT NULL,
        PRIMARY KEY (incident, platform, role)
    );
    CREATE TABLE timeline (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        incident TEXT NOT NULL REFERENCES incidents(id),
        at TEXT NOT NULL,
        actor_id TEXT NOT NULL,
        actor_name TEXT NOT NULL,
        platform TEXT NOT NULL,
        channel TEXT NOT NULL,
        kind TEXT NOT NULL,
        text TEXT NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX timeline_incident ON timeline(incident, seq);
    "#,
    // 2: platform requests already accepted (replay protection, see `replay.rs`), kept until
    // their signature window has passed.
    r#"
    CREATE TABLE seen_requests (
        key TEXT PRIMARY KEY,
        expires_at INTEGER NOT NULL
    );
    CREATE INDEX seen_requests_expiry ON seen_requests(expires_at);
    "#,
];

/// The state store. Cheap to clone; clones share one connection.
#[derive(Clone)]
pub struct Store {
    connection: Arc<Mutex<Connection>>,
    location: Arc<str>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("location", &self.location)
            .finish()
    }
}

impl Store {
    /// Open (creating it and its directory if needed) and migrate the state file at `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let open = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let connection = Connection::open(path).map_err(open)?;
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(open)?;
        Store::prepare(connection, &path.display().to_string())
    }

    /// A store that lives only as long as the process (the demo, tests).
    pub fn in_memory() -> Result<Store, StoreError> {
        Store::prepare(Connection::open_in_memory()?, ":memory:")
    }

    fn prepare(mut connection: Connection, location: &str) -> Result<Store, StoreError> {
        // FULL: a commit is on disk before we tell the chat anything.
        connection.pragma_update(None, "synchronous", "FULL")?;
        connection.pragma_update(None, "foreign_keys", "ON")?;
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        migrate(&mut connection)?;
        let store = Store {
            connection: Arc::new(Mutex::new(connection)),
            location: location.into(),
        };
        tracing::info!(state = %store.location, "state store open");
        Ok(store)
    }

    /// Where the state lives, for messages.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Run `work` on the connection, on the blocking pool.
    pub(crate) async fn with<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let connection = Arc::clone(&self.connection);
        tokio::task::spawn_blocking(move || {
            // A panic while holding the lock cannot leave a transaction half-applied (SQLite
            // rolls it back), so a poisoned lock is safe to keep using.
            let mut connection = connection
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            work(&mut connection)
        })
        .await
        .map_err(|error| StoreError::Task(error.to_string()))?
    }
}

fn migrate(connection: &mut Connection) -> Result<(), StoreError> {
    let known = MIGRATIONS.len() as i64;
    let found: i64 = connection.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if found > known {
        return Err(StoreError::TooNew { found, known });
    }
    for (version, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = connection.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version as i64 + 1)?;
        tx.commit()?;
        tracing::info!(version = version + 1, "state store migrated");
    }
    Ok(())
}

/// Now, as stored: RFC 3339 UTC with second precision.
pub(crate) fn now() -> jiff::Timestamp {
    let now = jiff::Timestamp::now();
    jiff::Timestamp::from_second(now.as_second()).unwrap_or(now)
}

/// Now as stored text.
pub fn now_text() -> String {
    now().to_string()
}

/// A short random id (8 hex digits): unguessable enough that a click cannot be forged by
/// counting, short enough to type as `/approve 7f3a9c1e`.
pub(crate) fn new_id() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 4];
    if ring::rand::SystemRandom::new().fill(&mut bytes).is_err() {
        // The OS refused randomness (it never does on Linux); a clock-derived id is still
        // unique within one process.
        let nanos = jiff::Timestamp::now().as_nanosecond() as u64;
        bytes = (nanos as u32).to_be_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_the_file_and_its_directory_and_migrates_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/state.db");
        drop(Store::open(&path).unwrap());
        assert!(path.exists());
        let store = Store::open(&path).unwrap();
        let version: i64 = store
            .connection
            .lock()
            .unwrap()
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
    }

    #[test]
    fn refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let connection = Connection::open(&path).unwrap();
        connection
            .pragma_update(None, "user_version", 99i64)
            .unwrap();
        drop(connection);
        let error = Store::open(&path).unwrap_err().to_string();
        assert!(error.contains("schema version 99"), "{error}");
    }

    #[test]
    fn ids_are_short_hex_and_distinct() {
        let a = new_id();
        let b = new_id();
        assert_eq!(a.len(), 8);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
