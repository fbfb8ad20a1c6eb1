//! A throwaway PostgreSQL 15 for the tests: `initdb` into a temporary directory (as the
//! `postgres` OS user when running as root), started on a free port with its socket inside
//! that directory, stopped and removed when the last test using it drops it — also when a
//! test panics. `LOGVAULT_TEST_PG_URL` (an owner-role URL with CREATEDB and CREATEROLE)
//! points the tests at an existing server instead. Every test gets its own database, migrated
//! by an owner role, and a restricted application role to connect as.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, Weak};

use tokio_postgres::NoTls;

const BIN: &str = "/usr/lib/postgresql/15/bin";
const OWNER: &str = "lv_owner";
const APP: &str = "lv_app";

/// A running cluster; stopped and deleted on drop.
pub struct Cluster {
    dir: tempfile::TempDir,
    port: u16,
    as_postgres: bool,
}

static SHARED: Mutex<Weak<Cluster>> = Mutex::new(Weak::new());

fn run(as_postgres: bool, program: &Path, args: &[&str]) -> Result<String, String> {
    let mut command = if as_postgres {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    };
    let output = command
        .args(args)
        .current_dir("/")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if output.status.success() {
        Ok(text)
    } else {
        Err(format!("{} failed: {text}", program.display()))
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
}

impl Cluster {
    fn start() -> Result<Cluster, String> {
        let bin = PathBuf::from(BIN);
        if !bin.join("initdb").exists() {
            return Err(format!(
                "PostgreSQL 15 is not installed ({BIN}/initdb missing)"
            ));
        }
        let as_postgres = is_root();
        let dir = tempfile::Builder::new()
            .prefix("logvault-pg-")
            .tempdir()
            .map_err(|e| format!("tempdir: {e}"))?;
        let path = dir
            .path()
            .to_str()
            .ok_or("temp path is not UTF-8")?
            .to_string();
        if as_postgres {
            run(false, Path::new("chown"), &["-R", "postgres:", &path])?;
        }
        let data = format!("{path}/data");
        run(
            as_postgres,
            &bin.join("initdb"),
            &[
                "-D",
                &data,
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ],
        )?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let options =
            format!("-p {port} -k {path} -c listen_addresses=127.0.0.1 -c max_connections=300");
        let cluster = Cluster {
            dir,
            port,
            as_postgres,
        };
        let log = format!("{path}/postgres.log");
        if let Err(error) = run(
            as_postgres,
            &bin.join("pg_ctl"),
            &[
                "-D", &data, "-l", &log, "-w", "-t", "60", "-o", &options, "start",
            ],
        ) {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(format!("{error}\n{log}"));
        }
        Ok(cluster)
    }

    fn shared() -> Result<Arc<Cluster>, String> {
        let mut shared = SHARED
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(cluster) = shared.upgrade() {
            return Ok(cluster);
        }
        let cluster = Arc::new(Cluster::start()?);
        *shared = Arc::downgrade(&cluster);
        Ok(cluster)
    }

    fn conninfo(&self, user: &str, dbname: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user={user} dbname={dbname}",
            self.port
        )
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let data = data.to_string_lossy();
        let _ = run(
            self.as_postgres,
            &Path::new(BIN).join("pg_ctl"),
            &["-D", &data, "-m", "immediate", "-w", "stop"],
        );
    }
}

/// Where the test databases live.
enum Server {
    /// Holding the cluster keeps it running.
    Local {
        _cluster: Arc<Cluster>,
    },
    External(Box<tokio_postgres::Config>),
}

/// One test's database: migrated by the owner role, used by the application role.
pub struct TestDb {
    /// Connection string of the owner role (migrations, test-only inspection).
    pub owner_url: String,
    /// Connection string of the restricted application role (what `PgStore` uses).
    pub app_url: String,
    /// The database name.
    pub name: String,
    /// The application role's name.
    pub app_role: String,
    server: Server,
}

fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn external_conninfo(
    config: &tokio_postgres::Config,
    user: &str,
    password: &str,
    dbname: &str,
) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        Some(tokio_postgres::config::Host::Unix(path)) => path.to_string_lossy().into_owned(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "host={} port={port} user={} password={} dbname={}",
        quote(&host),
        quote(user),
        quote(password),
        quote(dbname)
    )
}

fn random_hex() -> String {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).expect("randomness");
    hex::encode(bytes)
}

