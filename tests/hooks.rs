//! rhai hooks and provider detection, end to end through a rule directory.

use rebound_engine::{Reply, ReplyInput, RuleSet};

use crate::util::rule_dir;

const PROVIDERS: &str = r#"
providers:
  - id: example
    name: Example Mail
    hosts: ["*.mx.example.net"]
    domains: [example.org]
    markers: ["EXMPL-"]
rules:
  - id: example/tenant-limit
    category: recipient_error
    when: { provider: example, enhanced: 5.7.705, script: example.rhai::tenant_over_limit }
    definition: The recipient's tenant is over a limit.
    examples:
      - { code: 550, enhanced: 5.7.705, text: "Access denied, tenant has exceeded threshold", remote_host: "a.mx.example.net" }
  - id: example/fragile
    category: blocked
    when: { code: 553, script: example.rhai::fragile }
    examples: ["553 5.7.1 EXMPL-42 refused"]
  - id: example/any-553
    category: rejection
    when: { code: 553 }
    examples: ["553 something else"]
"#;

const SCRIPT: &str = r#"
// Both the text and the provider come in through the one map argument.
fn tenant_over_limit(reply) {
    reply.provider == "example" && reply.lower.contains("tenant") && reply.code == 550
}

// Errors at run time (here: an out-of-range index) on replies without a marker.
fn fragile(reply) {
    let parts = reply.text.split("EXMPL-");
    parts[1].len() > 0
}
"#;

fn load() -> RuleSet {
    let dir = rule_dir(&[
        ("providers/example.yaml", PROVIDERS),
        ("providers/example.rhai", SCRIPT),
    ]);
    // `fragile` fails on the other rule's examples, so check would refuse this directory;
    // compile alone lets the test watch run-time failures.
    RuleSet::compile(&rebound_engine::RuleSource::from_dir(dir.path()).unwrap()).unwrap()
}

fn classify(rules: &RuleSet, input: ReplyInput<'_>) -> (String, Option<String>, String) {
    let o = rules.classify(&Reply::parse(&input).unwrap());
    (
        o.category.id.clone(),
        o.provider.map(|p| p.id.clone()),
        o.rule_id().to_string(),
    )
}

#[test]
fn a_hook_decides_with_the_provider_and_the_text() {
    let rules = load();
    let text = "Access denied, tenant has exceeded threshold";
    let by_host = ReplyInput {
        code: 550,
        enhanced: "5.7.705",
        text,
        remote_host: "mx1.mx.example.net[192.0.2.1]",
        ..Default::default()
    };
    assert_eq!(
        classify(&rules, by_host),
        (
            "recipient_error".into(),
            Some("example".into()),
            "example/tenant-limit".into()
        )
    );
    let by_domain = ReplyInput {
        code: 550,
        enhanced: "5.7.705",
        text,
        recipient: "bob@sub.example.org",
        ..Default::default()
    };
    assert_eq!(classify(&rules, by_domain).1.as_deref(), Some("example"));
    // Without the provider the hook's rule cannot match (and this directory has no fallbacks).
    let unknown = ReplyInput {
        code: 550,
        enhanced: "5.7.705",
        text,
        ..Default::default()
    };
    let (_, provider, rule) = classify(&rules, unknown);
    assert_eq!((provider, rule.as_str()), (None, ""));
}

#[test]
fn a_marker_in_the_text_names_the_provider() {
    let rules = load();
    let input = ReplyInput {
        text: "553 5.7.1 EXMPL-42 refused",
        ..Default::default()
    };
    assert_eq!(
        classify(&rules, input),
        ("blocked".into(), Some("example".into()), "example/fragile".into())
    );
}

#[test]
fn a_failing_hook_is_no_match_and_is_counted() {
    let rules = load();
    let before = rules.script_errors();
    let input = ReplyInput {
        text: "553 5.7.1 refused for policy reasons",
        ..Default::default()
    };
    assert_eq!(classify(&rules, input).2, "example/any-553");
    assert_eq!(rules.script_errors(), before + 1);
    let (_, explanation) = rules.explain(&Reply::from_text("553 refused"));
    let fragile = explanation
        .candidates
        .iter()
        .find(|c| c.rule == "example/fragile")
        .unwrap();
    let script = fragile.conditions.iter().find(|c| c.condition == "script").unwrap();
    assert!(
        !script.held && script.detail.contains("counted as no match"),
        "{script:?}"
    );
}

#[test]
fn check_refuses_a_hook_that_fails_on_a_known_reply() {
    let dir = rule_dir(&[
        ("providers/example.yaml", PROVIDERS),
        ("providers/example.rhai", SCRIPT),
    ]);
    let err = RuleSet::load_dir(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("providers/example.yaml:15: rule `example/fragile`: script:"),
        "{err}"
    );
}
