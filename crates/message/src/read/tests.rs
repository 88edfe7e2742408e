//! The reader end to end on small messages written here (not corpus copies).

use super::*;

fn read_text(text: &str) -> Report {
    read(text.as_bytes(), &ReadOptions::default()).unwrap()
}

/// A Postfix-like DSN with the given status-part type, recipient groups, and third part.
fn dsn(status_type: &str, groups: &str, returned: &str) -> String {
    format!(
        "From: MAILER-DAEMON@mx.example.net\nTo: sender@example.org\nSubject: Undelivered Mail Returned to Sender\n\
         MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\n\n\
         --B\nContent-Type: text/plain\n\nThis is the mail system at host mx.example.net.\n\n\
         --B\nContent-Type: {status_type}\n\nReporting-MTA: dns; mx.example.net\n\
         Arrival-Date: Mon, 1 Jan 2024 00:00:00 +0000\n\n{groups}\n{returned}--B--\n"
    )
}

const RETURNED: &str = "--B\nContent-Type: message/rfc822\n\nMessage-ID: <m1@example.org>\n\
                        From: Sender <sender@example.org>\nTo: bob@example.com\nSubject: Hello\n\
                        Date: Mon, 1 Jan 2024 00:00:00 +0000\nX-Campaign-Id: c-42\n\nHi Bob\n\n";

#[test]
fn a_dsn_with_several_recipients_is_a_bounce_with_each() {
    let groups = "Final-Recipient: rfc822; bob@example.com\nAction: failed\nStatus: 5.1.1\n\
                  Remote-MTA: dns; mx.example.com\nDiagnostic-Code: smtp; 550 5.1.1 <bob@example.com>: User unknown\n\n\
                  Final-Recipient: rfc822; carol@example.com\nAction: delayed\nStatus: 4.4.1\n\
                  Diagnostic-Code: smtp; 421 4.4.1 Connection timed out\n";
    let r = read_text(&dsn("message/delivery-status", groups, RETURNED));
    assert_eq!(r.kind, Kind::Bounce);
    assert_eq!(r.format, "rfc3464");
    assert_eq!(r.reporting_mta, "mx.example.net");
    let got: Vec<_> = r
        .recipients
        .iter()
        .map(|x| (x.recipient.as_str(), x.action, x.status.as_str(), x.reply_code))
        .collect();
    assert_eq!(
        got,
        [
            ("bob@example.com", Some(Action::Failed), "5.1.1", 550),
            ("carol@example.com", Some(Action::Delayed), "4.4.1", 421)
        ]
    );
    assert!(
        r.trace
            .iter()
            .any(|t| t.what == "recipient bob@example.com" && t.from == "message/delivery-status part"),
        "{:?}",
        r.trace
    );
}

#[test]
fn a_global_dsn_is_read_in_utf8() {
    let groups = "Final-Recipient: utf-8; ひろし@例え.jp\nAction: failed\nStatus: 5.1.1\n";
    let r = read_text(&dsn("message/global-delivery-status", groups, ""));
    assert_eq!(r.kind, Kind::Bounce);
    assert_eq!(r.recipients[0].recipient, "ひろし@例え.jp");
}

#[test]
fn a_dsn_of_deliveries_only_is_not_a_bounce_but_lists_them() {
    let groups = "Final-Recipient: rfc822; bob@example.com\nAction: delivered\nStatus: 2.0.0\n\n\
                  Final-Recipient: rfc822; list@example.com\nAction: expanded\nStatus: 2.0.0\n";
    let r = read_text(&dsn("message/delivery-status", groups, ""));
    assert_eq!(r.kind, Kind::NotBounce);
    assert_eq!(r.recipients.len(), 2);
}

#[test]
fn dsn_fields_written_in_the_body_are_read() {
    let text = "From: postmaster@mx.example.net\nTo: sender@example.org\nSubject: failure\n\n\
                Your message could not be delivered.\n\n> Final-Recipient: RFC822; bob@example.com\n\
                > Action: failed\n> Status: 5.1.1\n> Diagnostic-Code: SMTP; 550 5.1.1 User unknown\n";
    let r = read_text(text);
    assert_eq!(r.kind, Kind::Bounce);
    assert_eq!(r.recipients[0].recipient, "bob@example.com");
    assert_eq!(r.recipients[0].reply_code, 550);
}

#[test]
fn line_ends_do_not_change_the_report() {
    let groups = "Final-Recipient: rfc822; bob@example.com\nAction: failed\nStatus: 5.1.1\n\
                  Diagnostic-Code: smtp; 550 5.1.1 user\n  unknown\n";
    let lf = dsn("message/delivery-status", groups, RETURNED);
    let crlf = lf.replace('\n', "\r\n");
    let cr = lf.replace('\n', "\r");
    let a = read_text(&lf);
    assert_eq!(a.recipients[0].diagnostic, "550 5.1.1 user unknown");
    assert_eq!(a, read_text(&crlf), "CRLF");
    let b = read_text(&cr);
    assert_eq!((b.kind, &b.recipients), (a.kind, &a.recipients), "CR");
}

