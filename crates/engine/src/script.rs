//! rhai hooks in a sandbox: predicates for wording that needs more than a pattern.
//!
//! A script file may only define functions; a hook is `file.rhai::function`, called with one
//! map (`code`, `enhanced`, `text`, `lower`, `provider`, `recipient_domain`, `remote_host`)
//! and expected to return a bool. The engine has no `eval`, no `import`, no file or network
//! access, and limits on operations, call depth, string, array and map sizes, so a script that
//! loops or explodes stops with an error. A run-time error counts as "no match".

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rhai::{AST, CallFnOptions, Dynamic, Engine, Map, Scope};

use crate::reply::Reply;

/// Operations one hook call may run: enough for real wording checks, a few ms at worst.
pub const MAX_OPERATIONS: u64 = 50_000;

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
    engine
}

/// A compiled hook: the file's AST and the function to call.
#[derive(Clone)]
pub(crate) struct Hook {
    ast: Arc<AST>,
    function: String,
    /// As written in the rule (`microsoft.rhai::tenant_over_limit`).
    pub(crate) name: String,
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
        Ok(Hook {
            ast,
            function: function.to_string(),
            name: reference.to_string(),
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

/// The map a hook receives.
pub(crate) fn facts(reply: &Reply, provider: Option<&str>) -> Map {
    let mut map = Map::new();
    map.insert("code".into(), Dynamic::from(i64::from(reply.code)));
    let enhanced = reply.enhanced.map(|e| e.to_string()).unwrap_or_default();
    map.insert("enhanced".into(), enhanced.into());
    map.insert("text".into(), reply.text.clone().into());
    map.insert("lower".into(), reply.lower.clone().into());
    map.insert("provider".into(), provider.unwrap_or_default().into());
    map.insert("recipient_domain".into(), reply.recipient_domain.clone().into());
    map.insert("remote_host".into(), reply.remote_host.clone().into());
    map
}

impl Hook {
    /// Calls the hook; an error (operation limit, type error, ...) is reported, not raised.
    pub(crate) fn call(&self, engine: &Engine, facts: &Map) -> Result<bool, String> {
        let mut scope = Scope::new();
        let options = CallFnOptions::new().eval_ast(false).rewind_scope(true);
        let result: Result<Dynamic, _> =
            engine.call_fn_with_options(options, &mut scope, &self.ast, &self.function, (facts.clone(),));
        match result {
            Ok(value) => value
                .as_bool()
                .map_err(|t| format!("`{}` returned {t}, not a bool", self.name)),
            Err(e) => Err(format!("`{}` failed: {e}", self.name)),
        }
    }
}
