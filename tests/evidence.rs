//! Evidence and suppression (issue 18): every answer says what decided it, and the recipient is
//! suppressed only on evidence about the recipient, never on a bare code or one about policy.

use rebound_engine::{Evidence, Reply, ReplyInput, RuleSet, Suppression};
use serde_json::Value;

use crate::util::{rebound, rule_dir, shipped_rules};

fn reply(code: u32, enhanced: &str, text: &str, remote_host: &str) -> Reply {
    Reply::parse(&ReplyInput {
        code,
        enhanced,
        text,
        remote_host,
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn each_kind_of_evidence_is_named_by_what_decided() {
    let rules = shipped_rules();
    let cases = [
        // A text rule.
        (
            reply(550, "5.1.1", "<bob@example.com>: User unknown", ""),
            Evidence::Text,
        ),
        // A provider rule on enhanced codes (Gmail's bulk-sender requirements), no wording.
        (
            reply(550, "5.7.30", "", "gmail-smtp-in.l.google.com"),
            Evidence::Provider,
        ),
        // A script over Spectrum's AUP# number in the wording.
        (
            reply(554, "5.7.1", "Refused: AUP#I-1000 see spectrum.net", "mx.charter.net"),
            Evidence::Text,
        ),
        // A provider rule whose script reads only the enhanced code (Exchange Online's range).
        (
            reply(550, "5.7.611", "", "example-com.mail.protection.outlook.com"),
            Evidence::Provider,
        ),
        // A seed row: code and enhanced code.
        (reply(550, "5.7.1", "", ""), Evidence::EnhancedCode),
        // An RFC 3463 subject fallback: the enhanced code alone.
        (reply(0, "5.4.4", "", ""), Evidence::EnhancedCode),
        // A reply-code fallback.
        (reply(421, "", "", ""), Evidence::ReplyCode),
        // A seed row without an enhanced code (`enhanced: none`): the code decided.
        (reply(554, "", "", ""), Evidence::ReplyCode),
        // A positive reply the engine answers itself: its code decided.
        (reply(250, "", "2.0.0 Ok: queued", ""), Evidence::ReplyCode),
        // Nothing known: the last-resort rule, which has no conditions.
        (reply(0, "", "Thanks for your message", ""), Evidence::None),
    ];
    for (reply, evidence) in cases {
        let outcome = rules.classify(&reply);
        assert_eq!(
            outcome.evidence,
            evidence,
            "{} {:?} {:?} decided by {}",
            reply.code,
            reply.enhanced,
            reply.text,
            outcome.rule_id()
        );
    }
}

#[test]
fn sender_side_codes_alone_never_suppress_and_are_not_hard() {
    let rules = shipped_rules();
    for (code, enhanced) in [
        (550, "5.7.1"),
        (554, "5.7.1"),
        (553, "5.7.1"),
        (550, "5.7.0"),
        (550, "5.5.0"),
        (550, "5.3.0"),
        (550, ""),
        (553, ""),
        (501, "5.5.4"),
        (550, "5.1.0"),
        (550, "5.2.0"),
    ] {
        let outcome = rules.classify(&reply(code, enhanced, "", ""));
        let what = format!("{code} {enhanced} -> {} by {}", outcome.category.id, outcome.rule_id());
        assert!(!outcome.suppress_recipient, "{what} suppresses");
        assert_ne!(outcome.bounce_type.as_str(), "hard", "{what}");
        assert!(
            matches!(
                outcome.evidence,
                Evidence::EnhancedCode | Evidence::ReplyCode | Evidence::None
            ),
            "{what}: {:?}",
            outcome.evidence
        );
    }
}

#[test]
fn a_withheld_suppression_keeps_the_guides_category_but_not_a_hard_bounce_of_the_recipient() {
    let rules = shipped_rules();
    let (outcome, explanation) = rules.explain(&reply(550, "5.7.1", "", ""));
    // The guide lists 550 5.7.1 under Invalid Address: the category stays.
    assert_eq!(outcome.category.id, "invalid_address");
    assert_eq!(outcome.suppression, Suppression::Withheld);
    assert!(!outcome.suppress_recipient);
    assert_eq!(outcome.bounce_type.as_str(), "undetermined");
    assert_eq!(outcome.responsible.as_str(), "unknown");
    assert!(
        explanation.suppression.starts_with("suppression withheld")
            && explanation.suppression.contains("5.7.1")
            && explanation.suppression.contains("policy"),
        "{}",
        explanation.suppression
    );

    // The guide lists a bare 511 under Invalid Address too.
    let (outcome, explanation) = rules.explain(&reply(511, "", "", ""));
    assert_eq!(outcome.category.id, "invalid_address");
    assert!(!outcome.suppress_recipient);
    assert_eq!(outcome.evidence, Evidence::ReplyCode);
    assert!(
        explanation.suppression.contains("reply code 511 alone"),
        "{}",
        explanation.suppression
    );
}

#[test]
fn recipient_codes_alone_still_suppress() {
    let rules = shipped_rules();
    for (code, enhanced) in [
        (550, "5.1.1"),
        (550, "5.1.2"),
        (553, "5.1.3"),
        (550, "5.1.6"),
        (550, "5.1.10"),
        // 550 5.2.1 alone is Rate Limit by the guide's default for that pair (Gmail's wording
        // for a recipient receiving too fast); 552 and 554 5.2.1 are the guide's mailbox rows.
        (552, "5.2.1"),
        (554, "5.2.1"),
        (0, "5.2.1"),
    ] {
        let (outcome, explanation) = rules.explain(&reply(code, enhanced, "", ""));
        let what = format!("{code} {enhanced} -> {} by {}", outcome.category.id, outcome.rule_id());
        assert!(outcome.suppress_recipient, "{what}: {}", explanation.suppression);
        assert_eq!(outcome.suppression, Suppression::RecipientCode, "{what}");
        assert_eq!(outcome.bounce_type.as_str(), "hard", "{what}");
        assert!(
            explanation.suppression.contains(enhanced),
            "{}",
            explanation.suppression
        );
    }
}

#[test]
fn wording_about_the_recipient_suppresses_whatever_the_code() {
    let rules = shipped_rules();
    for (code, enhanced, text) in [
        (550, "", "<bob@example.com>: User unknown"),
        (
            550,
            "5.7.1",
            "Recipient address rejected: User unknown in local recipient table",
        ),
        (551, "", "User not local; no such mailbox here"),
        (0, "", "no such user here"),
    ] {
        let outcome = rules.classify(&reply(code, enhanced, text, ""));
        let what = format!("{code} {enhanced} {text} -> {}", outcome.rule_id());
        assert_eq!(outcome.category.id, "invalid_address", "{what}");
        assert_eq!(outcome.evidence, Evidence::Text, "{what}");
        assert!(outcome.suppress_recipient, "{what}");
    }
}

const PROVIDER_AND_OVERRIDE: &str = r#"
providers:
  - id: acme
    name: Acme Mail
    hosts: ["*.acme.example"]
rules:
  - id: acme/gone
    category: invalid_address
    when: { provider: acme, code: 550, enhanced: 5.7.1 }
    definition: "Acme answers a closed account with 550 5.7.1."
    examples: [{ code: 550, enhanced: 5.7.1, remote_host: mx.acme.example }]
  - id: site/553-means-gone
    category: invalid_address
    when: { code: 553, enhanced: none }
    outcome: { suppress_recipient: true }
    definition: "Our relay answers 553 for addresses that left."
    examples: ["553"]
  - id: site/450-means-gone
    category: invalid_address
    when: { code: 450 }
    outcome: { suppress_recipient: true }
    definition: "Our relay answers 450 for addresses that left, too."
    examples: ["450"]
  - id: site/554-by-code
    category: invalid_address
    when: { code: 554, enhanced: none }
    definition: "554 by code alone."
    examples: ["554"]
"#;

#[test]
fn a_provider_rule_and_an_explicit_outcome_may_suppress_on_codes() {
    let dir = rule_dir(&[("site.yaml", PROVIDER_AND_OVERRIDE)]);
    let rules = RuleSet::load_dir(dir.path()).unwrap();

    let outcome = rules.classify(&reply(550, "5.7.1", "", "mx1.acme.example"));
    assert_eq!((outcome.rule_id(), outcome.evidence), ("acme/gone", Evidence::Provider));
    assert!(outcome.suppress_recipient);

    let (outcome, explanation) = rules.explain(&reply(553, "", "", ""));
    assert_eq!(outcome.evidence, Evidence::ReplyCode);
    assert_eq!(outcome.suppression, Suppression::Override);
    assert!(outcome.suppress_recipient && outcome.bounce_type.as_str() == "hard");
    assert!(
        explanation.suppression.contains("override"),
        "{}",
        explanation.suppression
    );

    // The same kind of rule without the override: its category would suppress, the code cannot.
    let outcome = rules.classify(&reply(554, "", "", ""));
    assert_eq!(outcome.rule_id(), "site/554-by-code");
    assert!(!outcome.suppress_recipient);

    // A temporary reply never suppresses, override or not.
    let outcome = rules.classify(&reply(450, "", "", ""));
    assert_eq!(outcome.rule_id(), "site/450-means-gone");
    assert!(!outcome.suppress_recipient);
}

#[test]
fn the_cli_writes_evidence_after_rule_and_explain_says_why_suppression_was_withheld() {
    let out = rebound()
        .args(["classify", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(b"{\"id\":\"a\",\"code\":550,\"enhanced\":\"5.7.1\"}\n550 5.1.1 User unknown\n")?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    let first: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(first["evidence"], "enhanced_code");
    assert_eq!(first["suppress_recipient"], false);
    let second: Value = serde_json::from_str(lines[1]).unwrap();
    assert_eq!(second["evidence"], "text");
    assert_eq!(second["suppress_recipient"], true);
    // The field follows `rule` in the written object.
    let rule_at = lines[1].find("\"rule\":").unwrap();
    let evidence_at = lines[1].find("\"evidence\":").unwrap();
    assert!(rule_at < evidence_at, "{}", lines[1]);

    let out = rebound().args(["explain", "550 5.7.1"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("evidence    enhanced_code"), "{text}");
    assert!(text.contains("suppression withheld"), "{text}");

    let out = rebound().args(["explain", "--json", "550 5.7.1"]).output().unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["outcome"]["evidence"], "enhanced_code");
    assert!(
        doc["explanation"]["suppression"]
            .as_str()
            .unwrap()
            .starts_with("suppression withheld")
    );
}