#[test]
fn an_arf_report_is_feedback_with_its_fields() {
    let text = "From: fbl@isp.example\nTo: abuse@example.org\nSubject: FW: hello\nMIME-Version: 1.0\n\
                Content-Type: multipart/report; report-type=feedback-report; boundary=\"B\"\n\n\
                --B\nContent-Type: text/plain\n\nA complaint.\n\n\
                --B\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\nUser-Agent: FBL/1.0\n\
                Version: 1\nSource-IP: 192.0.2.1\nOriginal-Rcpt-To: <bob@example.com>\n\
                Arrival-Date: Mon, 1 Jan 2024 00:00:00 +0000\n\n"
        .to_string()
        + RETURNED
        + "--B--\n";
    let r = read_text(&text);
    assert_eq!(r.kind, Kind::Feedback);
    let f = r.feedback.clone().unwrap();
    assert_eq!(
        (f.feedback_type.as_str(), f.user_agent.as_str(), f.source_ip.as_str()),
        ("abuse", "FBL/1.0", "192.0.2.1")
    );
    assert_eq!(r.recipients[0].recipient, "bob@example.com");
    assert_eq!(r.arrival_date, "Mon, 1 Jan 2024 00:00:00 +0000");
    assert_eq!(r.original.unwrap().message_id, "m1@example.org");
}

#[test]
fn an_arf_report_without_a_recipient_takes_the_originals_to() {
    let text = "From: fbl@isp.example\nSubject: report\nMIME-Version: 1.0\n\
                Content-Type: multipart/report; report-type=feedback-report; boundary=\"B\"\n\n\
                --B\nContent-Type: message/feedback-report\n\nFeedback-Type: fraud\n\n"
        .to_string()
        + RETURNED
        + "--B--\n";
    let r = read_text(&text);
    assert_eq!(r.kind, Kind::Feedback);
    assert_eq!(r.recipients[0].recipient, "bob@example.com");
    assert_eq!(r.feedback.unwrap().feedback_type, "fraud");
}

#[test]
fn an_ses_json_complaint_is_feedback() {
    let text = "From: no-reply@sns.example\nSubject: notification\n\n\
                {\"notificationType\":\"Complaint\",\"complaint\":{\"complainedRecipients\":[{\"emailAddress\":\"bob@exa\n \
                mple.com\"},{\"emailAddress\":\"carol@example.com\"}],\"complaintFeedbackType\":\"abuse\"}}\n";
    let r = read_text(text);
    assert_eq!(r.kind, Kind::Feedback);
    let got: Vec<_> = r.recipients.iter().map(|x| x.recipient.as_str()).collect();
    assert_eq!(got, ["bob@example.com", "carol@example.com"]);
}

#[test]
fn an_rfc3834_auto_reply_names_its_sender() {
    let text = "From: Bob <bob@example.com>\nTo: sender@example.org\nSubject: Away until Monday\n\
                Auto-Submitted: auto-replied\n\nI am away.\n";
    let r = read_text(text);
    assert_eq!(r.kind, Kind::AutoReply);
    assert_eq!(r.recipients[0].recipient, "bob@example.com");
    assert_eq!(r.recipients[0].action, None);
    let by_subject = read_text("From: ann@example.com\nSubject: Réponse automatique : hello\n\nabsente\n");
    assert_eq!(by_subject.kind, Kind::AutoReply);
}

#[test]
fn a_bounce_with_auto_reply_cues_is_not_an_auto_reply() {
    let text = "From: Mail Delivery System <Mailer-Daemon@mx.example.net>\nSubject: Mail delivery failed\n\
                Auto-Submitted: auto-replied\n\nThis message was created automatically by mail delivery software.\n";
    assert_ne!(read_text(text).kind, Kind::AutoReply);
    let bare = "From: mailer-daemon\nSubject: Your message\nAuto-Submitted: auto-replied\n\nWe had trouble.\n";
    assert_ne!(read_text(bare).kind, Kind::AutoReply);
}

#[test]
fn a_challenge_is_recognised_by_its_words() {
    let text = "From: bob@example.com\nSubject: Re: hello\n\n\
                I use a challenge-response system. Please confirm you are human by replying.\n";
    let r = read_text(text);
    assert_eq!(r.kind, Kind::Challenge);
    assert_eq!(r.recipients[0].recipient, "bob@example.com");
}

