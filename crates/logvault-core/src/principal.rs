//! Who is asking (a [`Principal`]) and what they may see (a [`Scope`]).

use std::fmt;

use serde::Serialize;

use crate::account::{AccountId, PLATFORM_ACCOUNT};

/// The role a key or user acts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sees and writes every account.
    Admin,
    /// Sees and writes its partner account and all its merchants.
    Partner,
    /// Sees and writes its own merchant account only.
    Merchant,
}

impl Role {
    /// The stable lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Partner => "partner",
            Role::Merchant => "merchant",
        }
    }

    /// Inverse of [`Role::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "admin" => Some(Role::Admin),
            "partner" => Some(Role::Partner),
            "merchant" => Some(Role::Merchant),
            _ => None,
        }
    }
}

/// One thing a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Write events.
    Ingest,
    /// Read, export and prove events.
    Read,
    /// Administrative actions.
    Admin,
    /// Mint viewer tokens for the embedded Logs page and set the partner's embedding.
    Embed,
}

impl Permission {
    const ALL: [Permission; 4] = [
        Permission::Ingest,
        Permission::Read,
        Permission::Admin,
        Permission::Embed,
    ];

    fn bit(self) -> u8 {
        match self {
            Permission::Ingest => 1,
            Permission::Read => 2,
            Permission::Admin => 4,
            Permission::Embed => 8,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Permission::Ingest => "ingest",
            Permission::Read => "read",
            Permission::Admin => "admin",
            Permission::Embed => "embed",
        }
    }
}

/// A set of [`Permission`]s, written `ingest,read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Permissions(u8);

impl Permissions {
    /// Parses a comma-separated list such as `ingest,read`; unknown or empty names are errors.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut permissions = Permissions::default();
        for name in text.split(',').map(str::trim) {
            let permission = Permission::ALL
                .into_iter()
                .find(|p| p.name() == name)
                .ok_or_else(|| {
                    format!("unknown permission {name:?} (expected ingest, read, admin or embed)")
                })?;
            permissions.0 |= permission.bit();
        }
        Ok(permissions)
    }

    /// Whether the set holds `permission`.
    pub fn contains(self, permission: Permission) -> bool {
        self.0 & permission.bit() != 0
    }
}

impl fmt::Display for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Permission::ALL
            .into_iter()
            .filter(|p| self.contains(*p))
            .map(Permission::name)
            .collect();
        f.write_str(&names.join(","))
    }
}

impl Serialize for Permissions {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(
            Permission::ALL
                .into_iter()
                .filter(|p| self.contains(*p))
                .map(Permission::name),
        )
    }
}

/// What kind of caller a principal is, as recorded in `actor.type` of its audit events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorType {
    /// A machine with an API key.
    ApiKey,
    /// A person signed in to the Logs page.
    User,
}

impl ActorType {
    /// `api_key` or `user`, as in the audit event contract.
    pub fn as_str(self) -> &'static str {
        match self {
            ActorType::ApiKey => "api_key",
            ActorType::User => "user",
        }
    }
}

/// An authenticated caller: an API key or a signed-in person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The key id or user id, recorded as the actor of its own reads.
    pub actor_id: String,
    /// Key or person.
    pub actor_type: ActorType,
    /// The role it acts in.
    pub role: Role,
    /// The account it is bound to (`platform` for admins).
    pub account_id: AccountId,
    /// What it may do.
    pub permissions: Permissions,
    /// The actor's display name, recorded with its reads (a partner's end user in an
    /// embedded view).
    pub actor_name: Option<String>,
    /// The viewer token whose embedded view this is, recorded with its reads.
    pub viewer_token: Option<String>,
}

impl Principal {
    /// The accounts this principal may read and write.
    pub fn scope(&self) -> Scope {
        match self.role {
            Role::Admin => Scope::All,
            Role::Partner => Scope::Partner(self.account_id.clone()),
            Role::Merchant => Scope::Account(self.account_id.clone()),
        }
    }
}

/// The set of accounts a read may touch. Every store read takes one, so no query can
/// forget it. Partner scopes are resolved by the store at query time, so a merchant
/// added to a partner is visible at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every account, including the platform account.
    All,
    /// A partner account and every merchant under it.
    Partner(AccountId),
    /// One account.
    Account(AccountId),
}

impl Scope {
    /// The account an admin's own events are recorded on.
    pub fn platform() -> AccountId {
        PLATFORM_ACCOUNT.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_parse_and_print() {
        let cases = [
            ("ingest", Ok("ingest")),
            ("read,ingest", Ok("ingest,read")),
            ("ingest, read ,admin", Ok("ingest,read,admin")),
            ("embed,read", Ok("read,embed")),
            ("", Err(())),
            ("write", Err(())),
            ("read,", Err(())),
        ];
        for (input, expected) in cases {
            let got = Permissions::parse(input)
                .map(|p| p.to_string())
                .map_err(|_| ());
            assert_eq!(got, expected.map(str::to_string), "{input:?}");
        }
    }
}
