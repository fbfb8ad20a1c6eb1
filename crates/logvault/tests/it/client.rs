//! `logvault-client` against the real server: batches arrive whole, a server killed and
//! restarted mid-stream loses nothing and stores nothing twice, 429 `Retry-After` is waited
//! out, and an invalid event is refused alone and reported.

use std::time::Duration;

use logvault_client::{AuditEvent, Client, Error, Outcome, Source, ThreatEvent};

use crate::server::{Server, temp_data_dir};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

fn sign_in(i: usize) -> AuditEvent {
    AuditEvent::new("user.login", Outcome::Failure, format!("usr_{i}"))
        .reason("bad_password")
        .ip("203.0.113.7")
        .metadata("n", i)
}

#[test]
fn nothing_is_lost_or_doubled_across_a_server_restart() {
    let (_guard, dir) = temp_data_dir();
    let mut server = Server::start(&dir, &[]);
    let key = server.admin_key();
    let addr = server.addr.clone();
    let runtime = runtime();
    let client = runtime.block_on(async {
        Client::builder(format!("http://{addr}"), &key)
            .max_batch(50)
            .max_delay(Duration::from_millis(20))
            .build()
            .expect("a client")
    });
    runtime.block_on(async {
        for i in 0..500 {
            client.audit(sign_in(i)).await.expect("handed over");
        }
        client.flush().await.expect("all stored");
    });
    // The server dies with events in flight and comes back on the same address.
    let sending = runtime.spawn({
        let client = std::sync::Arc::new(client);
        async move {
            for i in 500..1500 {
                client.audit(sign_in(i)).await.expect("handed over");
                if i % 100 == 0 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            let error = ThreatEvent::new(Source::Sdk, "NetworkTimeout", "timed out")
                .version("ios-sdk 4.2.1");
            client.threat(error).await.expect("handed over");
            client
        }
    });
    std::thread::sleep(Duration::from_millis(150));
    server.kill();
    let dir_text = dir.to_str().expect("UTF-8 path");
    let server = Server::start_with(&dir, &["serve", "--listen", &addr, "--data-dir", dir_text]);
    let client = runtime.block_on(sending).expect("the sender finished");
    let client = std::sync::Arc::into_inner(client).expect("the only handle");
    let stats = runtime.block_on(client.shutdown()).expect("all stored");
    assert_eq!(stats.sent, 1501, "{stats:?}");
    assert_eq!((stats.rejected, stats.failed), (0, 0), "{stats:?}");

    let stored = server.list_all(&key, "audit", "action=user.login");
    let mut numbers: Vec<u64> = stored
        .iter()
        .map(|event| event["metadata"]["n"].as_u64().expect("n"))
        .collect();
    numbers.sort_unstable();
    assert_eq!(
        numbers,
        (0..1500).collect::<Vec<u64>>(),
        "each event exactly once"
    );
    assert_eq!(server.list_all(&key, "threat", "").len(), 1);
}

#[test]
fn rate_limits_are_waited_out_and_invalid_events_reported() {
    let (_guard, dir) = temp_data_dir();
    let server = Server::start(&dir, &["--rate-limit", "2"]);
    let key = server.admin_key();
    let runtime = runtime();
    let outcome = runtime.block_on(async {
        let client = Client::builder(format!("http://{}", server.addr), &key)
            .max_batch(10)
            .max_delay(Duration::from_millis(5))
            .build()
            .expect("a client");
        for i in 0..60 {
            client.audit(sign_in(i)).await.expect("handed over");
        }
        let stored = client.flush().await.expect("stored after waiting");
        // One event the service refuses; its batch mates are stored.
        client
            .audit(sign_in(60).ip("not an address"))
            .await
            .expect("handed over");
        client.audit(sign_in(61)).await.expect("handed over");
        let refused = client.flush().await;
        (stored, refused, client.stats())
    });
    let (stored, refused, stats) = outcome;
    assert_eq!(stored.sent, 60);
    assert!(
        stored.retries > 0,
        "the limit was hit and waited out: {stored:?}"
    );
    match refused {
        Err(Error::Undelivered {
            rejected: 1,
            failed: 0,
            last,
        }) => assert!(last.contains("origin.ip"), "{last}"),
        other => panic!("expected one refused event, got {other:?}"),
    }
    assert_eq!((stats.sent, stats.rejected), (61, 1));
    // The same key's bucket refills (two requests a second) before it reads.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        server.list_all(&key, "audit", "action=user.login").len(),
        61
    );
}
