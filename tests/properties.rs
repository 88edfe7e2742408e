//! Properties: normalisation and classification never panic, whatever the input.

use std::sync::OnceLock;

use proptest::prelude::*;
use rebound_engine::{Reply, ReplyInput, RuleSet};

use crate::util::shipped_rules;

fn rules() -> &'static RuleSet {
    static RULES: OnceLock<RuleSet> = OnceLock::new();
    RULES.get_or_init(shipped_rules)
}

/// Text shaped like replies (codes, enhanced codes, brackets, line breaks) mixed with anything.
fn reply_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "([245][0-9]{2}[ -])?([245]\\.[0-9]{1,3}\\.[0-9]{1,4} )?[a-zA-Z #().:\\[\\]\r\n-]{0,80}",
        proptest::collection::vec("[0-9.#()\\[\\] -]{0,6}|said:|\n|550-5.1.1 |ſ|K|İ", 0..12).prop_map(|v| v.concat()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn normalisation_never_panics(code in any::<u32>(), enhanced in ".{0,12}|[#(]?[0-9]\\.[0-9]{1,4}\\.[0-9]{1,4}[)]?", text in reply_text(), recipient in ".{0,30}", host in ".{0,30}") {
        let input = ReplyInput { code, enhanced: &enhanced, text: &text, recipient: &recipient, remote_host: &host };
        match Reply::parse(&input) {
            Ok(reply) => {
                prop_assert!(reply.code == 0 || (100..=599).contains(&reply.code));
                prop_assert!(!reply.text.contains('\n'));
                prop_assert_eq!(reply.lower.chars().count() >= reply.text.chars().count() || !reply.text.is_ascii(), true);
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn classification_never_panics_and_answers_a_known_category(code in prop_oneof![Just(0u32), 100u32..600], text in reply_text()) {
        let input = ReplyInput { code, text: &text, ..Default::default() };
        let reply = Reply::parse(&input).unwrap();
        let rules = rules();
        let outcome = rules.classify(&reply);
        prop_assert!(rules.categories().iter().any(|c| std::ptr::eq(c, outcome.category)));
        // Never a suppression on a temporary reply.
        if reply.class() == 4 {
            prop_assert!(!outcome.suppress_recipient);
        }
        let (explained, _) = rules.explain(&reply);
        prop_assert_eq!(explained.rule_id(), outcome.rule_id());
    }
}
