//! Accounts: the platform, partners and the merchants under them.

use serde::Serialize;

use crate::Micros;

/// An opaque account id (`par_…`, `mer_…`, or `platform`).
pub type AccountId = String;

/// The built-in account that holds platform-level events (admins' own sign-ins and reads).
pub const PLATFORM_ACCOUNT: &str = "platform";

/// What an account is; it decides who may read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountKind {
    /// The single built-in platform account.
    Platform,
    /// A partner, which owns merchants.
    Partner,
    /// A merchant, under a partner or directly under the platform.
    Merchant,
}

impl AccountKind {
    /// The stable lowercase name used in storage and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::Platform => "platform",
            AccountKind::Partner => "partner",
            AccountKind::Merchant => "merchant",
        }
    }

    /// Inverse of [`AccountKind::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "platform" => Some(AccountKind::Platform),
            "partner" => Some(AccountKind::Partner),
            "merchant" => Some(AccountKind::Merchant),
            _ => None,
        }
    }

    /// The prefix of generated ids for this kind.
    pub fn id_prefix(self) -> &'static str {
        match self {
            AccountKind::Platform => "platform",
            AccountKind::Partner => "par_",
            AccountKind::Merchant => "mer_",
        }
    }
}

/// A stored account. Accounts are never deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    /// Opaque id.
    pub id: AccountId,
    /// Platform, partner or merchant.
    pub kind: AccountKind,
    /// The owning partner of a merchant; `None` for partners and platform-level merchants.
    pub partner_id: Option<AccountId>,
    /// Display name.
    pub name: String,
    /// Disabled accounts keep their logs but accept no new events.
    pub disabled: bool,
    /// When the account was created.
    pub created_at: Micros,
}

/// Input for creating an account.
#[derive(Debug, Clone)]
pub struct NewAccount {
    /// Partner or merchant (the platform account is built in).
    pub kind: AccountKind,
    /// For a merchant: the owning partner, if any.
    pub partner_id: Option<AccountId>,
    /// Display name.
    pub name: String,
    /// A chosen id; generated from the kind's prefix when `None`.
    pub id: Option<AccountId>,
}

/// Whether `text` is acceptable as an account id: 1–64 characters of `[A-Za-z0-9_.-]`.
pub fn is_valid_account_id(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}
