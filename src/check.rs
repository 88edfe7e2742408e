//! `rebound check`: the reload's validation, offline, for operators and CI.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use rebound_engine::RuleSet;

pub fn run(dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let started = Instant::now();
    let what = dir.map_or_else(|| "embedded rules".to_string(), |d| d.display().to_string());
    let source = match rebound::rules::source(dir) {
        Ok(source) => source,
        Err(err) => {
            eprintln!("{err}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let report = RuleSet::compile(&source).and_then(|rules| rules.verify().map(|v| (v, rules.digest().to_string())));
    match report {
        Ok((v, digest)) => {
            writeln!(
                out,
                "ok: {what}: {} rules, {} categories, {} examples and {} tests pass (digest {}, {} ms)",
                v.rules,
                v.categories,
                v.examples,
                v.tests,
                &digest[..12],
                started.elapsed().as_millis()
            )?;
            for note in &v.notes {
                writeln!(out, "note: {note}")?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            // Name files as the operator knows them, not relative to the rule directory.
            let base = dir.map_or_else(|| Path::new("(embedded)").to_path_buf(), Path::to_path_buf);
            for e in &errors.0 {
                let mut e = e.clone();
                e.file = base.join(&e.file);
                eprintln!("{e}");
            }
            eprintln!("{what}: {} problem(s) found", errors.0.len());
            Ok(ExitCode::FAILURE)
        }
    }
}
