//! logvault's domain: accounts, principals and scopes, the event wire contract and its
//! validation, API keys, timestamps and leaf hashing. Nothing here does IO.

pub mod account;
pub mod checkpoint;
pub mod detect;
pub mod embed;
pub mod event;
pub mod key;
pub mod merkle;
pub mod metrics;
pub mod otlp;
pub mod password;
pub mod principal;
pub mod scrub;
pub mod siem;
pub mod time;
pub mod validate;

pub use account::{Account, AccountId, AccountKind, PLATFORM_ACCOUNT};
pub use event::{EventKind, NewEvent, StoredEvent};
pub use principal::{ActorType, Permission, Permissions, Principal, Role, Scope};
pub use time::Micros;
pub use validate::FieldProblem;
