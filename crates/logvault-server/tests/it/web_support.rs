//! Helpers for the Logs-page tests: people (users) on the standard fixture, signing in
//! through the real form (double-submit token included), and requests carrying a session
//! cookie.

use axum::body::Body;
use axum::http::{Method, Request, header};
use logvault_core::password::hash_password;
use logvault_core::{Micros, Role};
use logvault_store::UserRecord;

use crate::support::{MER_A1, PAR_A, PLATFORM, Reply, World};

/// The password every fixture person uses.
pub const PASSWORD: &str = "correct horse battery staple";

/// The fixture's people: username, role, account.
pub const PEOPLE: [(&str, Role, &str); 3] = [
    ("ada-admin", Role::Admin, PLATFORM),
    ("pat-partner", Role::Partner, PAR_A),
    ("mo-merchant", Role::Merchant, MER_A1),
];

/// The user id of a fixture person.
pub fn user_id(username: &str) -> String {
    format!("usr_{username}")
}

/// Creates a user directly in the store.
pub async fn create_person(
    world: &World,
    username: &str,
    role: Role,
    account: &str,
    disabled: bool,
) {
    world
        .store
        .create_user(UserRecord {
            user_id: user_id(username),
            username: username.to_string(),
            password_hash: hash_password(PASSWORD).expect("hash"),
            role,
            account_id: account.to_string(),
            created_at: Micros::now(),
            disabled,
        })
        .await
        .expect("create user");
}

/// The standard fixture plus the three [`PEOPLE`].
pub async fn world_with_people() -> World {
    let world = World::new().await;
    for (username, role, account) in PEOPLE {
        create_person(&world, username, role, account, false).await;
    }
    world
}

/// Every `Set-Cookie` value of a reply.
pub fn set_cookies(reply: &Reply) -> Vec<String> {
    reply
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .map(str::to_string)
        .collect()
}

/// The value a reply sets for cookie `name` (`Some("")` when it clears it).
pub fn cookie_value(reply: &Reply, name: &str) -> Option<String> {
    set_cookies(reply).iter().find_map(|cookie| {
        let first = cookie.split(';').next()?;
        let (key, value) = first.split_once('=')?;
        (key == name).then(|| value.to_string())
    })
}

/// The `Location` header.
pub fn location(reply: &Reply) -> String {
    reply
        .headers
        .get(header::LOCATION)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// The value of the first hidden `csrf` field in an HTML page.
pub fn csrf_field(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("a csrf field") + marker.len();
    html[start..]
        .split('"')
        .next()
        .expect("field value")
        .to_string()
}

/// `GET uri` with a `Cookie` header (if any).
pub async fn get_with(world: &World, cookie: Option<&str>, uri: &str) -> Reply {
    let mut builder = Request::builder().method(Method::GET).uri(uri);
    if let Some(cookie) = cookie {
        builder = builder.header(header::COOKIE, cookie);
    }
    world
        .send_request(builder.body(Body::empty()).expect("request"))
        .await
}

/// `POST uri` with a form body and a `Cookie` header (if any).
pub async fn post_form(world: &World, cookie: Option<&str>, uri: &str, form: &str) -> Reply {
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(cookie) = cookie {
        builder = builder.header(header::COOKIE, cookie);
    }
    world
        .send_request(builder.body(Body::from(form.to_string())).expect("request"))
        .await
}

/// The sign-in form's double-submit token (cookie and field carry the same value).
pub async fn login_token(world: &World) -> String {
    let reply = get_with(world, None, "/login").await;
    reply.assert_status(200);
    let token = cookie_value(&reply, "logvault_login_csrf").expect("login csrf cookie");
    assert_eq!(csrf_field(&reply.text()), token, "field and cookie agree");
    token
}

/// Posts the sign-in form with a valid double-submit token.
pub async fn attempt(world: &World, username: &str, password: &str) -> Reply {
    let token = login_token(world).await;
    let form = format!(
        "username={}&password={}&csrf={token}",
        crate::support::encode(username),
        crate::support::encode(password)
    );
    post_form(
        world,
        Some(&format!("logvault_login_csrf={token}")),
        "/login",
        &form,
    )
    .await
}

/// A signed-in person: the `Cookie` header value to send.
pub async fn sign_in(world: &World, username: &str) -> String {
    let reply = attempt(world, username, PASSWORD).await;
    assert_eq!(
        reply.status.as_u16(),
        303,
        "sign-in of {username}: {}",
        reply.text()
    );
    let token = cookie_value(&reply, "logvault_session").expect("session cookie");
    format!("logvault_session={token}")
}
