//! Replay protection: each platform request is accepted once. A signed Slack request or a
//! Discord interaction is valid for minutes, so anyone who captures one could send it again;
//! the keys of accepted requests (a Slack `trigger_id`, a Slack `(timestamp, signature)`
//! pair, a Discord interaction id) are kept in the state file until that window has passed,
//! so a restart inside the window does not forget them.

use rusqlite::params;

use super::{Store, StoreError};

/// How a request was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sighting {
    /// Never before: handle it.
    First,
    /// Already accepted inside its window: a replay or a retry; do not run it again.
    Repeat,
}

impl Store {
    /// Record `key` as accepted until `expires_at` (Unix seconds), unless it already is.
    /// Expired keys are dropped on the way, so the table holds one window's worth.
    pub async fn sighting(&self, key: &str, expires_at: i64) -> Result<Sighting, StoreError> {
        let key = key.to_string();
        let now = super::now().as_second();
        self.with(move |connection| {
            let tx = connection.transaction()?;
            tx.execute(
                "DELETE FROM seen_requests WHERE expires_at < ?1",
                params![now],
            )?;
            let inserted = tx.execute(
                "INSERT OR IGNORE INTO seen_requests (key, expires_at) VALUES (?1, ?2)",
                params![key, expires_at],
            )?;
            tx.commit()?;
            Ok(if inserted == 1 {
                Sighting::First
            } else {
                Sighting::Repeat
            })
        })
        .await
    }

    /// Every key in `keys` recorded at once: [`Sighting::Repeat`] if any of them was already
    /// seen (none is then added), else all are recorded together.
    pub async fn sighting_all(
        &self,
        keys: Vec<String>,
        expires_at: i64,
    ) -> Result<Sighting, StoreError> {
        let now = super::now().as_second();
        self.with(move |connection| {
            let tx = connection.transaction()?;
            tx.execute(
                "DELETE FROM seen_requests WHERE expires_at < ?1",
                params![now],
            )?;
            for key in &keys {
                let seen: bool = tx.query_row(
                    "SELECT EXISTS(SELECT 1 FROM seen_requests WHERE key = ?1)",
                    params![key],
                    |row| row.get(0),
                )?;
                if seen {
                    return Ok(Sighting::Repeat);
                }
            }
            for key in &keys {
                tx.execute(
                    "INSERT OR IGNORE INTO seen_requests (key, expires_at) VALUES (?1, ?2)",
                    params![key, expires_at],
                )?;
            }
            tx.commit()?;
            Ok(Sighting::First)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_key_is_first_once_survives_a_reopen_and_expires() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let later = super::super::now().as_second() + 300;
        let store = Store::open(&path).unwrap();
        assert_eq!(store.sighting("a", later).await.unwrap(), Sighting::First);
        assert_eq!(store.sighting("a", later).await.unwrap(), Sighting::Repeat);
        drop(store);
        let store = Store::open(&path).unwrap();
        assert_eq!(store.sighting("a", later).await.unwrap(), Sighting::Repeat);
        let past = super::super::now().as_second() - 1;
        assert_eq!(store.sighting("b", past).await.unwrap(), Sighting::First);
        // Expired: forgotten on the next write, so it counts as new again.
        assert_eq!(store.sighting("b", past).await.unwrap(), Sighting::First);
        assert_eq!(
            store
                .sighting_all(vec!["c".into(), "a".into()], later)
                .await
                .unwrap(),
            Sighting::Repeat
        );
        assert_eq!(store.sighting("c", later).await.unwrap(), Sighting::First);
    }
}
