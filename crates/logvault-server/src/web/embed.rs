//! The embedded Logs page. A partner's backend mints a viewer token (`POST /v1/viewer-tokens`)
//! and its page frames `/embed?token=…`; the exchange marks the token used (once, atomically,
//! in the store) and answers with the `logvault_embed` cookie of a session bound to what the
//! token names: one account, read-only, the tabs it allows, its end user as the actor of
//! every read. The cookie is `SameSite=None; Secure; Partitioned` so it works inside another
//! site's frame (and only there: a top-level visit is another cookie partition), which is why
//! the exchange is refused over plain HTTP.
//!
//! Every answer to an embedded session carries `frame-ancestors` with the origins its partner
//! registered (none registered: `'none'`), instead of the deployment's; it shows a compact
//! layout without the outer navigation, in the partner's name and colours
//! (`/static/brand.css`, drawn from validated `#rrggbb` values only).

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use logvault_core::embed::{SESSION_TTL, ViewGrant};
use logvault_core::password::{new_token, token_hash};
use logvault_core::{ActorType, EventKind, Micros, Permissions, Principal, Role};
use logvault_store::embed::{EmbedSettings, Redemption, ViewerTokenRecord};
use logvault_store::{StoreError, StoreResult, UserRecord};
use serde::Serialize;
use serde_json::json;

use super::WebError;
use super::render::render;
use super::session::{SignedIn, cookie, is_token_shaped, over_tls};
use crate::AppState;

/// The embedded session's cookie.
pub(crate) const EMBED_COOKIE: &str = "logvault_embed";

/// What an embedded session adds to a signed-in person.
#[derive(Debug, Clone)]
pub(crate) struct EmbedView {
    /// What the view may show.
    pub grant: ViewGrant,
    /// The `frame-ancestors` sources of its partner.
    pub frame_ancestors: String,
    /// The name in the header: the partner's brand name, else the account's name.
    pub brand_name: String,
    /// The end user's display name (else their id).
    pub viewer: String,
    /// The partner's colours.
    pub accent: Option<String>,
    /// The header's background.
    pub background: Option<String>,
}

impl EmbedView {
    /// The first tab the view shows.
    pub(crate) fn home(&self) -> &'static str {
        if self.grant.audit {
            "/audit"
        } else {
            "/threat"
        }
    }
}

/// What the compact layout shows.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct EmbedChrome {
    pub brand_name: String,
    pub viewer: String,
    pub audit: bool,
    pub threat: bool,
    pub export: bool,
}

impl From<&EmbedView> for EmbedChrome {
    fn from(view: &EmbedView) -> Self {
        EmbedChrome {
            brand_name: view.brand_name.clone(),
            viewer: view.viewer.clone(),
            audit: view.grant.audit,
            threat: view.grant.threat,
            export: view.grant.export,
        }
    }
}

/// `frame-ancestors` for the answers of a view whose partner registered `settings`.
fn frame_ancestors(settings: Option<&EmbedSettings>) -> String {
    // Origins were checked (`parse_frame_origin`) before they were stored; check again so a
    // value written behind the API's back cannot open the policy.
    let origins: Vec<&str> = settings
        .map(|s| {
            s.frame_origins
                .iter()
                .map(String::as_str)
                .filter(|o| logvault_core::embed::parse_frame_origin(o).as_deref() == Ok(*o))
                .collect()
        })
        .unwrap_or_default();
    if origins.is_empty() {
        "'none'".into()
    } else {
        origins.join(" ")
    }
}

/// The partner whose settings apply to a view of `account_id`, and the account's name.
async fn partner_of(state: &AppState, account_id: &str) -> StoreResult<(Option<String>, String)> {
    let accounts = state
        .store
        .accounts_in_scope(
            &logvault_core::Scope::All,
            std::slice::from_ref(&account_id.to_string()),
        )
        .await?;
    Ok(match accounts.first() {
        Some(account) => {
            let partner = match account.kind {
                logvault_core::AccountKind::Partner => Some(account.id.clone()),
                _ => account.partner_id.clone(),
            };
            (partner, account.name.clone())
        }
        None => (None, account_id.to_string()),
    })
}

