//! Matching and provider detection on texts built to make them quadratic.
//!
//! Work is counted, not timed: `RuleSet::explain` reports the bytes the confirming regexes were
//! given and the bytes of domains looked up, which must grow with the input's length and no
//! faster. Sizes are checked smallest first, so code that is quadratic fails before it is slow.

use rebound_engine::{Explanation, Reply, ReplyInput, RuleSet, Work};

use crate::util::shipped_rules;

/// A reply whose text repeats `unit` to at least `size` bytes after `prefix`.
fn repeated(prefix: &str, unit: &str, size: usize) -> String {
    let mut text = prefix.to_string();
    while text.len() < size {
        text.push_str(unit);
    }
    text
}

fn explain(rules: &RuleSet, input: &ReplyInput<'_>) -> (String, Explanation) {
    let reply = Reply::parse(input).unwrap();
    let (outcome, explanation) = rules.explain(&reply);
    (outcome.category.id.clone(), explanation)
}

/// The replies of issue 17 that stalled the server: `(prefix, repeated unit, remote host, the
/// category every size got before the fix)`. Each is tried in ASCII and with `é ` in each unit.
const ISSUE_17: [(&str, &str, &str, &str); 3] = [
    ("451 ", "name service error ", "", "recipient_error"),
    (
        "",
        "unusual rate of unsolicited ",
        "gmail-smtp-in.l.google.com",
        "rate_limit",
    ),
    ("", "no smtp service ", "mx00.gmx.net", "unclassified"),
];

const SIZES: [usize; 4] = [1 << 10, 4 << 10, 16 << 10, 64 << 10];

/// Confirming a pattern searches its text once, however often its literal repeats: in all, a
/// few times the text's length, the same per byte at 1 KiB and at 64 KiB. Searching from every
/// occurrence to the end of the text cost 4 to 12 seconds a reply at 64 KiB.
#[test]
fn repeating_a_patterns_leading_literal_costs_a_search_per_pattern_not_per_repetition() {
    let rules = shipped_rules();
    for (prefix, unit, host, category) in ISSUE_17 {
        for unit in [unit.to_string(), format!("{unit}é ")] {
            let mut per_byte_at_1k = None;
            for size in SIZES {
                let text = repeated(prefix, &unit, size);
                let input = ReplyInput {
                    text: &text,
                    remote_host: host,
                    ..ReplyInput::default()
                };
                let (got, explanation) = explain(&rules, &input);
                assert_eq!(got, category, "{unit:?} x {size} bytes, host {host:?}");
                let Work {
                    text_bytes,
                    regex_searches,
                    regex_bytes,
                    ..
                } = explanation.work;
                assert!(regex_searches > 0, "{unit:?}: no pattern was confirmed, nothing tested");
                let per_byte = regex_bytes as f64 / text_bytes as f64;
                let shape = format!(
                    "{unit:?} x {size} bytes, host {host:?}: {regex_searches} searches over {regex_bytes} bytes of a {text_bytes}-byte text"
                );
                assert!(per_byte <= 16.0, "{shape}");
                let at_1k = *per_byte_at_1k.get_or_insert(per_byte);
                assert!(per_byte <= at_1k * 1.25 + 1.0, "{shape}; {at_1k:.1} per byte at 1 KiB");
            }
        }
    }
}

/// Every literal of the shipped patterns and markers, repeated with the codes of its rules'
/// examples and the hosts of the providers they are scoped to: the regexes search as many bytes
/// per text byte at 1 KiB as at 256 bytes.
#[test]
fn every_shipped_literal_repeated_costs_work_linear_in_the_text() {
    let rules = shipped_rules();
    let literals = rules.prefilter_literals();
    assert!(literals.len() > 1000, "{} literals", literals.len());
    let mut shapes = 0;
    for literal in &literals {
        let hosts: Vec<String> = std::iter::once(String::new())
            .chain(
                literal
                    .providers
                    .iter()
                    .filter_map(|p| p.hosts.first().map(|h| h.replace('*', "mx"))),
            )
            .collect();
        // A 4xx and a 5xx code, as its rules' examples have them: rules that want one get asked.
        let mut codes: Vec<u32> = literal
            .examples
            .iter()
            .map(|e| u32::from(e.class()) * 100 + 50)
            .collect();
        codes.sort_unstable();
        codes.dedup();
        codes.retain(|&c| c == 450 || c == 550);
        if codes.is_empty() {
            codes.push(550);
        }
        for host in &hosts {
            for &code in &codes {
                let unit = format!("{} é ", literal.literal);
                let work_at = |size: usize| {
                    let text = repeated("", &unit, size);
                    let input = ReplyInput {
                        code,
                        text: &text,
                        remote_host: host,
                        ..ReplyInput::default()
                    };
                    explain(&rules, &input).1.work
                };
                let (small, large) = (work_at(256), work_at(1 << 10));
                let per_byte = |w: Work| w.regex_bytes as f64 / w.text_bytes as f64;
                assert!(
                    per_byte(large) <= per_byte(small) * 1.25 + 1.0,
                    "{unit:?}, code {code}, host {host:?}: {small:?} at 256 bytes, {large:?} at 1 KiB"
                );
                shapes += 1;
            }
        }
    }
    assert!(shapes >= literals.len());
}

/// A recipient of 512 KiB is looked up by its few parents that could be a provider's domain,
/// not by every one of its 260,000 parents, each hashed in full (17 s of CPU).
#[test]
fn a_long_recipient_domain_costs_lookups_linear_in_its_length() {
    let rules = shipped_rules();
    for (size, tail, provider) in [
        (8 << 10, "gmail.com", Some("google")),
        (64 << 10, "example.com", None),
        (512 << 10, "gmail.com", Some("google")),
        (512 << 10, "example.com", None),
    ] {
        let recipient = format!("bob@{}{tail}", "a.".repeat(size / 2));
        let input = ReplyInput {
            code: 550,
            text: "550 5.1.1 user unknown",
            recipient: &recipient,
            ..ReplyInput::default()
        };
        let (_, explanation) = explain(&rules, &input);
        let detected = explanation.provider.as_ref().map(|p| (p.id.as_str(), p.from));
        assert_eq!(
            detected,
            provider.map(|p| (p, "recipient_domain")),
            "{size} bytes, {tail}"
        );
        let looked_up = explanation.work.domain_bytes;
        assert!(
            looked_up <= recipient.len(),
            "{size} bytes, {tail}: {looked_up} bytes of domains looked up"
        );
    }
}
