//! The committed C headers must be exactly what cbindgen generates from the code now:
//! `include/zen_crdt.h` from the crate (cbindgen.toml), `include/zen_crdt_sim.h` from the
//! simulator's exports alone (cbindgen-sim.toml). `ZEN_BLESS=1 cargo test --test header`
//! rewrites them after an intended API change.

use std::path::Path;

fn check(header: &str, config: &str, source: Option<&str>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(root.join(config)).expect("cbindgen config");
    let builder = match source {
        Some(file) => cbindgen::Builder::new().with_src(root.join(file)),
        None => cbindgen::Builder::new().with_crate(root),
    };
    let mut generated = Vec::new();
    builder
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate the header")
        .write(&mut generated);
    let path = root.join(header);
    if std::env::var_os("ZEN_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write header");
        return;
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{header} differs from what cbindgen generates from src/ffi: \
         run `ZEN_BLESS=1 cargo test --test header` and commit the result"
    );
}

#[test]
fn committed_header_matches_the_code() {
    check("include/zen_crdt.h", "cbindgen.toml", None);
}

#[test]
fn committed_sim_header_matches_the_code() {
    check("include/zen_crdt_sim.h", "cbindgen-sim.toml", Some("src/ffi/sim.rs"));
}
