//! Third-party programs the tests drive as real peers (the OpenTelemetry SDK, schemathesis):
//! Python packages that `scripts/test.sh` installs into `target/test-venv`.

use std::path::PathBuf;

/// The venv's Python: `LOGVAULT_TEST_PYTHON`, else `target/test-venv/bin/python` when it
/// exists. `None` (the caller skips) outside the suite; in the suite
/// (`LOGVAULT_TEST_REQUIRE_PYTHON=1`) a missing venv fails the test instead.
pub fn python() -> Option<PathBuf> {
    let from_env = std::env::var_os("LOGVAULT_TEST_PYTHON").map(PathBuf::from);
    let workspace_venv =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/test-venv/bin/python");
    let found = from_env
        .or(Some(workspace_venv))
        .filter(|python| python.exists());
    if found.is_none() {
        let hint = "run scripts/test.sh, which installs scripts/requirements-test.txt into \
                    target/test-venv";
        if std::env::var("LOGVAULT_TEST_REQUIRE_PYTHON").as_deref() == Ok("1") {
            panic!("the Python peers must run here (LOGVAULT_TEST_REQUIRE_PYTHON=1): {hint}");
        }
        eprintln!("skipping: no Python peers ({hint})");
    }
    found
}

/// A script of `crates/logvault/tests/peers/`.
pub fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/peers")
        .join(name)
}
