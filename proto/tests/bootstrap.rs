//! Regenerates `src/gen/` from the `.proto` files and fails when the checked-in code differs.
//!
//! Run it after editing a `.proto`: the first run writes the new code and fails, the second passes.
//! `protoc` comes from the `protoc-bin-vendored` crate, so nothing needs installing. The file descriptor set
//! (`loadgrade.v1.bin`) is what gRPC reflection serves (`loadgrade serve --reflection`).

use std::path::PathBuf;

#[test]
fn generated_code_is_up_to_date() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let protos = ["agent.proto", "run.proto"].map(|f| root.join("proto/loadgrade/v1").join(f));
    let includes = [root.join("proto")];
    let out_dir = root.join("src/gen");

    let tmp = std::env::temp_dir().join(format!("loadgrade-proto-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).expect("create temp dir");

    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path().expect("vendored protoc"));
    // Maps (agent labels) keep one order on both sides: listings and reports show them sorted.
    config.btree_map(["."]);
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .out_dir(&tmp)
        .file_descriptor_set_path(tmp.join("loadgrade.v1.bin"))
        .compile_with_config(config, &protos, &includes)
        .expect("compile protos");

    let mut stale = Vec::new();
    for entry in std::fs::read_dir(&tmp).expect("read temp dir") {
        let entry = entry.expect("dir entry");
        let fresh = std::fs::read(entry.path()).expect("read generated");
        let target = out_dir.join(entry.file_name());
        let current = std::fs::read(&target).unwrap_or_default();
        if current != fresh {
            std::fs::write(&target, fresh).expect("write generated");
            stale.push(target.display().to_string());
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    assert!(
        stale.is_empty(),
        "generated code was out of date and has been rewritten, commit it: {stale:?}"
    );
}