#[test]
fn verp_names_the_recipient_of_a_bounce_that_names_none() {
    let pattern = VerpPattern::new("bounces+{local}={domain}@example.org").unwrap();
    let text = "From: MAILER-DAEMON@mx.example.net\nTo: bounces+bob=example.com@example.org\n\
                Subject: Undeliverable: hello\n\nSomething went wrong.\n";
    let options = ReadOptions {
        verp: Some(&pattern),
        ..ReadOptions::default()
    };
    let r = read(text.as_bytes(), &options).unwrap();
    assert_eq!(r.kind, Kind::Bounce);
    assert_eq!(r.format, "verp");
    assert_eq!(r.recipients[0].recipient, "bob@example.com");
    // Not a bounce: the pattern is not used.
    let hello = "From: ann@example.net\nTo: bounces+bob=example.com@example.org\nSubject: hi\n\nhello\n";
    assert!(read(hello.as_bytes(), &options).unwrap().recipients.is_empty());
}

#[test]
fn the_original_is_read_from_an_attached_message_with_asked_headers() {
    let asked = vec![
        "X-Campaign-Id".to_string(),
        "X-Missing".to_string(),
        "x-campaign-id".to_string(),
    ];
    let options = ReadOptions {
        headers: &asked,
        ..ReadOptions::default()
    };
    let groups = "Final-Recipient: rfc822; bob@example.com\nAction: failed\nStatus: 5.1.1\n";
    let raw = dsn("message/delivery-status", groups, RETURNED);
    let o = read(raw.as_bytes(), &options).unwrap().original.unwrap();
    assert_eq!(o.message_id, "m1@example.org");
    assert_eq!(
        (o.from.as_str(), o.to.as_str()),
        ("sender@example.org", "bob@example.com")
    );
    assert_eq!(
        (o.subject.as_str(), o.date.as_str()),
        ("Hello", "Mon, 1 Jan 2024 00:00:00 +0000")
    );
    assert_eq!(
        o.headers,
        [
            ("X-Campaign-Id".to_string(), "c-42".to_string()),
            ("X-Missing".to_string(), String::new())
        ]
    );
}

#[test]
fn the_original_is_read_from_text_rfc822_headers() {
    let groups = "Final-Recipient: rfc822; bob@example.com\nAction: failed\nStatus: 5.1.1\n";
    let returned = "--B\nContent-Type: text/rfc822-headers\n\nMessage-ID: <m2@example.org>\n\
                    From: sender@example.org\nSubject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\n\n";
    let r = read_text(&dsn("message/delivery-status", groups, returned));
    let o = r.original.unwrap();
    assert_eq!((o.message_id.as_str(), o.subject.as_str()), ("m2@example.org", "Grüße"));
}

#[test]
fn the_original_is_read_from_headers_quoted_in_the_body_never_the_bounces_own() {
    let text = "From: MAILER-DAEMON@mx.example.net\nMessage-ID: <bounce@mx.example.net>\nSubject: failure notice\n\n\
                Sorry, it failed.\n\n------ This is a copy of the message's headers.\n\
                Message-ID: <m3@example.org>\nFrom: sender@example.org\nSubject: Hi there\n\nbody\n";
    let o = read_text(text).original.unwrap();
    assert_eq!(
        (o.message_id.as_str(), o.subject.as_str()),
        ("m3@example.org", "Hi there")
    );
    let none = read_text("From: ann@example.net\nMessage-ID: <own@example.net>\nSubject: hi\n\nhello\n");
    assert_eq!(none.original, None);
}

#[test]
fn each_limit_is_named_when_exceeded() {
    let small = Limits {
        max_email_bytes: 100,
        ..Limits::default()
    };
    let big = format!("Subject: x\n\n{}", "a".repeat(200));
    let e = read(
        big.as_bytes(),
        &ReadOptions {
            limits: small,
            ..ReadOptions::default()
        },
    )
    .unwrap_err();
    assert_eq!((e.code(), e.field()), ("too_large", "max_email_bytes"));

    let mut nested = "Subject: leaf\n\nleaf\n".to_string();
    for _ in 0..6 {
        nested = format!("Subject: wrap\nContent-Type: message/rfc822\n\n{nested}");
    }
    let shallow = Limits {
        max_mime_depth: 3,
        ..Limits::default()
    };
    let e = read(
        nested.as_bytes(),
        &ReadOptions {
            limits: shallow,
            ..ReadOptions::default()
        },
    )
    .unwrap_err();
    assert_eq!((e.code(), e.field()), ("too_deep", "max_mime_depth"));

    let mut many = "Content-Type: multipart/mixed; boundary=\"B\"\n\n".to_string();
    for i in 0..20 {
        many.push_str(&format!("--B\nContent-Type: text/plain\n\npart {i}\n"));
    }
    many.push_str("--B--\n");
    let few = Limits {
        max_mime_parts: 5,
        ..Limits::default()
    };
    let e = read(
        many.as_bytes(),
        &ReadOptions {
            limits: few,
            ..ReadOptions::default()
        },
    )
    .unwrap_err();
    assert_eq!((e.code(), e.field()), ("too_many_parts", "max_mime_parts"));
    assert!(e.to_string().contains("max_mime_parts"));

    assert_eq!(read(b"  \n", &ReadOptions::default()).unwrap_err().code(), "empty");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

    /// Hostile input: any bytes are read or refused, never a panic.
    #[test]
    fn any_bytes_are_read_or_refused(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..3000)) {
        let _ = read(&bytes, &ReadOptions::default());
    }

    /// A report damaged anywhere (bytes cut out and others spliced in, multi-byte characters
    /// split) is read or refused, never a panic.
    #[test]
    fn a_damaged_report_is_read_or_refused(
        at in 0usize..2000,
        cut in 0usize..64,
        splice in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
    ) {
        let groups = "Final-Recipient: utf-8; ひろし@例え.jp\nOriginal-Recipient: rfc822;<bob@example.com>\n\
                      Action: failed\nStatus: 5.1.1\nDiagnostic-Code: smtp; 550 #5.1.1 ça\n  n'existe pas\n";
        let mut raw = dsn("message/global-delivery-status", groups, RETURNED).into_bytes();
        let at = at.min(raw.len());
        let end = (at + cut).min(raw.len());
        raw.splice(at..end, splice);
        let _ = read(&raw, &ReadOptions::default());
    }
}

