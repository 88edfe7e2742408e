//! The Classifier's messages on the wire: a batch's requests read in place, and every answer
//! (unary, stream or batch) written as protobuf straight from the rule set's strings.
//!
//! Building a `pb::ClassifyResponse` per item copied about a dozen strings out of the rule set
//! (the advice among them, most of an answer's kilobyte), which were encoded once and freed: in a
//! profile of batches of 1,000, building, encoding and freeing answers took a fifth of the
//! server's CPU, and on a stream 15% of all instructions. Here an answer's fields are written
//! into one buffer (for a batch, one for all of its answers); the bytes on the wire are the same.
//! Likewise a batch's items are not decoded into strings of their own: each is a slice of the
//! buffer the request arrived in, read when it is classified.

use std::fmt;

use prost::Message;
use prost::bytes::{Buf, BufMut, Bytes};
use prost::encoding::{self, DecodeContext, WireType};
use rebound_engine::{Enhanced, Outcome};

use super::convert::{self, Decision, ItemFault, ItemFields};
use crate::pb;

/// A `ClassifyBatchResponse` whose items are already encoded.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct EncodedBatch {
    /// Field 1 once per item: key, length and the encoded `ClassifyResponse`.
    items: Vec<u8>,
    /// The batch's version, and field 15 of every item: the same rule set answered them all.
    ruleset: Option<pb::RuleSetVersion>,
}

/// A `ClassifyResponse` already encoded: the answer to a unary call or to one item of a stream,
/// written as a batch's items are.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct EncodedAnswer {
    bytes: Vec<u8>,
}

/// `ClassifyBatchResponse.items`.
const ITEMS: u32 = 1;
/// `ClassifyBatchResponse.ruleset`.
const RULESET: u32 = 2;
/// `ClassifyResponse.ruleset`.
const ITEM_RULESET: u32 = 15;

impl EncodedBatch {
    /// An empty batch answered by the rule set of `version`, with room for `items` answers of
    /// about a kilobyte, but not for more than `max_bytes`.
    pub fn new(version: pb::RuleSetVersion, items: usize, max_bytes: usize) -> Self {
        EncodedBatch {
            items: Vec::with_capacity(items.saturating_mul(1024).min(max_bytes)),
            ruleset: Some(version),
        }
    }

    /// Appends the answer to the item `id` from its decision, as `convert::respond` would build it.
    pub fn push_decision(&mut self, id: &str, decision: &Decision<'_>, omit_advice: bool) {
        let answer = Answer {
            id,
            outcome: &decision.outcome,
            omit_advice,
            ruleset: self.ruleset.as_ref().map(|v| VersionField {
                generation: v.generation,
                digest: &v.digest,
            }),
            explanation: decision.explanation.as_deref(),
        };
        let mut len = Len(0);
        answer.write(&mut len);
        encoding::encode_key(ITEMS, WireType::LengthDelimited, &mut self.items);
        encoding::encode_varint(len.0 as u64, &mut self.items);
        answer.write(&mut Out(&mut self.items));
    }

    /// Appends an answer that exists as a message: an item's error, or the baseline's answer.
    pub fn push_response(&mut self, response: &pb::ClassifyResponse) {
        put_message(&mut self.items, ITEMS, response);
    }

    /// The bytes of the answers written so far (the message is these and its version).
    pub fn answers_len(&self) -> usize {
        self.items.len()
    }
}

impl EncodedAnswer {
    /// The answer to the item `id` from its decision, as `convert::respond` would build it.
    pub fn from_decision(id: &str, decision: &Decision<'_>, omit_advice: bool) -> Self {
        let outcome = &decision.outcome;
        let answer = Answer {
            id,
            outcome,
            omit_advice,
            ruleset: Some(VersionField {
                generation: outcome.generation,
                digest: outcome.digest,
            }),
            explanation: decision.explanation.as_deref(),
        };
        let mut len = Len(0);
        answer.write(&mut len);
        let mut bytes = Vec::with_capacity(len.0);
        answer.write(&mut Out(&mut bytes));
        EncodedAnswer { bytes }
    }

    /// An answer that exists as a message: an item's error, or the baseline's answer.
    pub fn from_response(response: &pb::ClassifyResponse) -> Self {
        EncodedAnswer {
            bytes: response.encode_to_vec(),
        }
    }
}

