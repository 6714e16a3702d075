//! The committed C header must be exactly what cbindgen generates from the code now.
//! `ZEN_BLESS=1 cargo test --test header` rewrites it after an intended API change.

use std::path::Path;

#[test]
fn committed_header_matches_the_code() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(root)
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate the header")
        .write(&mut generated);
    let path = root.join("include/zen_crdt.h");
    if std::env::var_os("ZEN_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write header");
        return;
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "include/zen_crdt.h differs from what cbindgen generates from src/ffi: \
         run `ZEN_BLESS=1 cargo test --test header` and commit the result"
    );
}
