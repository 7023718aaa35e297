//! MCP sessions: the id `initialize` issues (`Mcp-Session-Id`) and what it is bound to:
//! the credential that opened it and the protocol revision agreed. At most
//! [`SessionLimits::per_owner`] sessions per credential (opening one more ends that
//! credential's least recently used one, so a client that never says goodbye does not
//! lock itself out) and [`SessionLimits::total`] in all (one more is refused: another
//! credential's sessions are never ended for it). A session ends after
//! [`SessionLimits::idle`] without use, [`SessionLimits::absolute`] after it began, or on
//! `DELETE`. The clock is injected. Sessions live in memory only: a restart ends them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use time::OffsetDateTime;

use super::error::McpError;
use crate::clock::SharedClock;

/// The caps and lifetimes of sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    pub per_owner: usize,
    pub total: usize,
    pub idle: Duration,
    pub absolute: Duration,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            per_owner: 8,
            total: 256,
            idle: Duration::from_secs(3600),
            absolute: Duration::from_secs(24 * 3600),
        }
    }
}

#[derive(Debug, Clone)]
struct Session {
    owner: String,
    protocol: &'static str,
    created: OffsetDateTime,
    used: OffsetDateTime,
}

/// What opening a session did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub id: String,
    /// The owner's session that was ended to make room, if one was.
    pub evicted: Option<String>,
}

/// The session table; one per gateway.
#[derive(Debug)]
pub struct Sessions {
    table: Mutex<HashMap<String, Session>>,
    clock: SharedClock,
    limits: SessionLimits,
}

impl Sessions {
    pub fn new(clock: SharedClock, limits: SessionLimits) -> Sessions {
        Sessions {
            table: Mutex::new(HashMap::new()),
            clock,
            limits,
        }
    }

    /// Opens a session for `owner` speaking `protocol`.
    pub fn open(&self, owner: &str, protocol: &'static str) -> Result<Opened, McpError> {
        let now = self.clock.now();
        let mut table = self.lock();
        self.sweep(&mut table, now);
        let mut evicted = None;
        let mine: Vec<(&String, &Session)> =
            table.iter().filter(|(_, s)| s.owner == owner).collect();
        if mine.len() >= self.limits.per_owner {
            evicted = mine
                .iter()
                .min_by_key(|(_, s)| s.used)
                .map(|(id, _)| (*id).clone());
            if let Some(id) = &evicted {
                table.remove(id);
            }
        } else if table.len() >= self.limits.total {
            return Err(McpError::GatewayFull(self.limits.total));
        }
        let id = crate::ids::random_id(16);
        table.insert(
            id.clone(),
            Session {
                owner: owner.to_string(),
                protocol,
                created: now,
                used: now,
            },
        );
        Ok(Opened { id, evicted })
    }

    /// The session's protocol revision, after checking it is `owner`'s and alive; marks
    /// it used.
    pub fn touch(&self, id: &str, owner: &str) -> Result<&'static str, McpError> {
        let now = self.clock.now();
        let mut table = self.lock();
        let alive = match table.get(id) {
            Some(session) if session.owner == owner => self.alive(session, now),
            _ => return Err(unknown(id)),
        };
        if !alive {
            table.remove(id);
            return Err(unknown(id));
        }
        let session = table.get_mut(id).ok_or_else(|| unknown(id))?;
        session.used = now;
        Ok(session.protocol)
    }

    /// Ends `owner`'s session `id`.
    pub fn close(&self, id: &str, owner: &str) -> Result<(), McpError> {
        let mut table = self.lock();
        match table.get(id) {
            Some(session) if session.owner == owner => {
                table.remove(id);
                Ok(())
            }
            _ => Err(unknown(id)),
        }
    }

    /// Sessions open now (expired ones not counted).
    pub fn count(&self) -> usize {
        let now = self.clock.now();
        let mut table = self.lock();
        self.sweep(&mut table, now);
        table.len()
    }

    fn alive(&self, session: &Session, now: OffsetDateTime) -> bool {
        now - session.used < self.limits.idle && now - session.created < self.limits.absolute
    }

    fn sweep(&self, table: &mut HashMap<String, Session>, now: OffsetDateTime) {
        table.retain(|_, session| self.alive(session, now));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.table
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn unknown(id: &str) -> McpError {
    McpError::UnknownSession(id.chars().take(64).collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use super::*;
    use crate::clock::ManualClock;

    fn table(limits: SessionLimits) -> (Sessions, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(
            time::macros::datetime!(2026-01-01 0:00 UTC),
        ));
        (Sessions::new(clock.clone(), limits), clock)
    }

    #[test]
    fn a_session_is_its_owners_only_and_ends_on_close() {
        let (sessions, _) = table(SessionLimits::default());
        let opened = sessions.open("token:a", "2025-11-25").unwrap();
        assert_eq!(opened.id.len(), 32);
        assert_eq!(sessions.touch(&opened.id, "token:a").unwrap(), "2025-11-25");
        assert!(matches!(
            sessions.touch(&opened.id, "token:b"),
            Err(McpError::UnknownSession(_))
        ));
        assert!(sessions.close(&opened.id, "token:b").is_err());
        sessions.close(&opened.id, "token:a").unwrap();
        assert!(sessions.touch(&opened.id, "token:a").is_err());
    }

    #[test]
    fn idle_and_absolute_expiry_follow_the_clock() {
        let (sessions, clock) = table(SessionLimits::default());
        let idle = sessions.open("o", "2025-11-25").unwrap().id;
        let busy = sessions.open("o", "2025-11-25").unwrap().id;
        for _ in 0..24 {
            clock.advance(time::Duration::seconds(3599));
            sessions.touch(&busy, "o").unwrap();
        }
        assert!(sessions.touch(&idle, "o").is_err(), "idle for hours");
        clock.advance(time::Duration::seconds(3599));
        assert!(
            sessions.touch(&busy, "o").is_err(),
            "older than a day, however busy"
        );
        assert_eq!(sessions.count(), 0);
    }

    #[test]
    fn one_owner_past_its_cap_loses_its_oldest_but_never_anothers() {
        let limits = SessionLimits {
            per_owner: 2,
            total: 3,
            ..SessionLimits::default()
        };
        let (sessions, clock) = table(limits);
        let first = sessions.open("a", "2025-11-25").unwrap().id;
        clock.advance(time::Duration::seconds(1));
        let second = sessions.open("a", "2025-11-25").unwrap().id;
        clock.advance(time::Duration::seconds(1));
        let third = sessions.open("a", "2025-11-25").unwrap();
        assert_eq!(third.evicted.as_deref(), Some(first.as_str()));
        assert!(sessions.touch(&second, "a").is_ok());
        sessions.open("b", "2025-11-25").unwrap();
        assert_eq!(
            sessions.open("c", "2025-11-25"),
            Err(McpError::GatewayFull(3))
        );
        assert!(sessions.touch(&second, "a").is_ok());
    }
}