async fn settings_for(
    state: &AppState,
    account_id: &str,
) -> StoreResult<(Option<EmbedSettings>, String)> {
    let (partner, name) = partner_of(state, account_id).await?;
    let settings = match partner {
        Some(partner) => state.store.embed_settings(&partner).await?,
        None => None,
    };
    Ok((settings, name))
}

/// The signed-in view of the live embedded session the request's cookie names, if any.
pub(crate) async fn session(
    headers: &HeaderMap,
    state: &AppState,
) -> StoreResult<Option<SignedIn>> {
    let Some(token) = cookie(headers, EMBED_COOKIE).filter(|t| is_token_shaped(t)) else {
        return Ok(None);
    };
    let hash = token_hash(token);
    let Some(record) = state.store.viewer_session(&hash).await? else {
        return Ok(None);
    };
    if !record.session_live(Micros::now()) {
        return Ok(None);
    }
    let (settings, account_name) = settings_for(state, &record.account_id).await?;
    let view = EmbedView {
        grant: record.grant,
        frame_ancestors: frame_ancestors(settings.as_ref()),
        brand_name: settings
            .as_ref()
            .and_then(|s| s.brand_name.clone())
            .unwrap_or(account_name),
        viewer: record
            .actor_name
            .clone()
            .unwrap_or_else(|| record.actor_id.clone()),
        accent: settings.as_ref().and_then(|s| s.brand_colour.clone()),
        background: settings.as_ref().and_then(|s| s.brand_background.clone()),
    };
    Ok(Some(signed_in_view(&record, hash.to_vec(), view)))
}

fn signed_in_view(record: &ViewerTokenRecord, hash: Vec<u8>, view: EmbedView) -> SignedIn {
    SignedIn {
        principal: Principal {
            actor_id: record.actor_id.clone(),
            actor_type: ActorType::User,
            // One account, whatever its kind: a partner's own view does not reach its merchants.
            role: Role::Merchant,
            account_id: record.account_id.clone(),
            permissions: Permissions::parse("read").unwrap_or_default(),
            actor_name: record.actor_name.clone(),
            viewer_token: Some(record.token_id.clone()),
        },
        user: UserRecord {
            user_id: record.actor_id.clone(),
            username: view.viewer.clone(),
            password_hash: String::new(),
            role: Role::Merchant,
            account_id: record.account_id.clone(),
            created_at: record.created_at,
            disabled: false,
        },
        // No form of the embedded view changes anything; this token matches none.
        csrf_token: format!("embedded:{}", record.token_id),
        token_hash: hash,
        embed: Some(Arc::new(view)),
    }
}

/// Whether an embedded view of `grant` may open `path`.
fn allowed(path: &str, grant: ViewGrant) -> bool {
    if path.starts_with("/static/") {
        return true;
    }
    let kind_path = |kind: EventKind| {
        let tab = super::logs::tab(kind);
        path == tab
            || path.starts_with(&format!("{tab}/"))
            || path == format!("/tail/{}", kind.as_str())
    };
    [EventKind::Audit, EventKind::Threat]
        .into_iter()
        .any(|kind| grant.shows(kind) && kind_path(kind))
}

/// The resolved embedded session, for the [`SignedIn`] extractor.
#[derive(Clone)]
pub(crate) struct Embedded(pub SignedIn);

/// The `frame-ancestors` an answer carries instead of the deployment's.
#[derive(Debug, Clone)]
pub(crate) struct FrameOverride(pub String);

