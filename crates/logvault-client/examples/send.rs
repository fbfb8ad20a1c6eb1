//! Sends a failed sign-in and an SDK error to a logvault service, then waits until both are
//! stored: `cargo run -p logvault-client --example send -- http://127.0.0.1:8080 lv_…`.

use logvault_client::{AuditEvent, Client, Outcome, Source, ThreatEvent};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(key)) = (args.next(), args.next()) else {
        return Err("usage: send URL API_KEY".into());
    };
    let client = Client::builder(url, key).build()?;
    let sign_in = AuditEvent::new("user.login", Outcome::Failure, "usr_42")
        .reason("bad_password")
        .ip("203.0.113.7");
    client.audit(sign_in).await?;
    let error = ThreatEvent::new(
        Source::Api,
        "GatewayTimeout",
        "upstream timed out after 30s",
    )
    .version("API 2024-06-01")
    .environment("production")
    .api_call("POST", "/v1/payments", 504);
    client.threat(error).await?;
    let stats = client.shutdown().await?;
    println!("{stats:?}");
    Ok(())
}
