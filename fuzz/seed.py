#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpus, fuzz/corpus/<target>/, from the repository's own data:
the provider replies of tests/data/*.jsonl, the rules' examples and tests, the rule files with
their rhai hooks, requests encoded from some of the replies, and the bounce messages of
tests/data/sisimai-set-of-emails/ with a few nested MIME shapes. Standard library only.

Generated rather than committed, so that the seeds follow the data. Each file is named by the
SHA-1 of its contents, as libFuzzer names what it adds, so running this again adds nothing twice.
"""

import gzip
import hashlib
import json
import pathlib
import re
import struct

FUZZ = pathlib.Path(__file__).resolve().parent
ROOT = FUZZ.parent


def write(target, data):
    out = FUZZ / "corpus" / target
    out.mkdir(parents=True, exist_ok=True)
    (out / hashlib.sha1(data).hexdigest()).write_bytes(data)


def provider_replies():
    """The fields of every reply in tests/data/*.jsonl."""
    for path in sorted((ROOT / "tests" / "data").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                yield json.loads(line)


def rule_examples():
    """Replies quoted in the rules' `examples` and `tests`: plain strings and flow maps, read
    line by line (enough for seeds; nothing here needs a YAML parser)."""
    quoted = re.compile(r'^\s*-\s+(?:reply:\s+)?"((?:[^"\\]|\\.)*)"\s*$')
    flow = re.compile(r"^\s*-\s+(?:reply:\s+)?\{(.*)\}\s*$")
    for path in sorted((ROOT / "rules").rglob("*.yaml")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if m := quoted.match(line):
                yield {"text": json.loads('"' + m.group(1) + '"')}
            elif m := flow.match(line):
                fields = {}
                for key in ("code", "enhanced", "recipient", "remote_host"):
                    if f := re.search(rf"\b{key}:\s*([^,\s}}]+)", m.group(1)):
                        fields[key] = f.group(1).strip("'\"")
                if t := re.search(r'\btext:\s*"((?:[^"\\]|\\.)*)"', m.group(1)):
                    fields["text"] = json.loads('"' + t.group(1) + '"')
                yield fields


def reply_input(fields):
    """The `classify` target's input: code, enhanced, recipient, remote_host and text, NUL-separated."""
    parts = [str(fields.get(key) or "") for key in ("code", "enhanced", "recipient", "remote_host", "text")]
    return "\0".join(parts).encode()


def rule_files():
    """Every rule file as the `rules` target reads it (`path LF contents`), with the rhai files
    beside it that it calls, NUL-separated."""
    rules = ROOT / "rules"
    for path in sorted(rules.rglob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        files = [(path.relative_to(rules).as_posix(), text)]
        for script in sorted(set(re.findall(r"script:\s*([\w./-]+\.rhai)::", text))):
            rhai = path.parent / script
            if rhai.is_file():
                files.append((rhai.relative_to(rules).as_posix(), rhai.read_text(encoding="utf-8")))
        yield "\0".join(f"{name}\n{body}" for name, body in files).encode()
    # The rule format's documented example, which calls a hook of its own.
    readme = (rules / "README.md").read_text(encoding="utf-8")
    for block in re.findall(r"```yaml\n(.*?)```", readme, re.S):
        hook = "fn is_quota(reply) { reply.lower.contains(\"quota\") }\n"
        yield f"example.yaml\n{block}\0hooks.rhai\n{hook}".encode()


def varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def string_field(tag, value):
    data = value.encode()
    return varint(tag << 3 | 2) + varint(len(data)) + data if data else b""


def classify_request(fields, explain=False, omit_advice=False):
    """A `ClassifyRequest` as protobuf."""
    out = string_field(1, str(fields.get("id") or ""))
    if fields.get("code"):
        out += varint(2 << 3) + varint(int(fields["code"]))
    for tag, key in ((3, "enhanced"), (4, "text"), (5, "recipient"), (6, "remote_host")):
        out += string_field(tag, str(fields.get(key) or ""))
    if explain:
        out += varint(7 << 3) + varint(1)
    if omit_advice:
        out += varint(8 << 3) + varint(1)
    return out


def batch_request(items):
    return b"".join(varint(1 << 3 | 2) + varint(len(item)) + item for item in items)


def frame(payload, compressed=False):
    return struct.pack(">BI", int(compressed), len(payload)) + payload


def requests(replies):
    """The `requests` target's input: a mode byte (see fuzz/src/requests.rs), then the bytes."""
    encoded = [classify_request(r, explain=i % 3 == 0, omit_advice=i % 2 == 1) for i, r in enumerate(replies)]
    for item in encoded[:12]:
        yield b"\0" + item
        yield b"\4" + gzip.compress(item, mtime=0)
    for start in range(0, 40, 8):
        batch = batch_request(encoded[start : start + 8])
        yield b"\1" + batch
        yield b"\5" + gzip.compress(batch, mtime=0)
    # Whole bodies: a stream of three items, and two batches, plain and compressed.
    yield b"\2" + b"".join(frame(item) for item in encoded[:3])
    yield b"\6" + b"".join(frame(gzip.compress(item, mtime=0), True) for item in encoded[3:6])
    yield b"\3" + frame(batch_request(encoded[:2])) + frame(batch_request(encoded[2:5]))
    yield b"\7" + frame(gzip.compress(batch_request(encoded[:4]), mtime=0), True)


def bounce_messages():
    """Every message of Sisimai's set of emails: the Maildir files, and each message of the mbox
    files (split at their `From ` lines)."""
    corpus = ROOT / "tests" / "data" / "sisimai-set-of-emails"
    for path in sorted((corpus / "maildir").rglob("*")):
        if path.is_file():
            yield path.read_bytes()
    for path in sorted((corpus / "mailbox").glob("*")):
        data = path.read_bytes()
        for message in re.split(rb"(?:^|\n)From [^\n]*\n", data):
            if message.strip():
                yield message


def nested_messages():
    """Multiparts and attached messages nested a few levels deep (past the target's tight
    depth limit of 2), and a DSN whose delivery status is an attached message's."""
    for kinds in ("M", "g", "MM", "gg", "Mg", "gM", "MgM", "ggg", "MMMM"):
        out, closing = ["From: a@example.org"], []
        for level, kind in enumerate(kinds):
            if kind == "M":
                out += [f'Content-Type: multipart/mixed; boundary="b{level}"', "", f"--b{level}"]
                closing.append(f"--b{level}--")
            else:
                out += ["Content-Type: message/rfc822", "", "From: b@example.org"]
        out += ["Content-Type: text/plain", "", "hello"] + closing[::-1]
        yield "\n".join(out).encode()
    yield "\r\n".join([
        "From: MAILER-DAEMON@example.net",
        'Content-Type: multipart/report; report-type=delivery-status; boundary="r"',
        "",
        "--r",
        "Content-Type: message/delivery-status",
        "",
        "Reporting-MTA: dns; mx.example.net",
        "",
        "Final-Recipient: rfc822; bob@example.com",
        "Action: delayed",
        "Status: 4.4.7",
        "Diagnostic-Code: smtp; 451 4.4.7 try again later",
        "--r",
        "Content-Type: message/rfc822",
        "",
        "Message-ID: <1@example.org>",
        "From: sender@example.org",
        "",
        "hi",
        "--r--",
    ]).encode()


def main():
    replies = list(provider_replies())
    for fields in replies + list(rule_examples()):
        write("classify", reply_input(fields))
    # Fields the data leaves empty: a recipient and a remote host, in the shapes callers send.
    write("classify", reply_input({"code": 550, "recipient": "<Bob@Example.COM>", "remote_host": "MX1.Example.com.[192.0.2.1]", "text": "550-5.1.1 user unknown\r\n550 5.1.1 gsmtp"}))
    for data in rule_files():
        write("rules", data)
    for data in requests(replies[::7]):
        write("requests", data)
    for data in list(bounce_messages()) + list(nested_messages()):
        write("message", data)
    for target in ("classify", "rules", "requests", "message"):
        print(f"{target}: {len(list((FUZZ / 'corpus' / target).iterdir()))} seeds")


if __name__ == "__main__":
    main()