/// Middleware of the Logs page: resolves an embedded session once, keeps it to its tabs
/// (`/` goes to the first, anything else is not found), and marks its answers with its
/// partner's `frame-ancestors`.
pub(crate) async fn layer(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    if request.uri().path() == "/embed" {
        return next.run(request).await;
    }
    let embedded = match session(request.headers(), &state).await {
        Ok(embedded) => embedded,
        Err(error) => return WebError::from(error).into_response(),
    };
    let Some(signed_in) = embedded else {
        // A view whose session ended (revoked, or past its hour) says so, inside its frame.
        if request.uri().path().starts_with("/static/") {
            return next.run(request).await;
        }
        match ended_view(request.headers(), &state).await {
            Ok(Some(frame)) => {
                return refusal(
                    StatusCode::UNAUTHORIZED,
                    "View ended",
                    "This view has ended. Open the logs again from the page that showed them.",
                    Some(frame),
                );
            }
            Ok(None) => return next.run(request).await,
            Err(error) => return WebError::from(error).into_response(),
        }
    };
    let Some(view) = signed_in.embed.clone() else {
        return next.run(request).await;
    };
    let path = request.uri().path().to_string();
    let mut response = if path == "/" {
        Redirect::to(view.home()).into_response()
    } else if !allowed(&path, view.grant) {
        refusal(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is nothing here, or nothing this view may show.",
            None,
        )
    } else {
        request.extensions_mut().insert(Embedded(signed_in));
        next.run(request).await
    };
    response
        .extensions_mut()
        .insert(FrameOverride(view.frame_ancestors.clone()));
    response
}

