//! What only a real TCP connection shows: a client that writes its whole oversized upload
//! before reading (Python `urllib`, many SDKs) still reads the 413, not a connection reset,
//! and an upload that stalls is answered once the server's discard bound runs out.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::Value;
use tokio::net::TcpSocket;

use crate::support::{Who, World};

/// Three times the default 1 MiB limit, and within the 8 MiB the server discards to answer.
const UPLOAD_BYTES: usize = 3 * 1024 * 1024;

/// The client's socket send buffer. Left alone, loopback autotunes it to 4 MiB, which swallows
/// the whole upload before the server closes and hides the reset a real network shows (there
/// the unsent rest is still in the client's hands when the server's RST arrives).
const CLIENT_SEND_BUFFER: u32 = 64 * 1024;

/// The server discards a refused body for at most 5 s; a stalled upload must be answered
/// well within this, and no client call waits longer than [`IO_TIMEOUT`].
const STALL_ANSWERED_WITHIN: Duration = Duration::from_secs(15);
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// How the client says how long the body is.
#[derive(Debug, Clone, Copy)]
enum Framing {
    /// `Content-Length`, which already tells the server the body is too big.
    ContentLength,
    /// Chunked, so the server finds out only while reading.
    Chunked,
}

/// One upload of [`UPLOAD_BYTES`] of which the client writes `n_sent` before it reads.
#[derive(Debug, Clone, Copy)]
struct Case {
    framing: Framing,
    n_sent: usize,
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_upload_written_before_reading_still_reads_its_413() {
    let world = World::new().await;
    let addr = world.listen().await;
    let authorization = world.authorization(Who::MerchantA1).expect("token");
    let stalled = 2 * 1024 * 1024;
    let cases = [
        Case {
            framing: Framing::ContentLength,
            n_sent: UPLOAD_BYTES,
        },
        Case {
            framing: Framing::Chunked,
            n_sent: UPLOAD_BYTES,
        },
        Case {
            framing: Framing::ContentLength,
            n_sent: stalled,
        },
        Case {
            framing: Framing::Chunked,
            n_sent: stalled,
        },
    ];
    let outcomes = join_all(cases.map(|case| check(addr, &authorization, case))).await;
    let failures: Vec<String> = cases
        .iter()
        .zip(outcomes)
        .filter_map(|(case, outcome)| Some(format!("{case:?}: {}", outcome.err()?)))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Uploads as `case` says and judges the answer.
async fn check(addr: SocketAddr, authorization: &str, case: Case) -> Result<(), String> {
    let started = Instant::now();
    let response = upload_then_read(addr, authorization, case).await?;
    check_payload_too_large(&response)?;
    if case.n_sent < UPLOAD_BYTES && started.elapsed() > STALL_ANSWERED_WITHIN {
        return Err(format!("a stalled upload waited {:?}", started.elapsed()));
    }
    Ok(())
}

/// Writes the request line, headers and `n_sent` bytes of the body, and only then reads the
/// response to the end (the request asks the server to close), as `urllib` does.
async fn upload_then_read(
    addr: SocketAddr,
    authorization: &str,
    case: Case,
) -> Result<Vec<u8>, String> {
    let mut stream = connect(addr).await?;
    let chunked = matches!(case.framing, Framing::Chunked);
    let framing_header = if chunked {
        "transfer-encoding: chunked".to_string()
    } else {
        format!("content-length: {UPLOAD_BYTES}")
    };
    let mut request = format!(
        "POST /v1/audit-events HTTP/1.1\r\nhost: {addr}\r\nauthorization: {authorization}\r\n\
         content-type: application/json\r\nconnection: close\r\n{framing_header}\r\n\r\n"
    )
    .into_bytes();
    let chunk = vec![b'x'; 64 * 1024];
    for _ in 0..case.n_sent / chunk.len() {
        if chunked {
            request.extend(format!("{:x}\r\n", chunk.len()).bytes());
        }
        request.extend(&chunk);
        if chunked {
            request.extend(b"\r\n");
        }
    }
    if chunked && case.n_sent == UPLOAD_BYTES {
        request.extend(b"0\r\n\r\n");
    }
    tokio::task::spawn_blocking(move || {
        stream
            .write_all(&request)
            .map_err(|e| format!("writing the body: {e}"))?;
        let mut response = Vec::new();
        stream
            .read_to_end(&mut response)
            .map_err(|e| format!("reading the response: {e}"))?;
        Ok(response)
    })
    .await
    .map_err(|e| format!("the client thread: {e}"))?
}

/// A blocking connection with a small send buffer and timeouts, so a server that stops reading
/// fails the test instead of hanging it.
async fn connect(addr: SocketAddr) -> Result<TcpStream, String> {
    let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    socket
        .set_send_buffer_size(CLIENT_SEND_BUFFER)
        .map_err(|e| e.to_string())?;
    let stream = socket.connect(addr).await.map_err(|e| e.to_string())?;
    let stream = stream.into_std().map_err(|e| e.to_string())?;
    stream.set_nonblocking(false).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(IO_TIMEOUT))
        .map_err(|e| e.to_string())?;
    Ok(stream)
}

/// A complete `HTTP/1.1 413` whose body is the `payload-too-large` problem, as long as its
/// `Content-Length` says.
fn check_payload_too_large(response: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no complete response head: {text:?}"))?;
    let status_line = head.lines().next().unwrap_or_default();
    if !status_line.starts_with("HTTP/1.1 413 ") {
        return Err(format!("status line {status_line:?}"));
    }
    let header = |name: &str| {
        head.lines()
            .filter_map(|line| line.split_once(':'))
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.trim().to_string())
    };
    if header("content-type").as_deref() != Some("application/problem+json") {
        return Err(format!("content type {:?}", header("content-type")));
    }
    if header("content-length") != Some(body.len().to_string()) {
        return Err(format!(
            "body of {} bytes, content-length {:?}",
            body.len(),
            header("content-length")
        ));
    }
    let problem: Value = serde_json::from_str(body).map_err(|e| format!("{e}: {body}"))?;
    if problem["type"] != "urn:logvault:problem:payload-too-large" || problem["status"] != 413 {
        return Err(format!("problem {problem}"));
    }
    Ok(())
}