/// Key, length and body of a message field.
fn put_message(buf: &mut Vec<u8>, tag: u32, message: &impl Message) {
    encoding::encode_key(tag, WireType::LengthDelimited, buf);
    // A Vec grows as needed: encoding into one cannot fail.
    let _ = message.encode_length_delimited(buf);
}

/// One answer's fields, in field order, as `ClassifyResponse` encodes them: proto3 leaves out
/// empty strings, zeros and false.
struct Answer<'a> {
    id: &'a str,
    outcome: &'a Outcome<'a>,
    omit_advice: bool,
    ruleset: Option<VersionField<'a>>,
    explanation: Option<&'a pb::Explanation>,
}

/// `ClassifyResponse.ruleset`, written from borrowed fields: a `RuleSetVersion` would own its
/// digest.
struct VersionField<'a> {
    generation: u64,
    digest: &'a str,
}

impl VersionField<'_> {
    /// Field 15, present even when both of its own fields are empty, as prost writes a `Some`.
    fn write(&self, out: &mut impl FieldSink) {
        let mut len = Len(0);
        self.write_fields(&mut len);
        out.key(ITEM_RULESET, WireType::LengthDelimited);
        out.varint_value(len.0 as u64);
        self.write_fields(out);
    }

    fn write_fields(&self, out: &mut impl FieldSink) {
        out.varint(1, self.generation);
        out.string(2, self.digest);
    }
}

impl Answer<'_> {
    /// Runs twice per answer: once to measure it (its length comes first), once to write it.
    fn write(&self, out: &mut impl FieldSink) {
        let o = self.outcome;
        out.string(1, self.id);
        out.string(2, &o.category.id);
        out.string(3, &o.category.name);
        // Enums are int32 on the wire: sign-extended, as protobuf has it.
        out.varint(4, i32::from(convert::bounce_type(o.bounce_type)) as u64);
        out.varint(5, u64::from(o.suppress_recipient));
        out.varint(6, u64::from(o.retryable));
        out.varint(7, i32::from(convert::responsible(o.responsible)) as u64);
        out.string(8, o.definition().unwrap_or_default());
        if !self.omit_advice {
            out.string(9, &o.category.summary);
            for step in &o.category.remediation {
                out.repeated_string(10, step);
            }
        }
        out.string(11, o.rule_id());
        out.string(12, o.provider.map_or("", |p| p.id.as_str()));
        out.varint(13, u64::from(o.code));
        if let Some(enhanced) = o.enhanced {
            out.string(14, EnhancedText::new(enhanced).as_str());
        }
        if let Some(version) = &self.ruleset {
            version.write(out);
        }
        if let Some(explanation) = self.explanation {
            out.message(16, explanation);
        }
        // Field 17 (`error`) is never set on an answer.
        out.varint(18, i32::from(convert::evidence(o.evidence)) as u64);
    }
}

/// An enhanced code's `x.y.z` without a string on the heap, and without the formatting
/// machinery, which cost a thousand instructions per answer (callgrind).
struct EnhancedText {
    /// `u8.u16.u16` is at most 15 bytes.
    bytes: [u8; 15],
    len: usize,
}

impl EnhancedText {
    fn new(enhanced: Enhanced) -> Self {
        let mut text = EnhancedText { bytes: [0; 15], len: 0 };
        text.push_number(u16::from(enhanced.class));
        text.push(b'.');
        text.push_number(enhanced.subject);
        text.push(b'.');
        text.push_number(enhanced.detail);
        text
    }

    fn push(&mut self, byte: u8) {
        if let Some(slot) = self.bytes.get_mut(self.len) {
            *slot = byte;
            self.len += 1;
        }
    }