/// Drops `name`, waiting (up to 10 s) for the application's sessions to go: they close as
/// the test's runtime winds down, and the owner may not terminate another role's sessions.
pub async fn drop_database(client: &tokio_postgres::Client, name: &str) {
    for _ in 0..100 {
        let dropped = client
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
            .await;
        if dropped.is_ok() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

pub async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect {url}: {e}"));
    tokio::spawn(connection);
    client
}

async fn setup_local(cluster: Arc<Cluster>) -> Result<TestDb, String> {
    let admin = tokio_postgres::connect(&cluster.conninfo("postgres", "postgres"), NoTls).await;
    let (admin, connection) = admin.map_err(|e| format!("connect as postgres: {e}"))?;
    tokio::spawn(connection);
    // Roles are cluster-wide and tests run in parallel: create them once, tolerate races.
    for (role, options) in [(OWNER, "LOGIN CREATEDB CREATEROLE"), (APP, "LOGIN")] {
        let exists = admin
            .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&role])
            .await
            .map_err(|e| e.to_string())?
            .is_some();
        if !exists {
            let _ = admin
                .batch_execute(&format!("CREATE ROLE {role} {options}"))
                .await;
        }
    }
    let name = format!("lv_{}", random_hex());
    let owner = connect(&cluster.conninfo(OWNER, "postgres")).await;
    owner
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .map_err(|e| format!("create database: {e}"))?;
    Ok(TestDb {
        owner_url: cluster.conninfo(OWNER, &name),
        app_url: cluster.conninfo(APP, &name),
        name,
        app_role: APP.into(),
        server: Server::Local { _cluster: cluster },
    })
}

async fn setup_external(url: &str) -> Result<TestDb, String> {
    let config: tokio_postgres::Config = url.parse().map_err(|e| format!("{url}: {e}"))?;
    let (owner, connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| format!("connect to LOGVAULT_TEST_PG_URL: {e}"))?;
    tokio::spawn(connection);
    let suffix = random_hex();
    let (name, app_role, password) = (
        format!("lv_{suffix}"),
        format!("lv_app_{suffix}"),
        random_hex(),
    );
    for statement in [
        format!("CREATE DATABASE {name}"),
        format!("CREATE ROLE {app_role} LOGIN PASSWORD '{password}'"),
    ] {
        owner.batch_execute(&statement).await.map_err(|e| {
            format!("the LOGVAULT_TEST_PG_URL role needs CREATEDB and CREATEROLE: {e}")
        })?;
    }
    let owner_user = config.get_user().unwrap_or("postgres").to_string();
    let owner_password = config
        .get_password()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .unwrap_or_default();
    Ok(TestDb {
        owner_url: external_conninfo(&config, &owner_user, &owner_password, &name),
        app_url: external_conninfo(&config, &app_role, &password, &name),
        name,
        app_role,
        server: Server::External(Box::new(config)),
    })
}

/// A fresh, migrated database, or `None` (with a notice) when PostgreSQL cannot be started
/// and `LOGVAULT_TEST_REQUIRE_POSTGRES` is not `1`.
pub async fn database() -> Option<TestDb> {
    let result = match std::env::var("LOGVAULT_TEST_PG_URL") {
        Ok(url) if !url.is_empty() => setup_external(&url).await,
        _ => match Cluster::shared() {
            Ok(cluster) => setup_local(cluster).await,
            Err(error) => Err(error),
        },
    };
    let db = match result {
        Ok(db) => db,
        Err(error) => {
            if std::env::var("LOGVAULT_TEST_REQUIRE_POSTGRES").as_deref() == Ok("1") {
                panic!("PostgreSQL is required (LOGVAULT_TEST_REQUIRE_POSTGRES=1) but: {error}");
            }
            eprintln!("notice: skipping a PostgreSQL test, PostgreSQL is unavailable: {error}");
            return None;
        }
    };
    logvault_postgres::migrate(&db.owner_url, Some(&db.app_role))
        .await
        .expect("migrate as the owner");
    Some(db)
}

impl Drop for TestDb {
    /// A local cluster is deleted whole; on an external server the database and role go.
    fn drop(&mut self) {
        let Server::External(config) = &self.server else {
            return;
        };
        let (config, name, role) = ((**config).clone(), self.name.clone(), self.app_role.clone());
        let cleanup = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                if let Ok((client, connection)) = config.connect(NoTls).await {
                    tokio::spawn(connection);
                    drop_database(&client, &name).await;
                    let _ = client
                        .batch_execute(&format!("DROP ROLE IF EXISTS {role}"))
                        .await;
                }
            });
        });
        let _ = cleanup.join();
    }
}