#[test]
fn a_hotmail_complaint_names_the_complaining_user() {
    let text = "From: staff@hotmail.example\nSubject: complaint about message from 192.0.2.1\nMIME-Version: 1.0\n\
                Content-Type: multipart/mixed; boundary=\"B\"\n\n--B\nContent-Type: message/rfc822\n\n\
                X-HmXmrOriginalRecipient: <bob@example.com>\nFrom: sender@example.org\nTo: undisclosed\n\
                Subject: Hello\n\nHi\n--B--\n";
    let r = read_text(text);
    assert_eq!(r.kind, Kind::Feedback);
    assert_eq!(r.recipients[0].recipient, "bob@example.com");
}

#[test]
fn an_unsubscribe_request_is_an_opt_out_complaint() {
    let text = "From: bob@example.com\nTo: opt-out@example.org\nSubject: unsubscribe\nAuto-Submitted: auto-replied\n\
                X-Apple-Unsubscribe: true\n\nPlease unsubscribe me.\n";
    let r = read_text(text);
    assert_eq!(r.kind, Kind::Feedback);
    assert_eq!(r.feedback.unwrap().feedback_type, "opt-out");
    assert_eq!(r.recipients[0].recipient, "bob@example.com");
}

#[test]
fn a_challenge_sent_by_a_service_names_the_originals_recipient() {
    let text = "From: notify@boxbe.com\nSubject: Please verify your message\nMIME-Version: 1.0\n\
                Content-Type: multipart/mixed; boundary=\"B\"\n\n--B\nContent-Type: text/plain\n\n\
                Bob uses a service to keep his inbox clean.\n"
        .to_string()
        + RETURNED
        + "--B--\n";
    let r = read_text(&text);
    assert_eq!(r.kind, Kind::Challenge);
    assert_eq!(r.recipients[0].recipient, "bob@example.com");
}

/// An opt-out report names the person in `Removal-Recipient`. Sisimai 5.1.0 answers such
/// reports (`arf-12` in its set) with a placeholder address of its own
/// (`undisclosed-recipient-in-headers@libsisimai.org.invalid`) when the returned headers say
/// `To: <Undisclosed Recipients>`; we disagree on purpose and report the address the report
/// gives, or none.
#[test]
fn an_opt_out_report_names_its_removal_recipient_never_a_placeholder() {
    let text = "From: fbl@isp.example\nSubject: FW: hello\nMIME-Version: 1.0\n\
                Content-Type: multipart/report; report-type=feedback-report; boundary=\"B\"\n\n\
                --B\nContent-Type: message/feedback-report\n\nFeedback-Type: opt-out\nRemoval-Recipient: bob@example.com\n\n\
                --B\nContent-Type: text/rfc822-header\n\nFrom: <ann@example.net>\nTo: <Undisclosed Recipients>\n\
                Subject: Hello\nMessage-ID: <m9@example.net>\n\n--B--\n";
    let r = read_text(text);
    assert_eq!(r.kind, Kind::Feedback);
    let got: Vec<_> = r.recipients.iter().map(|x| x.recipient.as_str()).collect();
    assert_eq!(got, ["bob@example.com"]);
    assert_eq!(r.original.unwrap().message_id, "m9@example.net");
    let nameless = text.replace("Removal-Recipient: bob@example.com\n", "");
    assert!(read_text(&nameless).recipients.is_empty());
}
