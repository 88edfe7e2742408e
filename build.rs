//! Build script: embeds the default rule directory (`rules/`) into the binary, so that
//! `rebound serve` and the CLI work with no files beside them. (The gRPC code generation from
//! `proto/` joins this script when the service lands.)

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs, io};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let rules = root.join("rules");
    let mut files = Vec::new();
    collect(&rules, &rules, &mut files)?;
    files.sort();

    let mut code = String::from(
        "/// The default rule files: (path relative to `rules/`, contents).\npub const EMBEDDED_RULES: &[(&str, &str)] = &[\n",
    );
    for (rel, abs) in &files {
        writeln!(code, "    ({rel:?}, include_str!({abs:?})),")?;
    }
    code.push_str("];\n");
    fs::write(PathBuf::from(env::var("OUT_DIR")?).join("embedded_rules.rs"), code)?;
    println!("cargo:rerun-if-changed=rules");
    Ok(())
}

/// Every `*.yaml`, `*.yml` and `*.rhai` below `dir`, skipping hidden names as the loader does.
fn collect(base: &Path, dir: &Path, out: &mut Vec<(String, String)>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        // Directories are watched too, so adding a file reruns the script.
        if path.is_dir() {
            println!("cargo:rerun-if-changed={}", path.display());
            collect(base, &path, out)?;
        } else if matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "rhai")) {
            let rel = path.strip_prefix(base).map_err(io::Error::other)?;
            println!("cargo:rerun-if-changed={}", path.display());
            out.push((
                rel.to_string_lossy().replace('\\', "/"),
                path.to_string_lossy().into_owned(),
            ));
        }
    }
    Ok(())
}
