//! Scopes: what a credential may do, as a closed set.
//!
//! `admin` implies every other scope. A credential can never be given a scope its
//! creator lacks ([`Scopes::grantable_by`]). Parsing refuses unknown names rather than
//! ignoring them, so a typo never widens or silently narrows access.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Scope {
    #[serde(rename = "chat:read")]
    ChatRead,
    #[serde(rename = "chat:write")]
    ChatWrite,
    #[serde(rename = "agent:read")]
    AgentRead,
    #[serde(rename = "agent:manage")]
    AgentManage,
    #[serde(rename = "channel:read")]
    ChannelRead,
    #[serde(rename = "channel:manage")]
    ChannelManage,
    #[serde(rename = "config:read")]
    ConfigRead,
    #[serde(rename = "config:write")]
    ConfigWrite,
    #[serde(rename = "admin")]
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 9] = [
        Scope::ChatRead,
        Scope::ChatWrite,
        Scope::AgentRead,
        Scope::AgentManage,
        Scope::ChannelRead,
        Scope::ChannelManage,
        Scope::ConfigRead,
        Scope::ConfigWrite,
        Scope::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::ChatRead => "chat:read",
            Scope::ChatWrite => "chat:write",
            Scope::AgentRead => "agent:read",
            Scope::AgentManage => "agent:manage",
            Scope::ChannelRead => "channel:read",
            Scope::ChannelManage => "channel:manage",
            Scope::ConfigRead => "config:read",
            Scope::ConfigWrite => "config:write",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Result<Scope, String> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == text.trim())
            .ok_or_else(|| {
                let known: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
                format!("unknown scope {text:?}: use {}", known.join(", "))
            })
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes(u16);

impl Scopes {
    pub fn all() -> Scopes {
        Scopes::from_iter([Scope::Admin])
    }

    pub fn none() -> Scopes {
        Scopes(0)
    }

    /// Parses a comma-separated list such as `chat:read,chat:write`.
    pub fn parse_list(text: &str) -> Result<Scopes, String> {
        let mut scopes = Scopes::none();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            scopes.0 |= Scope::parse(part)?.bit();
        }
        if scopes.0 == 0 {
            return Err("no scopes given".into());
        }
        Ok(scopes)
    }

    /// True when this set allows `scope` (`admin` allows everything).
    pub fn allows(self, scope: Scope) -> bool {
        self.0 & (Scope::Admin.bit() | scope.bit()) != 0
    }

    /// True when every scope in `requested` is allowed by this set, i.e. a holder of
    /// this set may hand out `requested`.
    pub fn grantable_by(requested: Scopes, holder: Scopes) -> bool {
        requested.iter().all(|scope| holder.allows(scope))
    }

    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL
            .into_iter()
            .filter(move |s| self.0 & s.bit() != 0)
    }

    pub fn names(self) -> Vec<&'static str> {
        self.iter().map(Scope::as_str).collect()
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        Scopes(iter.into_iter().fold(0, |bits, s| bits | s.bit()))
    }
}

impl Serialize for Scopes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.names())
    }
}

impl<'de> Deserialize<'de> for Scopes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let names = Vec::<String>::deserialize(d)?;
        names
            .iter()
            .map(|n| Scope::parse(n))
            .collect::<Result<Scopes, _>>()
            .map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.names().join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_implies_every_scope_and_others_only_themselves() {
        let admin = Scopes::all();
        for scope in Scope::ALL {
            assert!(admin.allows(scope));
        }
        let chat = Scopes::parse_list("chat:read, chat:write").unwrap();
        assert!(chat.allows(Scope::ChatRead) && chat.allows(Scope::ChatWrite));
        assert!(!chat.allows(Scope::ConfigWrite) && !chat.allows(Scope::Admin));
    }

    #[test]
    fn nobody_grants_more_than_they_hold() {
        let chat = Scopes::parse_list("chat:read,chat:write").unwrap();
        let read = Scopes::parse_list("chat:read").unwrap();
        assert!(Scopes::grantable_by(read, chat));
        assert!(!Scopes::grantable_by(chat, read));
        assert!(!Scopes::grantable_by(Scopes::all(), chat));
        assert!(Scopes::grantable_by(chat, Scopes::all()));
    }

    #[test]
    fn parsing_refuses_unknown_and_empty_lists_and_round_trips() {
        assert!(
            Scopes::parse_list("chat:read,chat:delete")
                .unwrap_err()
                .contains("chat:delete")
        );
        assert!(Scopes::parse_list(" , ").is_err());
        assert!(Scopes::parse_list("ADMIN").is_err());
        let scopes = Scopes::parse_list("config:read,agent:read").unwrap();
        let json = serde_json::to_string(&scopes).unwrap();
        assert_eq!(json, r#"["agent:read","config:read"]"#);
        assert_eq!(serde_json::from_str::<Scopes>(&json).unwrap(), scopes);
        assert!(serde_json::from_str::<Scopes>(r#"["root"]"#).is_err());
    }
}
