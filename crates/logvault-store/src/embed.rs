//! What the store keeps for the embedded Logs page: viewer tokens (only the SHA-256 of the
//! token and of the session it was exchanged for) and each partner's embedding settings.
//!
//! A token is exchanged at most once: the exchange is one conditional update (not used, not
//! revoked, not expired) that also records the session's hash, so two racing exchanges of
//! the same token cannot both succeed, on any backend.

use logvault_core::Micros;
use logvault_core::embed::ViewGrant;

/// A viewer token as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewerTokenRecord {
    /// Public id (`vt_…`), to list and revoke it.
    pub token_id: String,
    /// SHA-256 of the token.
    pub token_hash: Vec<u8>,
    /// The one account the view shows.
    pub account_id: String,
    /// The key that minted it.
    pub issued_by: String,
    /// The partner's end user, recorded as the actor of the view's reads.
    pub actor_id: String,
    /// The end user's display name.
    pub actor_name: Option<String>,
    /// What the view may show.
    pub grant: ViewGrant,
    /// Minting time.
    pub created_at: Micros,
    /// The token cannot be exchanged from then on.
    pub expires_at: Micros,
    /// When it was exchanged, if it was.
    pub redeemed_at: Option<Micros>,
    /// SHA-256 of the session cookie it was exchanged for.
    pub session_hash: Option<Vec<u8>>,
    /// The session it was exchanged for ends then.
    pub session_expires_at: Option<Micros>,
    /// Set once revoked: neither the token nor its session works again.
    pub revoked_at: Option<Micros>,
}

impl ViewerTokenRecord {
    /// Whether the session exchanged for this token is usable at `now`.
    pub fn session_live(&self, now: Micros) -> bool {
        self.revoked_at.is_none()
            && self.redeemed_at.is_some()
            && self.session_expires_at.is_some_and(|end| end > now)
    }
}

/// The answer to an exchange of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redemption {
    /// The token was live and is now used; the record as it now is.
    Redeemed(Box<ViewerTokenRecord>),
    /// No token has this hash.
    Unknown,
    /// The token exists but was already used, is revoked or expired; the record says which.
    Refused(Box<ViewerTokenRecord>),
}

/// A partner's settings for the embedded view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbedSettings {
    /// The partner account.
    pub partner_id: String,
    /// Origins allowed to frame the view (checked by `logvault_core::embed::parse_frame_origin`).
    pub frame_origins: Vec<String>,
    /// The name shown in the view's header instead of the account's.
    pub brand_name: Option<String>,
    /// Accent colour (`#rrggbb`).
    pub brand_colour: Option<String>,
    /// Header background colour (`#rrggbb`).
    pub brand_background: Option<String>,
    /// When they were last set.
    pub updated_at: Micros,
}

impl EmbedSettings {
    /// Settings of `partner_id` with nothing set.
    pub fn empty(partner_id: &str, updated_at: Micros) -> Self {
        EmbedSettings {
            partner_id: partner_id.to_string(),
            frame_origins: Vec::new(),
            brand_name: None,
            brand_colour: None,
            brand_background: None,
            updated_at,
        }
    }
}