    fn push_number(&mut self, mut n: u16) {
        let mut digits = [0u8; 5];
        let mut first = digits.len();
        while first > 0 {
            first -= 1;
            digits[first] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        for &digit in &digits[first..] {
            self.push(digit);
        }
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

/// Where an answer's fields go: a length count, or the buffer.
trait FieldSink {
    fn raw(&mut self, bytes: &[u8]);
    fn key(&mut self, tag: u32, wire_type: WireType);
    fn varint_value(&mut self, value: u64);
    fn message(&mut self, tag: u32, message: &impl Message);

    /// A scalar field; left out when zero.
    fn varint(&mut self, tag: u32, value: u64) {
        if value != 0 {
            self.key(tag, WireType::Varint);
            self.varint_value(value);
        }
    }

    /// A string field; left out when empty.
    fn string(&mut self, tag: u32, value: &str) {
        if !value.is_empty() {
            self.repeated_string(tag, value);
        }
    }

    /// One element of a repeated string: written even when empty.
    fn repeated_string(&mut self, tag: u32, value: &str) {
        self.key(tag, WireType::LengthDelimited);
        self.varint_value(value.len() as u64);
        self.raw(value.as_bytes());
    }
}

/// Counts the bytes an answer takes.
struct Len(usize);

impl FieldSink for Len {
    fn raw(&mut self, bytes: &[u8]) {
        self.0 += bytes.len();
    }
    fn key(&mut self, tag: u32, _: WireType) {
        self.0 += encoding::key_len(tag);
    }
    fn varint_value(&mut self, value: u64) {
        self.0 += encoding::encoded_len_varint(value);
    }
    fn message(&mut self, tag: u32, message: &impl Message) {
        let len = message.encoded_len();
        self.0 += encoding::key_len(tag) + prost::length_delimiter_len(len) + len;
    }
}

/// Writes an answer's bytes.
struct Out<'b>(&'b mut Vec<u8>);

impl FieldSink for Out<'_> {
    fn raw(&mut self, bytes: &[u8]) {
        self.0.put_slice(bytes);
    }
    fn key(&mut self, tag: u32, wire_type: WireType) {
        encoding::encode_key(tag, wire_type, self.0);
    }
    fn varint_value(&mut self, value: u64) {
        encoding::encode_varint(value, self.0);
    }
    fn message(&mut self, tag: u32, message: &impl Message) {
        put_message(self.0, tag, message);
    }
}

/// A `ClassifyBatchRequest` whose items are kept as they arrived, each a slice of the request's
/// buffer (no copy), read by [`read_item`] when it is classified.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct BatchRequest {
    items: Vec<Bytes>,
}

impl BatchRequest {
    /// Each item's encoded `ClassifyRequest`, in order.
    pub fn items(&self) -> &[Bytes] {
        &self.items
    }
}

/// Reads one encoded `ClassifyRequest` in place, as prost decodes it: unknown fields are skipped
/// and the last of a repeated field wins. An item that is not one gets its own error.
pub fn read_item(mut buf: &[u8]) -> Result<ItemFields<'_>, ItemFault> {
    let mut item = ItemFields::default();
    while !buf.is_empty() {
        let (tag, wire_type) = encoding::decode_key(&mut buf).map_err(malformed)?;
        match tag {
            1 | 3..=6 => {
                encoding::check_wire_type(WireType::LengthDelimited, wire_type).map_err(malformed)?;
                let value = read_str(&mut buf)?;
                match tag {
                    1 => item.id = value,
                    3 => item.enhanced = value,
                    4 => item.text = value,
                    5 => item.recipient = value,
                    _ => item.remote_host = value,
                }
            }
            2 | 7 | 8 => {
                encoding::check_wire_type(WireType::Varint, wire_type).map_err(malformed)?;
                let value = encoding::decode_varint(&mut buf).map_err(malformed)?;
                match tag {
                    // uint32 keeps the low 32 bits, as protobuf decoders do.
                    2 => item.code = value as u32,
                    7 => item.explain = value != 0,
                    _ => item.omit_advice = value != 0,
                }
            }
            _ => encoding::skip_field(wire_type, tag, &mut buf, DecodeContext::default()).map_err(malformed)?,
        }
    }
    Ok(item)
}

/// A length-delimited UTF-8 string at the front of `buf`, borrowed.
fn read_str<'a>(buf: &mut &'a [u8]) -> Result<&'a str, ItemFault> {
    let len = encoding::decode_varint(buf).map_err(malformed)?;
    let (value, rest) = usize::try_from(len)
        .ok()
        .and_then(|len| buf.split_at_checked(len))
        .ok_or_else(|| malformed("a string runs past the end of the item"))?;
    *buf = rest;
    std::str::from_utf8(value).map_err(|e| malformed(format!("a string is not UTF-8: {e}")))
}

