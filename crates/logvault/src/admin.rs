//! `logvault accounts …` and `logvault keys …`: administration on the data directory, safe
//! while a server runs on it. Results are printed as JSON on stdout for scripts.

use clap::{Args, Subcommand, ValueEnum};
use logvault_core::account::NewAccount;
use logvault_core::validate::{Limits, validate_event};
use logvault_core::{
    AccountKind, EventKind, Micros, PLATFORM_ACCOUNT, Permissions, Role, Scope, key,
};
use logvault_store::{KeyRecord, Store, UserRecord};
use serde_json::{Value, json};

use crate::StorageArgs;

#[derive(Debug, Subcommand)]
pub(crate) enum AccountsCommand {
    /// Create a partner or merchant account.
    Create(CreateAccountArgs),
    /// List every account.
    List(StorageOnly),
}

#[derive(Debug, Args)]
pub(crate) struct StorageOnly {
    #[command(flatten)]
    storage: StorageArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum KindArg {
    Partner,
    Merchant,
}

#[derive(Debug, Args)]
pub(crate) struct CreateAccountArgs {
    /// partner or merchant.
    #[arg(long)]
    kind: KindArg,
    /// For a merchant: the partner it belongs to (omit to put it directly under the platform).
    #[arg(long)]
    partner: Option<String>,
    /// Display name.
    #[arg(long)]
    name: String,
    /// A chosen id (default: generated, `par_…` or `mer_…`).
    #[arg(long)]
    id: Option<String>,
    #[command(flatten)]
    storage: StorageArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum UsersCommand {
    /// Create a person who signs in to the Logs page.
    Create(CreateUserArgs),
    /// List users (never their password hashes).
    List(StorageOnly),
    /// Give a person a new password; every session of theirs ends at once.
    SetPassword(SetPasswordArgs),
}

#[derive(Debug, Args)]
pub(crate) struct SetPasswordArgs {
    /// Sign-in name.
    #[arg(long)]
    username: String,
    /// Read the password from the first line of stdin instead of generating one.
    #[arg(long)]
    password_stdin: bool,
    #[command(flatten)]
    storage: StorageArgs,
}

#[derive(Debug, Args)]
pub(crate) struct CreateUserArgs {
    /// Sign-in name.
    #[arg(long)]
    username: String,
    /// admin, partner or merchant.
    #[arg(long)]
    role: RoleArg,
    /// The partner or merchant account (not for admins).
    #[arg(long)]
    account: Option<String>,
    /// Read the password from the first line of stdin instead of generating one.
    #[arg(long)]
    password_stdin: bool,
    #[command(flatten)]
    storage: StorageArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Create an API key; the full key is printed once and never stored.
    Create(CreateKeyArgs),
    /// List keys (never their secrets).
    List(StorageOnly),
    /// Revoke a key by its id; it stops working at once.
    Revoke(RevokeKeyArgs),
    /// Print the public key that verifies this deployment's checkpoints.
    Public(PublicKeyArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum RoleArg {
    Admin,
    Partner,
    Merchant,
}

#[derive(Debug, Args)]
pub(crate) struct CreateKeyArgs {
    /// admin, partner or merchant.
    #[arg(long)]
    role: RoleArg,
    /// The partner or merchant account the key belongs to (not for admin keys).
    #[arg(long)]
    account: Option<String>,
    /// Comma-separated: ingest, read, admin, embed (mint viewer tokens for the embedded page).
    #[arg(long, default_value = "ingest,read")]
    permissions: String,
    /// A label to recognise the key by.
    #[arg(long)]
    name: Option<String>,
    #[command(flatten)]
    storage: StorageArgs,
}

#[derive(Debug, Args)]
pub(crate) struct PublicKeyArgs {
    #[command(flatten)]
    storage: StorageArgs,
    #[command(flatten)]
    signing: crate::signing::SigningArgs,
}

#[derive(Debug, Args)]
pub(crate) struct RevokeKeyArgs {
    /// The key id (the part after `lv_`), or the whole key.
    id: String,
    #[command(flatten)]
    storage: StorageArgs,
}

/// Records an administrative change as an audit event on the account it concerns, so partners
/// and merchants see key and account changes in their own audit log.
pub(crate) async fn record_change(
    store: &dyn Store,
    account_id: &str,
    action: &str,
    metadata: Value,
) -> anyhow::Result<()> {
    let operator = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let event = json!({
        "account_id": account_id,
        "action": action,
        "outcome": "success",
        "actor": {"id": format!("cli:{operator}"), "type": "system"},
        "metadata": metadata,
    });
    let new_event = validate_event(EventKind::Audit, 0, &event, account_id, &Limits::default())
        .map_err(|problems| anyhow::anyhow!("internal: invalid audit event {problems:?}"))?;
    store.ingest(vec![new_event]).await?;
    Ok(())
}

fn print(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

fn account_json(account: &logvault_core::Account) -> Value {
    json!({
        "id": account.id,
        "kind": account.kind,
        "partner_id": account.partner_id,
        "name": account.name,
        "disabled": account.disabled,
        "created_at": account.created_at,
    })
}

pub(crate) async fn accounts(command: AccountsCommand) -> anyhow::Result<()> {
    match command {
        AccountsCommand::Create(args) => {
            let store = args.storage.open().await?;
            let kind = match args.kind {
                KindArg::Partner => AccountKind::Partner,
                KindArg::Merchant => AccountKind::Merchant,
            };
            let account = store
                .create_account(NewAccount {
                    kind,
                    partner_id: args.partner,
                    name: args.name,
                    id: args.id,
                })
                .await?;
            let metadata = json!({"kind": account.kind, "partner_id": account.partner_id});
            record_change(store.as_ref(), &account.id, "account.created", metadata).await?;
            print(&account_json(&account));
        }
        AccountsCommand::List(args) => {
            let store = args.storage.open().await?;
            let accounts = store.list_accounts(&Scope::All).await?;
            print(&Value::Array(accounts.iter().map(account_json).collect()));
        }
    }
    Ok(())
}

/// Creates a key and returns the full token, which exists only in the return value.
pub(crate) async fn create_key(
    store: &dyn Store,
    role: Role,
    account: Option<String>,
    permissions: Permissions,
    name: Option<String>,
) -> anyhow::Result<(KeyRecord, String)> {
    let (record, token) = new_key(role, account, permissions, name)?;
    store_key(store, &record).await?;
    Ok((record, token))
}

/// A fresh key and its token, not yet stored.
pub(crate) fn new_key(
    role: Role,
    account: Option<String>,
    permissions: Permissions,
    name: Option<String>,
) -> anyhow::Result<(KeyRecord, String)> {
    let account_id = bind_account(role, account)?;
    let generated = key::generate().map_err(|e| anyhow::anyhow!("no randomness available: {e}"))?;
    let record = KeyRecord {
        key_id: generated.key_id,
        secret_hash: generated.secret_hash.to_vec(),
        role,
        account_id,
        permissions,
        name,
        created_at: Micros::now(),
        revoked_at: None,
    };
    Ok((record, generated.token))
}

/// Stores a key and records its creation on the account it belongs to.
pub(crate) async fn store_key(store: &dyn Store, record: &KeyRecord) -> anyhow::Result<()> {
    store.create_key(record.clone()).await?;
    let metadata =
        json!({"key_id": record.key_id, "role": record.role, "permissions": record.permissions});
    record_change(store, &record.account_id, "api_key.created", metadata).await
}

/// Where a role's key or user belongs: admins to the platform, others to `--account`.
fn bind_account(role: Role, account: Option<String>) -> anyhow::Result<String> {
    match (role, account) {
        (Role::Admin, None) => Ok(PLATFORM_ACCOUNT.to_string()),
        (Role::Admin, Some(_)) => anyhow::bail!("admins belong to the platform; drop --account"),
        (_, Some(account)) => Ok(account),
        (_, None) => anyhow::bail!("{} roles need --account", role.as_str()),
    }
}

fn role_of(role: RoleArg) -> Role {
    match role {
        RoleArg::Admin => Role::Admin,
        RoleArg::Partner => Role::Partner,
        RoleArg::Merchant => Role::Merchant,
    }
}

/// Creates a user with `password` and records it on the user's account.
pub(crate) async fn create_user(
    store: &dyn Store,
    username: &str,
    role: Role,
    account: Option<String>,
    password: &str,
) -> anyhow::Result<UserRecord> {
    anyhow::ensure!(
        password.chars().count() >= 12,
        "passwords need at least 12 characters"
    );
    let record = UserRecord {
        user_id: format!("usr_{}", &logvault_core::password::new_token()?[..16]),
        username: username.to_string(),
        password_hash: logvault_core::password::hash_password(password)?,
        role,
        account_id: bind_account(role, account)?,
        created_at: Micros::now(),
        disabled: false,
    };
    store.create_user(record.clone()).await?;
    let metadata = json!({"user_id": record.user_id, "username": record.username, "role": role});
    record_change(store, &record.account_id, "user.created", metadata).await?;
    Ok(record)
}

fn user_json(record: &UserRecord) -> Value {
    json!({
        "id": record.user_id,
        "username": record.username,
        "role": record.role,
        "account_id": record.account_id,
        "created_at": record.created_at,
        "disabled": record.disabled,
    })
}

pub(crate) async fn users(command: UsersCommand) -> anyhow::Result<()> {
    match command {
        UsersCommand::Create(args) => {
            let store = args.storage.open().await?;
            let (password, generated) = read_or_generate_password(args.password_stdin)?;
            let role = role_of(args.role);
            let record = create_user(
                store.as_ref(),
                &args.username,
                role,
                args.account,
                &password,
            )
            .await?;
            let mut output = user_json(&record);
            if generated {
                output["password"] = password.into();
            }
            print(&output);
        }
        UsersCommand::List(args) => {
            let store = args.storage.open().await?;
            let users = store.list_users().await?;
            print(&Value::Array(users.iter().map(user_json).collect()));
        }
        UsersCommand::SetPassword(args) => {
            let store = args.storage.open().await?;
            let (password, generated) = read_or_generate_password(args.password_stdin)?;
            let (record, n_sessions_ended) =
                set_password(store.as_ref(), &args.username, &password).await?;
            let mut output = user_json(&record);
            output["sessions_ended"] = n_sessions_ended.into();
            if generated {
                output["password"] = password.into();
            }
            print(&output);
        }
    }
    Ok(())
}

/// The first line of stdin, or a generated password (`true`: show it once).
fn read_or_generate_password(from_stdin: bool) -> anyhow::Result<(String, bool)> {
    if !from_stdin {
        return Ok((logvault_core::password::generate_password()?, true));
    }
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok((line.trim_end_matches(['\r', '\n']).to_string(), false))
}

/// Replaces the password of `username`, which ends every session of theirs, and records
/// `user.password_changed` on their account; returns the user and how many sessions ended.
pub(crate) async fn set_password(
    store: &dyn Store,
    username: &str,
    password: &str,
) -> anyhow::Result<(UserRecord, u64)> {
    anyhow::ensure!(
        password.chars().count() >= 12,
        "passwords need at least 12 characters"
    );
    let record = store
        .user_by_name(username)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no user is named {username:?}"))?;
    let hash = logvault_core::password::hash_password(password)?;
    let n_sessions_ended = store
        .set_password(&record.user_id, &hash)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no user is named {username:?}"))?;
    let metadata = json!({"user_id": record.user_id, "username": record.username,
        "sessions_ended": n_sessions_ended});
    record_change(store, &record.account_id, "user.password_changed", metadata).await?;
    Ok((record, n_sessions_ended))
}

fn key_json(record: &KeyRecord) -> Value {
    json!({
        "id": record.key_id,
        "role": record.role,
        "account_id": record.account_id,
        "permissions": record.permissions,
        "name": record.name,
        "created_at": record.created_at,
        "revoked_at": record.revoked_at,
    })
}

pub(crate) async fn keys(command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create(args) => {
            let store = args.storage.open().await?;
            let role = role_of(args.role);
            let permissions = Permissions::parse(&args.permissions).map_err(anyhow::Error::msg)?;
            let (record, token) =
                create_key(store.as_ref(), role, args.account, permissions, args.name).await?;
            let mut output = key_json(&record);
            output["key"] = token.into();
            print(&output);
        }
        KeysCommand::Public(args) => {
            let dir = args.storage.dir();
            let signer = args.signing.load_or_create(&dir)?;
            println!("{}", signer.verifier_key().encode());
        }
        KeysCommand::List(args) => {
            let store = args.storage.open().await?;
            let keys = store.list_keys().await?;
            print(&Value::Array(keys.iter().map(key_json).collect()));
        }
        KeysCommand::Revoke(args) => {
            let store = args.storage.open().await?;
            let key_id = key::parse(&args.id).map_or(args.id.as_str(), |(key_id, _)| key_id);
            let record = store.key(key_id).await?;
            if !store.revoke_key(key_id).await? {
                anyhow::bail!("no active key with id {key_id:?}");
            }
            if let Some(record) = record {
                let metadata = json!({"key_id": key_id, "role": record.role});
                record_change(
                    store.as_ref(),
                    &record.account_id,
                    "api_key.revoked",
                    metadata,
                )
                .await?;
            }
            print(&json!({"id": key_id, "revoked": true}));
        }
    }
    Ok(())
}
