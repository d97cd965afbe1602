//! One compile error per case in `tests/ui`, each with its `.stderr` snapshot.
//!
//! trybuild compiles each case in `target/tests/trybuild/stowage-tests`, so the
//! cases reach their fixtures through `../../../../tests/ui/fixtures`.

use std::path::Path;

#[test]
fn ui() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        let expected = workspace.join("target");
        assert!(
            Path::new(&target).canonicalize().ok() == expected.canonicalize().ok(),
            "the UI tests need the workspace's own target folder; unset CARGO_TARGET_DIR"
        );
    }
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/*.rs");
}