/// The error of an item whose bytes are not a `ClassifyRequest`.
fn malformed(reason: impl fmt::Display) -> ItemFault {
    ItemFault {
        field: "items",
        message: format!("items: not a ClassifyRequest: {reason}"),
    }
}

impl Message for BatchRequest {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        for item in &self.items {
            encoding::encode_key(ITEMS, WireType::LengthDelimited, buf);
            encoding::encode_varint(item.len() as u64, buf);
            buf.put_slice(item);
        }
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        if tag == ITEMS {
            // A `Bytes` field takes its slice of the buffer without copying it.
            let mut item = Bytes::new();
            encoding::bytes::merge(wire_type, &mut item, buf, ctx)?;
            self.items.push(item);
            Ok(())
        } else {
            encoding::skip_field(wire_type, tag, buf, ctx)
        }
    }

    fn encoded_len(&self) -> usize {
        self.items
            .iter()
            .map(|item| encoding::key_len(ITEMS) + encoding::encoded_len_varint(item.len() as u64) + item.len())
            .sum()
    }

    fn clear(&mut self) {
        self.items.clear();
    }
}

impl Message for EncodedBatch {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.items);
        if let Some(version) = &self.ruleset {
            encoding::message::encode(RULESET, version, buf);
        }
    }

    /// Decoding keeps each item's bytes as they came, so a decoded batch encodes to the same bytes.
    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        match tag {
            ITEMS => {
                let mut item = Vec::new();
                encoding::bytes::merge(wire_type, &mut item, buf, ctx)?;
                encoding::encode_key(ITEMS, WireType::LengthDelimited, &mut self.items);
                encoding::encode_varint(item.len() as u64, &mut self.items);
                self.items.extend_from_slice(&item);
                Ok(())
            }
            RULESET => {
                // Answers pushed after decoding carry the version decoded.
                let version = self.ruleset.get_or_insert_with(Default::default);
                encoding::message::merge(wire_type, version, buf, ctx)
            }
            _ => encoding::skip_field(wire_type, tag, buf, ctx),
        }
    }

    fn encoded_len(&self) -> usize {
        self.items.len()
            + self
                .ruleset
                .as_ref()
                .map_or(0, |version| encoding::message::encoded_len(RULESET, version))
    }

    fn clear(&mut self) {
        self.items.clear();
        self.ruleset = None;
    }
}

