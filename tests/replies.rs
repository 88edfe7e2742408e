//! Replies as systems log them: the wrappers around a reply and session transcripts holding
//! several replies. A transcript is decided on the reply that failed the recipient, and
//! `explain` (CLI and gRPC) shows every reply found and which one was chosen.

use std::time::Duration;

use rebound::pb;
use rebound::server::ServerConfig;
use rebound_engine::{Reply, ReplyInput};
use serde_json::Value;

use crate::grpc::TestServer;
use crate::util::{rebound, run_guarded, shipped_rules};

/// A session where the greeting was busy, the recipient was refused as unknown, and the client's
/// DATA then drew the complaint that no recipient was accepted. The busy reply's wording
/// ("IP ... blocked") would decide the whole text as a sender-side block.
const TRANSCRIPT: &str = "421 4.7.0 Your IP is temporarily blocked, try again later\n\
                          550 5.1.1 <ann@example.net>: no such user here\n\
                          503 5.5.1 Error: need RCPT command";

#[test]
fn a_transcript_is_decided_on_the_reply_that_failed_the_recipient() {
    let rules = shipped_rules();
    let reply = Reply::from_text(TRANSCRIPT);
    let outcome = rules.classify(&reply);
    assert_eq!(
        (outcome.code, outcome.enhanced.map(|e| e.to_string())),
        (550, Some("5.1.1".into()))
    );
    assert_eq!(outcome.category.id, "invalid_address", "{}", outcome.rule_id());
    assert!(outcome.suppress_recipient);
    // The busy reply alone is a block: its wording did not leak into the chosen reply.
    let busy = rules.classify(&Reply::from_text(
        "421 4.7.0 Your IP is temporarily blocked, try again later",
    ));
    assert_ne!(busy.category.id, "invalid_address");

    // The caller's code names the reply it means.
    let named = rules.classify(
        &Reply::parse(&ReplyInput {
            code: 421,
            text: TRANSCRIPT,
            ..Default::default()
        })
        .unwrap(),
    );
    assert_eq!(
        (named.code, named.category.id.as_str()),
        (421, busy.category.id.as_str())
    );
    assert!(!named.suppress_recipient);
}

#[test]
fn a_wrapped_reply_is_classified_as_the_reply_inside_and_its_host_detects_the_provider() {
    let rules = shipped_rules();
    let wrapped = Reply::from_text(
        "host gmail-smtp-in.l.google.com[192.0.2.27] said: 550-5.1.1 The email account that you tried to reach \
         does not exist. (in reply to RCPT TO command)",
    );
    let outcome = rules.classify(&wrapped);
    assert_eq!((outcome.code, outcome.category.id.as_str()), (550, "invalid_address"));
    assert_eq!(outcome.provider.map(|p| p.id.as_str()), Some("google"));
    for diagnostic in [
        "Diagnostic-Code: smtp; 552 5.2.2 Mailbox full",
        "SMTP error from remote mail server after RCPT TO:<ann@example.net>: 552 5.2.2 Mailbox full",
        "Remote Server returned '552 5.2.2 Mailbox full'",
        "#552 5.2.2 Mailbox full ##",
    ] {
        let outcome = rules.classify(&Reply::from_text(diagnostic));
        assert_eq!(
            (outcome.code, outcome.category.id.as_str()),
            (552, "mailbox_full"),
            "{diagnostic}"
        );
    }
    // No code at all: the wording decides.
    let wording = rules.classify(&Reply::from_text("The recipient's mailbox is full"));
    assert_eq!((wording.code, wording.category.id.as_str()), (0, "mailbox_full"));
}

#[test]
fn explain_shows_the_replies_found_and_the_chosen_one() {
    let (out, _) = run_guarded(rebound().args(["explain", TRANSCRIPT]), Duration::from_secs(60));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("transcript  3 replies; decided on reply 2"), "{text}");
    assert!(text.contains(">  2. 550 5.1.1"), "{text}");

    let (out, _) = run_guarded(
        rebound().args(["explain", "--json", TRANSCRIPT]),
        Duration::from_secs(60),
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let normalised = &doc["explanation"]["normalised"];
    let codes: Vec<u64> = normalised["replies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_u64().unwrap())
        .collect();
    assert_eq!(codes, [421, 550, 503]);
    assert_eq!(normalised["chosen"], 1);
    assert_eq!(normalised["text"], "<ann@example.net>: no such user here");
    assert!(normalised["chosen_because"].as_str().unwrap().contains("permanent"));

    // A single reply has no transcript to show.
    let (out, _) = run_guarded(
        rebound().args(["explain", "--json", "550 5.1.1 no such user"]),
        Duration::from_secs(60),
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc["explanation"]["normalised"].get("replies").is_none(), "{doc}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grpc_explanation_carries_the_transcript() {
    let server = TestServer::embedded(ServerConfig::default()).await;
    let mut client = server.client().await;
    let answer = client
        .classify(pb::ClassifyRequest {
            id: "t".into(),
            text: TRANSCRIPT.into(),
            explain: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((answer.code, answer.category.as_str()), (550, "invalid_address"));
    let explanation = answer.explanation.unwrap();
    let found: Vec<(u32, &str)> = explanation
        .replies
        .iter()
        .map(|r| (r.code, r.enhanced.as_str()))
        .collect();
    assert_eq!(found, [(421, "4.7.0"), (550, "5.1.1"), (503, "5.5.1")]);
    assert_eq!(explanation.chosen, 1);
    assert!(!explanation.chosen_because.is_empty());
    server.stop().await;
}
