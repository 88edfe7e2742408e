//! rhai hooks in a sandbox: predicates for wording that needs more than a pattern.
//!
//! A script file may only define functions; a hook is `file.rhai::function`, called with one
//! map (`code`, `enhanced`, `text`, `lower`, `provider`, `recipient_domain`, `remote_host`)
//! and expected to return a bool. The engine has no `eval`, no `import`, no file or network
//! access, and limits on operations, call depth, string, array and map sizes, so a script that
//! loops or explodes stops with an error. A run-time error counts as "no match".
//!
//! The operation budget alone does not bound time: one operation on a long string (`contains`,
//! `replace`) costs as much as the string is long. So the scripts deciding one reply also share a
//! wall-clock budget, checked every few operations, and see at most the first
//! [`SCRIPT_TEXT_LIMIT`] bytes of the reply's text.

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rhai::{AST, CallFnOptions, Dynamic, Engine, EvalAltResult, Map, Scope};

use crate::pattern::prefix_within;
use crate::reply::Reply;

/// Operations one hook call may run: enough for real wording checks, a few ms at worst.
pub const MAX_OPERATIONS: u64 = 50_000;

/// Wall time the scripts deciding one reply may use together. Real hooks take microseconds; a
/// script over its budget stops with an error, which counts as no match.
pub const SCRIPT_TIME_LIMIT: Duration = Duration::from_millis(10);

/// Bytes of `text` and `lower` a script sees: more than any real reply, and it keeps the cost of
/// one string operation small.
pub const SCRIPT_TEXT_LIMIT: usize = 4 * 1024;

/// Operations between two looks at the clock: `Instant::now` costs about as much as one
/// operation, and the longest operation (on a 64 KiB string) tens of microseconds.
const CLOCK_EVERY: u64 = 32;

thread_local! {
    /// When the hook running on this thread must stop; `None` outside a call. The engine's
    /// progress callback must be `Send + Sync` and is shared by every thread, while a call runs
    /// synchronously on its caller's thread: so the deadline travels in a thread-local.
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Sets this thread's script deadline for the length of one call, and clears it even if the
/// call unwinds.
struct DeadlineGuard;

impl DeadlineGuard {
    fn set(deadline: Instant) -> DeadlineGuard {
        DEADLINE.with(|d| d.set(Some(deadline)));
        DeadlineGuard
    }
}

impl Drop for DeadlineGuard {
    fn drop(&mut self) {
        DEADLINE.with(|d| d.set(None));
    }
}

/// Why a hook call gave no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HookError {
    /// What happened, naming the hook.
    pub(crate) message: String,
    /// The call ran out of [`SCRIPT_TIME_LIMIT`] (a slow script, or a thread kept off the CPU).
    pub(crate) out_of_time: bool,
}

impl fmt::Display for HookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The engine every script of a rule set runs in.
pub(crate) fn sandboxed_engine() -> Engine {
    // Built with `no_module`, so `import` and file module resolution do not exist at all.
    let mut engine = Engine::new();
    engine
        .set_max_operations(MAX_OPERATIONS)
        .set_max_call_levels(16)
        .set_max_expr_depths(32, 32)
        .set_max_string_size(64 * 1024)
        .set_max_array_size(1_000)
        .set_max_map_size(1_000)
        .set_max_variables(64)
        .set_max_functions(64)
        .set_strict_variables(true)
        // The interner's write lock can sleep under contention; scripts are short, skip it.
        .set_max_strings_interned(0);
    engine.disable_symbol("eval");
    engine.disable_symbol("import");
    // Scripts must not write to the service's stdout.
    engine.on_print(|_| {});
    engine.on_debug(|_, _, _| {});
    engine.on_progress(|operations| {
        if operations % CLOCK_EVERY != 0 {
            return None;
        }
        let late = DEADLINE
            .with(Cell::get)
            .is_some_and(|deadline| Instant::now() >= deadline);
        // Any token stops the run with `ErrorTerminated`; `Hook::call` names it.
        late.then_some(Dynamic::UNIT)
    });
    engine
}

/// A compiled hook: the file's AST and the function to call.
#[derive(Clone)]
pub(crate) struct Hook {
    ast: Arc<AST>,
    function: String,
    /// As written in the rule (`microsoft.rhai::tenant_over_limit`).
    pub(crate) name: String,
    /// Its file reads the reply's wording (`text` or `lower`): the answer's evidence is then
    /// the text, else the rule's other conditions.
    pub(crate) reads_wording: bool,
}

/// Whether a script's source reads the reply's `text` or `lower` (`reply.text`, `reply["lower"]`),
/// comments aside. Per file, not per function: a helper may read it for the hook.
fn reads_wording(source: &str) -> bool {
    source.lines().any(|line| {
        let code = line.split_once("//").map_or(line, |(code, _)| code);
        [".text", ".lower", "\"text\"", "\"lower\""].iter().any(|field| {
            code.match_indices(field).any(|(at, _)| {
                let after = code[at + field.len()..].chars().next();
                !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
            })
        })
    })
}