impl Message for EncodedAnswer {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.bytes);
    }

    /// Decoding keeps each field's bytes as they came (all of `ClassifyResponse`'s fields are
    /// varints or length-delimited), so a decoded answer encodes to the same bytes.
    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        match wire_type {
            WireType::Varint => {
                let value = encoding::decode_varint(buf)?;
                encoding::encode_key(tag, wire_type, &mut self.bytes);
                encoding::encode_varint(value, &mut self.bytes);
            }
            WireType::LengthDelimited => {
                let mut field = Vec::new();
                encoding::bytes::merge(wire_type, &mut field, buf, ctx)?;
                encoding::encode_key(tag, wire_type, &mut self.bytes);
                encoding::encode_varint(field.len() as u64, &mut self.bytes);
                self.bytes.extend_from_slice(&field);
            }
            _ => encoding::skip_field(wire_type, tag, buf, ctx)?,
        }
        Ok(())
    }

    fn encoded_len(&self) -> usize {
        self.bytes.len()
    }

    fn clear(&mut self) {
        self.bytes.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::state::{RuleOrigin, RuleState};

    /// Both sets of provider replies, each asked for as the batch's items may be: with and
    /// without the advice, with and without an explanation.
    fn requests() -> Vec<pb::ClassifyRequest> {
        #[derive(serde::Deserialize)]
        struct Line {
            id: String,
            code: Option<u32>,
            enhanced: Option<String>,
            text: String,
        }
        let sets = [
            include_str!("../../tests/data/provider_replies.jsonl"),
            include_str!("../../tests/data/second_replies.jsonl"),
        ];
        let lines = sets.iter().flat_map(|set| set.lines()).filter(|l| !l.trim().is_empty());
        let mut requests = Vec::new();
        for (n, line) in lines.enumerate() {
            let line: Line = serde_json::from_str(line).unwrap();
            requests.push(pb::ClassifyRequest {
                id: line.id,
                code: line.code.unwrap_or(0),
                enhanced: line.enhanced.unwrap_or_default(),
                text: line.text,
                omit_advice: n % 2 == 1,
                explain: n % 5 == 0,
                ..Default::default()
            });
        }
        requests
    }

    #[test]
    fn answers_are_the_bytes_the_generated_message_encodes_to() {
        let rules = RuleState::load(RuleOrigin::Embedded).unwrap().current();
        let requests = requests();
        assert!(requests.len() > 600, "{} replies", requests.len());
        let mut batch = EncodedBatch::new(convert::version(&rules), requests.len(), usize::MAX);
        let mut expected = pb::ClassifyBatchResponse {
            items: Vec::new(),
            ruleset: Some(convert::version(&rules)),
        };
        for request in &requests {
            let decision = convert::decide(&rules, request.into(), &convert::FieldLimits::UNBOUNDED).unwrap();
            let mut one = EncodedBatch::new(convert::version(&rules), 1, usize::MAX);
            one.push_decision(&request.id, &decision, request.omit_advice);
            batch.push_decision(&request.id, &decision, request.omit_advice);
            let alone = EncodedAnswer::from_decision(&request.id, &decision, request.omit_advice);
            let answer = convert::respond(request.clone(), decision);
            let wanted = pb::ClassifyBatchResponse {
                items: vec![answer.clone()],
                ruleset: Some(convert::version(&rules)),
            };
            assert_eq!(one.encode_to_vec(), wanted.encode_to_vec(), "{}", request.id);
            // The unary and stream answer: the same message on its own.
            let alone = alone.encode_to_vec();
            assert_eq!(alone, answer.encode_to_vec(), "{}", request.id);
            assert_eq!(EncodedAnswer::decode(alone.as_slice()).unwrap().encode_to_vec(), alone);
            assert!(EncodedAnswer::decode(&alone[..alone.len() - 1]).is_err());
            expected.items.push(answer);
        }
        let bytes = batch.encode_to_vec();
        assert_eq!(bytes, expected.encode_to_vec());
        assert_eq!(batch.encoded_len(), bytes.len());
        // What a client decodes: every item, in order.
        let decoded = pb::ClassifyBatchResponse::decode(bytes.as_slice()).unwrap();
        assert_eq!(decoded, expected);
        assert!(decoded.items.iter().any(|a| a.explanation.is_some()));
        assert!(
            decoded
                .items
                .iter()
                .any(|a| a.remediation.is_empty() && !a.category.is_empty())
        );
        assert!(
            decoded
                .items
                .iter()
                .any(|a| !a.remediation.is_empty() && !a.enhanced.is_empty())
        );
    }

    #[test]
    fn errors_and_decoded_batches_encode_as_they_came() {
        let rules = RuleState::load(RuleOrigin::Embedded).unwrap().current();
        let bad = pb::ClassifyRequest {
            id: "bad".into(),
            code: 700,
            ..Default::default()
        };
        let fault = convert::decide(&rules, (&bad).into(), &convert::FieldLimits::UNBOUNDED)
            .err()
            .unwrap();
        let good = pb::ClassifyRequest {
            id: "good".into(),
            text: "552 5.2.2 Mailbox full".into(),
            ..Default::default()
        };
        let mut batch = EncodedBatch::new(convert::version(&rules), 2, usize::MAX);
        batch.push_response(&fault.response(bad.id.clone()));
        let decision = convert::decide(&rules, (&good).into(), &convert::FieldLimits::UNBOUNDED).unwrap();
        batch.push_decision(&good.id, &decision, false);
        let bytes = batch.encode_to_vec();

        let decoded = pb::ClassifyBatchResponse::decode(bytes.as_slice()).unwrap();
        assert_eq!(decoded.items[0].error.as_ref().unwrap().field, "code");
        assert_eq!(decoded.items[1].category, "mailbox_full");

        // Decoding keeps the items' bytes, so the batch encodes to the same bytes again.
        let mut again = EncodedBatch::decode(bytes.as_slice()).unwrap();
        assert_eq!(again.encode_to_vec(), bytes);
        assert!(EncodedBatch::decode(&bytes[..bytes.len() - 1]).is_err());

        // An error on its own (a stream item's) is the message's bytes.
        let error = fault.response(bad.id.clone());
        assert_eq!(
            EncodedAnswer::from_response(&error).encode_to_vec(),
            error.encode_to_vec()
        );

        // An answer added to a decoded batch carries the version the batch came with.
        again.push_decision(&good.id, &decision, false);
        let decoded = pb::ClassifyBatchResponse::decode(again.encode_to_vec().as_slice()).unwrap();
        assert_eq!(decoded.items[2].ruleset, decoded.ruleset);
        assert_eq!(decoded.items[2], decoded.items[1]);
    }

    /// What prost makes of an item's bytes, as borrowed fields; the oracle for `read_item`.
    fn prost_reads(bytes: &[u8]) -> Option<pb::ClassifyRequest> {
        pb::ClassifyRequest::decode(bytes).ok()
    }

    #[test]
    fn items_are_read_in_place_as_prost_decodes_them() {
        let mut requests = requests();
        for (n, request) in requests.iter_mut().enumerate() {
            if n % 4 == 0 {
                request.recipient = format!("user{n}@example.com");
                request.remote_host = format!("mx{n}.example.net");
            }
        }
        let wire = pb::ClassifyBatchRequest {
            items: requests.clone(),
        }
        .encode_to_vec();
        let batch = BatchRequest::decode(wire.as_slice()).unwrap();
        assert_eq!(batch.items().len(), requests.len());
        assert_eq!(batch.encode_to_vec(), wire);
        for (bytes, request) in batch.items().iter().zip(&requests) {
            assert_eq!(read_item(bytes).unwrap(), ItemFields::from(request), "{}", request.id);
        }

        // Unknown fields are skipped, and the last of a repeated field wins.
        let mut bytes = requests[0].encode_to_vec();
        bytes.extend(
            pb::ClassifyRequest {
                id: "later".into(),
                code: 451,
                ..Default::default()
            }
            .encode_to_vec(),
        );
        bytes.extend([0x98, 0x06, 0x01]); // field 99, varint 1
        let read = read_item(&bytes).unwrap();
        let decoded = prost_reads(&bytes).unwrap();
        assert_eq!(read, ItemFields::from(&decoded));
        assert_eq!(
            (read.id, read.code, read.text),
            ("later", 451, requests[0].text.as_str())
        );
    }

    #[test]
    fn an_item_prost_cannot_decode_is_an_error_of_its_own() {
        let request = pb::ClassifyRequest {
            id: "x".into(),
            code: 550,
            enhanced: "5.1.1".into(),
            text: "550 5.1.1 <bob@example.com>: user unknown".into(),
            recipient: "bob@example.com".into(),
            explain: true,
            ..Default::default()
        };
        let whole = request.encode_to_vec();
        // Every cut and every byte changed to a few values: `read_item` fails exactly where prost
        // fails, and otherwise reads what prost decodes.
        let damaged = crate::codec::tests::damaged_copies(&whole);
        let mut failures = 0;
        for bytes in &damaged {
            match (read_item(bytes), prost_reads(bytes)) {
                (Ok(read), Some(decoded)) => assert_eq!(read, ItemFields::from(&decoded), "{bytes:?}"),
                (Err(fault), None) => {
                    failures += 1;
                    assert_eq!(fault.field, "items");
                    assert!(
                        fault.message.starts_with("items: not a ClassifyRequest: "),
                        "{}",
                        fault.message
                    );
                }
                (read, decoded) => panic!("{bytes:?}: read {read:?}, prost {decoded:?}"),
            }
        }
        assert!(failures > 50, "{failures} of {} failed", damaged.len());
    }

    #[test]
    fn enhanced_codes_read_as_they_print() {
        for (class, subject, detail) in [(5, 1, 1), (4, 7, 0), (2, 0, 0), (5, 999, 999), (255, 65535, 10)] {
            let enhanced = Enhanced { class, subject, detail };
            assert_eq!(EnhancedText::new(enhanced).as_str(), enhanced.to_string());
        }
    }
}
