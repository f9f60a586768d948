//! Generates `include/libvirt/libvirt.h` from the crate's C-visible items with cbindgen.
//!
//! The header is committed. cbindgen rewrites the file only when its content changes, so
//! a build that changes nothing leaves `include/` untouched, and CI can fail on a stale
//! header with `git diff --exit-code include/`.
//!
//! Besides `cbindgen.toml`, two generated inputs (api/generate.py writes them from
//! libvirt's API description) shape the header: the enums of `src/abi/generated.rs`,
//! which no function names and cbindgen would otherwise leave out, and the string and
//! function-like macros of `src/abi/generated.h`, which cbindgen cannot express.

use std::path::PathBuf;

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=cbindgen.toml");
    println!("cargo::rerun-if-changed=src");
    println!("cargo::rustc-check-cfg=cfg(vir_enum_sentinels)");

    let mut config = cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml is valid");
    let generated = std::fs::read_to_string(root.join("src/abi/generated.rs")).expect("src/abi/generated.rs exists");
    for line in generated.lines() {
        if let Some(rest) = line.strip_prefix("pub enum ").or_else(|| line.strip_prefix("pub type ")) {
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            config.export.include.push(name);
        }
    }
    let macros = std::fs::read_to_string(root.join("src/abi/generated.h")).expect("src/abi/generated.h exists");
    let after = config.after_includes.get_or_insert_with(String::new);
    after.push('\n');
    after.push_str(&macros);

    let header = root.join("include/libvirt/libvirt.h");
    match cbindgen::Builder::new().with_crate(&root).with_config(config).generate() {
        Ok(bindings) => {
            bindings.write_to_file(&header);
        }
        // A source file cbindgen cannot read yet (mid-edit) must not hide rustc's own,
        // better error: report it and leave the committed header as it is.
        Err(err) => println!("cargo::warning=header not regenerated: {err}"),
    }
}