/// Compiles script files once each and resolves `file.rhai::function` references.
pub(crate) struct ScriptLoader<'a> {
    engine: &'a Engine,
    /// Rule-directory-relative path to its source text.
    sources: &'a HashMap<PathBuf, String>,
    compiled: HashMap<PathBuf, Result<Arc<AST>, String>>,
}

impl<'a> ScriptLoader<'a> {
    pub(crate) fn new(engine: &'a Engine, sources: &'a HashMap<PathBuf, String>) -> Self {
        ScriptLoader {
            engine,
            sources,
            compiled: HashMap::new(),
        }
    }

    /// Resolves `reference` as written in `rule_file`.
    pub(crate) fn hook(&mut self, rule_file: &Path, reference: &str) -> Result<Hook, String> {
        let (file, function) = reference
            .split_once("::")
            .filter(|(f, n)| f.ends_with(".rhai") && !n.is_empty())
            .ok_or_else(|| format!("{reference:?} is not `file.rhai::function`"))?;
        let path = normalise(&rule_file.parent().unwrap_or(Path::new("")).join(file));
        let ast = match self.compiled.get(&path) {
            Some(done) => done.clone(),
            None => {
                let result = self.compile(&path);
                self.compiled.insert(path.clone(), result.clone());
                result
            }
        }?;
        let defined = ast.iter_functions().any(|f| f.name == function && f.params.len() == 1);
        if !defined {
            return Err(format!("{} defines no function `{function}(reply)`", path.display()));
        }
        let reads_wording = self.sources.get(&path).is_some_and(|source| reads_wording(source));
        Ok(Hook {
            ast,
            function: function.to_string(),
            name: reference.to_string(),
            reads_wording,
        })
    }

    fn compile(&self, path: &Path) -> Result<Arc<AST>, String> {
        let source = self
            .sources
            .get(path)
            .ok_or_else(|| format!("{} not found in the rule directory", path.display()))?;
        let ast = self
            .engine
            .compile(source)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        // Top-level statements would run on every call; a hook file holds functions only.
        if !ast.statements().is_empty() {
            return Err(format!(
                "{}: only `fn` definitions are allowed at the top level of a script",
                path.display()
            ));
        }
        Ok(Arc::new(ast))
    }
}

/// `a/./b/../c.rhai` -> `a/c.rhai`, without touching the file system.
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The map a hook receives; `text` and `lower` cut to [`SCRIPT_TEXT_LIMIT`] bytes.
pub(crate) fn facts(reply: &Reply, provider: Option<&str>) -> Map {
    let mut map = Map::new();
    map.insert("code".into(), Dynamic::from(i64::from(reply.code)));
    let enhanced = reply.enhanced.map(|e| e.to_string()).unwrap_or_default();
    map.insert("enhanced".into(), enhanced.into());
    map.insert("text".into(), prefix_within(&reply.text, SCRIPT_TEXT_LIMIT).into());
    map.insert("lower".into(), prefix_within(&reply.lower, SCRIPT_TEXT_LIMIT).into());
    map.insert("provider".into(), provider.unwrap_or_default().into());
    map.insert("recipient_domain".into(), reply.recipient_domain.clone().into());
    map.insert("remote_host".into(), reply.remote_host.clone().into());
    map
}

impl Hook {
    /// Calls the hook, stopping it at `deadline`; an error (operation limit, time limit, type
    /// error, ...) is reported, not raised.
    pub(crate) fn call(&self, engine: &Engine, facts: &Map, deadline: Instant) -> Result<bool, HookError> {
        let failed = |message: String, out_of_time| HookError { message, out_of_time };
        let out_of_time = || {
            let message = format!(
                "`{}` ran out of time (the scripts deciding one reply share {} ms)",
                self.name,
                SCRIPT_TIME_LIMIT.as_millis()
            );
            failed(message, true)
        };
        // An earlier hook for the same reply may have used the whole budget.
        if Instant::now() >= deadline {
            return Err(out_of_time());
        }
        let _deadline = DeadlineGuard::set(deadline);
        let mut scope = Scope::new();
        let options = CallFnOptions::new().eval_ast(false).rewind_scope(true);
        let result: Result<Dynamic, _> =
            engine.call_fn_with_options(options, &mut scope, &self.ast, &self.function, (facts.clone(),));
        match result {
            Ok(value) => value
                .as_bool()
                .map_err(|t| failed(format!("`{}` returned {t}, not a bool", self.name), false)),
            // Stopped inside a function the hook called: the termination is wrapped.
            Err(e) if matches!(e.unwrap_inner(), EvalAltResult::ErrorTerminated(..)) => Err(out_of_time()),
            Err(e) => Err(failed(format!("`{}` failed: {e}", self.name), false)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_script_reads_the_wording_only_through_text_or_lower() {
        assert!(reads_wording("fn f(reply) { reply.lower.contains(\"quota\") }"));
        assert!(reads_wording("fn f(reply) { let t = reply[\"text\"]; t.len() > 3 }"));
        assert!(!reads_wording("fn f(reply) { reply.enhanced.starts_with(\"5.7.\") }"));
        // Comments and longer names are not reads.
        assert!(!reads_wording(
            "// reads reply.text? no\nfn f(reply) { reply.texture == 1 }"
        ));
    }
}
