//! Rules every backend applies before writing accounts, keys and users, kept here once so
//! the backends only look things up and store them.

use logvault_core::account::{NewAccount, is_valid_account_id};
use logvault_core::{Account, AccountKind, Micros, Role};

use crate::{StoreError, StoreResult};

/// Checks a new account and returns its id: the chosen one, or a generated `par_…`/`mer_…`.
/// Whether a merchant's partner exists and is a partner is for the backend to look up.
pub fn new_account_id(new: &NewAccount) -> StoreResult<String> {
    let invalid = |message: &str| Err(StoreError::Invalid(message.into()));
    if new.kind == AccountKind::Platform {
        return invalid("the platform account is built in");
    }
    if new.kind == AccountKind::Partner && new.partner_id.is_some() {
        return invalid("a partner account cannot have a partner");
    }
    if new.name.trim().is_empty() || new.name.len() > 200 {
        return invalid("the name must be 1-200 characters");
    }
    match &new.id {
        Some(id) if is_valid_account_id(id) => Ok(id.clone()),
        Some(_) => invalid("account ids are 1-64 characters of A-Z a-z 0-9 _ . -"),
        None => {
            let mut bytes = [0u8; 8];
            getrandom::fill(&mut bytes).map_err(|e| StoreError::Backend(e.to_string()))?;
            Ok(format!("{}{}", new.kind.id_prefix(), hex::encode(bytes)))
        }
    }
}

/// A merchant's partner must be a partner account; `kind` is what the backend found stored for
/// `partner_id` (`None` when there is no such account).
pub fn check_partner(partner_id: &str, kind: Option<&str>) -> StoreResult<()> {
    match kind {
        Some("partner") => Ok(()),
        _ => Err(StoreError::Invalid(format!(
            "{partner_id} is not a partner account"
        ))),
    }
}

/// The record of a new account with the id [`new_account_id`] gave, created now.
pub fn new_account(id: String, new: NewAccount) -> Account {
    Account {
        id,
        kind: new.kind,
        partner_id: new.partner_id,
        name: new.name,
        disabled: false,
        created_at: Micros::now(),
    }
}

/// Usernames are 1-64 letters, digits and `. _ - @`.
pub fn check_username(username: &str) -> StoreResult<()> {
    let valid = !username.is_empty()
        && username.len() <= 64
        && username
            .chars()
            .all(|c| c.is_alphanumeric() || "._-@".contains(c));
    if valid {
        Ok(())
    } else {
        Err(StoreError::Invalid(
            "usernames are 1-64 letters, digits and . _ - @".into(),
        ))
    }
}

/// A role must be bound to an account of the matching kind: admin to the platform, partner
/// to a partner account, merchant to a merchant account. `kind` is the account's stored
/// kind, `None` if it does not exist; `what` names the thing being bound (`key`, `user`).
pub fn check_binding(
    role: Role,
    account_id: &str,
    kind: Option<&str>,
    what: &str,
) -> StoreResult<()> {
    let expected = match role {
        Role::Admin => "platform",
        Role::Partner => "partner",
        Role::Merchant => "merchant",
    };
    match kind {
        None => Err(StoreError::Invalid(format!(
            "account {account_id} does not exist"
        ))),
        Some(kind) if kind != expected => Err(StoreError::Invalid(format!(
            "a {} {what} must belong to a {expected} account, but {account_id} is a {kind} account",
            role.as_str()
        ))),
        Some(_) => Ok(()),
    }
}
