//! The command line is a contract (DESIGN.md): `--help` of `loadgrade` and of every subcommand is snapshotted in
//! tests/snapshots/help.txt. After an intended change, run with `LOADGRADE_BLESS=1` to rewrite the snapshot, and
//! review the diff.

use std::path::PathBuf;

const COMMANDS: &[&[&str]] = &[
    &["--help"],
    &["run", "--help"],
    &["demo", "--help"],
    &["serve", "--help"],
    &["submit", "--help"],
    &["validate", "--help"],
    &["runs", "--help"],
    &["report", "--help"],
    &["compare", "--help"],
];

#[test]
fn help_texts_match_the_snapshot() {
    let mut all = String::new();
    for args in COMMANDS {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_loadgrade"))
            .args(*args)
            .output()
            .expect("loadgrade runs");
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        all.push_str(&format!(
            "$ loadgrade {}\n{}\n",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout)
        ));
    }
    let snapshot = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/help.txt");
    if std::env::var_os("LOADGRADE_BLESS").is_some() {
        std::fs::write(&snapshot, &all).expect("write snapshot");
        return;
    }
    let expected =
        std::fs::read_to_string(&snapshot).expect("snapshot exists (LOADGRADE_BLESS=1 writes it)");
    assert!(
        expected == all,
        "`loadgrade --help` changed; if intended, rerun with LOADGRADE_BLESS=1 and commit the snapshot\n{all}"
    );
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["frobnicate"][..],
        &["run"][..],
        &["serve", "--listen", "nowhere"][..],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_loadgrade"))
            .args(args)
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}
