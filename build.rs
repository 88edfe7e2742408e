//! Build script: compiles `proto/` into Rust with protox (pure Rust: no system `protoc`) and
//! tonic-prost-build, writes the descriptor set that reflection serves, and embeds the default
//! rule directory (`rules/`) so that `rebound serve` and the CLI work with no files beside them.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs, io};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    compile_protos(&root, &out_dir)?;
    embed_rules(&root, &out_dir)
}

fn compile_protos(root: &Path, out_dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    use prost::Message as _;
    let fds = protox::compile(["rebound/v1/rebound.proto"], [root.join("proto")])?;
    // tonic-prost-build does not write a descriptor set from `compile_fds`; reflection needs one.
    fs::write(out_dir.join("rebound_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .codec_path("crate::codec::SliceCodec")
        // Rarely set, and inline they made every answer 512 bytes, not 280: a client decoding a
        // batch of 1,000 wrote, grew and freed that much more.
        .boxed(".rebound.v1.ClassifyResponse.explanation")
        .boxed(".rebound.v1.ClassifyResponse.error")
        // An email is read where it arrived, not copied out of the request.
        .bytes(".rebound.v1.ClassifyMessageRequest.message")
        .compile_fds(fds.clone())?;
    compile_classifier_server(fds, out_dir)?;
    // Neither crate emits this; without it cargo reruns the script on any change in the package.
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}

/// The Classifier server once more, with every type taken from `crate::pb` except a batch's
/// request and the answers: `crate::server::wire`'s, read in place and written straight from the
/// rule set's strings; and a request, `crate::codec::ClassifyItem`, which carries what is wrong
/// with its bytes instead of failing the call (a stream answers it in place). Only the service is kept in the descriptors, so no message is generated twice.
fn compile_classifier_server(
    mut fds: tonic_prost_build::FileDescriptorSet,
    out_dir: &Path,
) -> Result<(), Box<dyn std::error::Error>> {
    for file in &mut fds.file {
        file.message_type.clear();
        file.enum_type.clear();
        file.service.retain(|service| service.name() == "Classifier");
    }
    let dir = out_dir.join("classifier_server");
    fs::create_dir_all(&dir)?;
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(true)
        .out_dir(&dir)
        .extern_path(".rebound.v1", "crate::pb")
        .extern_path(".rebound.v1.ClassifyRequest", "crate::codec::ClassifyItem")
        .extern_path(
            ".rebound.v1.ClassifyMessageRequest",
            "crate::server::messages::MessageItem",
        )
        .extern_path(".rebound.v1.ClassifyBatchRequest", "crate::server::wire::BatchRequest")
        .extern_path(".rebound.v1.ClassifyBatchResponse", "crate::server::wire::EncodedBatch")
        .extern_path(".rebound.v1.ClassifyResponse", "crate::server::wire::EncodedAnswer")
        .codec_path("crate::codec::ServerCodec")
        .compile_fds(fds)?;
    Ok(())
}

fn embed_rules(root: &Path, out_dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
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
    fs::write(out_dir.join("embedded_rules.rs"), code)?;
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