/// The `frame-ancestors` of the ended view the request's cookie names, if it names one and
/// the person has no session of their own to fall back to.
async fn ended_view(headers: &HeaderMap, state: &AppState) -> StoreResult<Option<String>> {
    let Some(token) = cookie(headers, EMBED_COOKIE).filter(|t| is_token_shaped(t)) else {
        return Ok(None);
    };
    let Some(record) = state.store.viewer_session(&token_hash(token)).await? else {
        return Ok(None);
    };
    if cookie(headers, super::session::SESSION_COOKIE).is_some() {
        return Ok(None);
    }
    let (settings, _) = settings_for(state, &record.account_id).await?;
    Ok(Some(frame_ancestors(settings.as_ref())))
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub(crate) struct ExchangeParams {
    token: String,
}

/// An error page of the exchange, framable by the partner when the token names one.
fn refusal(status: StatusCode, title: &str, message: &str, frame: Option<String>) -> Response {
    let context = json!({"title": title, "status": status.as_u16(), "message": message, "embedded_error": true});
    let mut response = match render("error.html", &context) {
        Ok(html) => (status, Html(html)).into_response(),
        Err(_) => (status, format!("{} {title}\n", status.as_u16())).into_response(),
    };
    if let Some(frame) = frame {
        response.extensions_mut().insert(FrameOverride(frame));
    }
    response
}

/// `GET /embed?token=…`: exchanges a viewer token for an embedded session.
pub(crate) async fn exchange(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<ExchangeParams>,
) -> Result<Response, WebError> {
    if !is_token_shaped(&params.token) {
        return Ok(refusal(
            StatusCode::NOT_FOUND,
            "Link not valid",
            "This view link is not valid. Open the logs again from the page that showed them.",
            None,
        ));
    }
    // Checked before the exchange, so a token sent over plain HTTP by mistake is not spent.
    if !over_tls(&headers) {
        return Ok(refusal(
            StatusCode::BAD_REQUEST,
            "HTTPS needed",
            "The embedded view works only over HTTPS: its cookie must be SameSite=None; \
             Secure to reach the service from inside another site's page.",
            None,
        ));
    }
    let session = new_token().map_err(|e| StoreError::Backend(e.to_string()))?;
    let now = Micros::now();
    let ttl = i64::try_from(SESSION_TTL.as_micros()).unwrap_or(i64::MAX);
    let outcome = state
        .store
        .redeem_viewer_token(
            &token_hash(&params.token),
            &token_hash(&session),
            now,
            Micros(now.0.saturating_add(ttl)),
        )
        .await?;
    let record = match outcome {
        Redemption::Redeemed(record) => record,
        Redemption::Unknown => {
            return Ok(refusal(
                StatusCode::NOT_FOUND,
                "Link not valid",
                "This view link is not valid. Open the logs again from the page that showed them.",
                None,
            ));
        }
        Redemption::Refused(record) => {
            let (settings, _) = settings_for(&state, &record.account_id).await?;
            let frame = Some(frame_ancestors(settings.as_ref()));
            let (title, message) = if record.revoked_at.is_some() {
                (
                    "Link revoked",
                    "This view link was revoked. Open the logs again from the page that showed them.",
                )
            } else if record.redeemed_at.is_some() {
                (
                    "Link already used",
                    "This view link was already used; each link opens the logs once. Open the logs again from the page that showed them.",
                )
            } else {
                (
                    "Link expired",
                    "This view link has expired. Open the logs again from the page that showed them.",
                )
            };
            return Ok(refusal(StatusCode::GONE, title, message, frame));
        }
    };
    let (settings, _) = settings_for(&state, &record.account_id).await?;
    let home = if record.grant.audit {
        "/audit"
    } else {
        "/threat"
    };
    let mut response = Redirect::to(home).into_response();
    let max_age = SESSION_TTL.as_secs();
    let cookie = format!(
        "{EMBED_COOKIE}={session}; Path=/; Max-Age={max_age}; HttpOnly; Secure; SameSite=None; \
         Partitioned"
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
        .extensions_mut()
        .insert(FrameOverride(frame_ancestors(settings.as_ref())));
    Ok(response)
}

/// `GET /static/brand.css`: the embedded view's colours, empty elsewhere.
pub(crate) async fn brand_css(embedded: Option<Extension<Embedded>>) -> impl IntoResponse {
    let mut css = String::new();
    if let Some(view) = embedded.as_ref().and_then(|e| e.0.0.embed.as_ref()) {
        // Only `#rrggbb` values reach here (`parse_colour`); check again all the same.
        let colour = |value: &Option<String>| {
            value
                .as_deref()
                .and_then(|c| logvault_core::embed::parse_colour(c).ok())
        };
        if let Some(accent) = colour(&view.accent) {
            css.push_str(&format!(
                ".embedded .top {{ border-bottom: 3px solid {accent}; }}\n\
                 .embedded nav a[aria-current=\"page\"] {{ border-color: {accent}; color: {accent}; }}\n\
                 .embedded .button:not(.quiet) {{ background: {accent}; border-color: {accent}; }}\n"
            ));
        }
        if let Some(background) = colour(&view.background) {
            css.push_str(&format!(".embedded .top {{ background: {background}; }}\n"));
        }
    }
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        css,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_embedded_view_opens_only_its_tabs() {
        let audit_only = ViewGrant {
            audit: true,
            threat: false,
            export: false,
        };
        let cases = [
            ("/audit", true),
            ("/audit/abc", true),
            ("/tail/audit", true),
            ("/static/app.css", true),
            ("/threat", false),
            ("/threat/abc", false),
            ("/tail/threat", false),
            ("/trends", false),
            ("/password", false),
            ("/auditx", false),
            ("/login", false),
        ];
        for (path, expected) in cases {
            assert_eq!(allowed(path, audit_only), expected, "{path}");
        }
    }

    #[test]
    fn frame_ancestors_come_from_checked_origins_only() {
        let mut settings = EmbedSettings::empty("par", Micros(0));
        assert_eq!(frame_ancestors(Some(&settings)), "'none'");
        assert_eq!(frame_ancestors(None), "'none'");
        settings.frame_origins = vec![
            "https://portal.example.com".into(),
            "https://evil.example; script-src *".into(),
            "http://127.0.0.1:4000".into(),
        ];
        assert_eq!(
            frame_ancestors(Some(&settings)),
            "https://portal.example.com http://127.0.0.1:4000"
        );
    }
}
