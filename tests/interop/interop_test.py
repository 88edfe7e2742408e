"""Cross-language client test: Python (grpcio) against the release `rebound` binary.

Generates stubs from proto/ with grpcio-tools, starts `rebound serve` on free loopback ports, and
calls Classify, ClassifyBatch, ClassifyStream, ClassifyMessage, ClassifyMessageStream,
RuleAdmin's ListUnmatched and ResetUnmatched, and grpc.health.v1 Health. It also runs the Python
snippet of the README, so the documented client is proven to work.

Run: REBOUND_BIN=target/release/rebound python tests/interop/interop_test.py
"""

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[2]
STUBS = tempfile.mkdtemp(prefix="rebound-stubs-")


def generate_stubs():
    include = Path(protoc.__file__).parent / "_proto"
    args = ["protoc", f"-I{ROOT / 'proto'}", f"-I{include}", f"--python_out={STUBS}", f"--grpc_python_out={STUBS}",
            str(ROOT / "proto/rebound/v1/rebound.proto")]
    if protoc.main(args) != 0:
        raise RuntimeError("protoc failed")
    sys.path.insert(0, STUBS)


generate_stubs()
from rebound.v1 import rebound_pb2, rebound_pb2_grpc  # noqa: E402  (generated above)


EMAIL_LIMIT = 64 * 1024


def dsn(recipient="bob@example.com", padding=0):
    """A plain RFC 3464 delivery report for one recipient whose address is unknown."""
    return (
        "From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\r\n"
        "To: bounces@sender.example.org\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Date: Sun, 6 Dec 2026 10:00:02 +0000\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n"
        "--B\r\nContent-Type: text/plain\r\n\r\n"
        "Your message could not be delivered.\r\n" + "x" * padding + "\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.net\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Remote-MTA: dns; mx.example.com\r\n"
        f"Diagnostic-Code: smtp; 550 5.1.1 <{recipient}>: Recipient address rejected: User unknown\r\n\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        "Message-ID: <orig-1@sender.example.org>\r\nSubject: December news\r\nX-Campaign-Id: winter-26\r\n\r\n"
        "--B--\r\n"
    ).encode()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Interop(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        binary = os.environ.get("REBOUND_BIN", str(ROOT / "target/release/rebound"))
        cls.addr = f"127.0.0.1:{free_port()}"
        cls.admin_addr = f"127.0.0.1:{free_port()}"
        cls.server = subprocess.Popen(
            [binary, "serve", "--listen", cls.addr, "--admin-listen", cls.admin_addr,
             "--metrics-listen", "off", "--max-message-bytes", "1048576", "--max-email-bytes", str(EMAIL_LIMIT)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        cls.channel = grpc.insecure_channel(cls.addr)
        cls.classifier = rebound_pb2_grpc.ClassifierStub(cls.channel)
        cls.health = health_pb2_grpc.HealthStub(cls.channel)
        cls.admin_channel = grpc.insecure_channel(cls.admin_addr)
        cls.admin = rebound_pb2_grpc.RuleAdminStub(cls.admin_channel)
        deadline = time.monotonic() + 30
        while True:
            try:
                status = cls.health.Check(health_pb2.HealthCheckRequest(), timeout=1).status
                if status == health_pb2.HealthCheckResponse.SERVING:
                    break
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline or cls.server.poll() is not None:
                raise RuntimeError("rebound did not start: " + cls.server.stderr.read().decode(errors="replace"))
            time.sleep(0.1)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        cls.admin_channel.close()
        cls.server.send_signal(signal.SIGTERM)
        cls.server.wait(timeout=15)

    def test_health(self):
        for service in ["", "rebound.v1.Classifier"]:
            status = self.health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status
            self.assertEqual(status, health_pb2.HealthCheckResponse.SERVING, service)

    def test_classify(self):
        answer = self.classifier.Classify(rebound_pb2.ClassifyRequest(
            id="m-1", code=550, enhanced="5.1.1", text="<bob@example.com>: User unknown"), timeout=5)
        self.assertEqual(answer.id, "m-1")
        self.assertEqual(answer.category, "invalid_address")
        self.assertTrue(answer.suppress_recipient)
        self.assertEqual(answer.bounce_type, rebound_pb2.BOUNCE_TYPE_HARD)
        self.assertEqual(answer.rule_id, "generic/invalid_address/unknown-user")
        self.assertEqual(answer.evidence, rebound_pb2.EVIDENCE_TEXT)
        self.assertEqual(len(answer.ruleset.digest), 64)

    def test_evidence_and_withheld_suppression(self):
        # The guide's table puts 550 5.7.1 under Invalid Address, but a policy code alone says
        # nothing about the recipient: the category stays and suppression is withheld.
        answer = self.classifier.Classify(rebound_pb2.ClassifyRequest(
            id="m-2", code=550, enhanced="5.7.1", explain=True), timeout=5)
        self.assertEqual(answer.category, "invalid_address")
        self.assertEqual(answer.evidence, rebound_pb2.EVIDENCE_ENHANCED_CODE)
        self.assertFalse(answer.suppress_recipient)
        self.assertNotEqual(answer.bounce_type, rebound_pb2.BOUNCE_TYPE_HARD)
        self.assertTrue(answer.explanation.suppression.startswith("suppression withheld"),
                        answer.explanation.suppression)
        # A recipient code alone still suppresses; a bare code is reply_code evidence.
        answer = self.classifier.Classify(rebound_pb2.ClassifyRequest(code=550, enhanced="5.1.1"), timeout=5)
        self.assertEqual(answer.evidence, rebound_pb2.EVIDENCE_ENHANCED_CODE)
        self.assertTrue(answer.suppress_recipient)
        answer = self.classifier.Classify(rebound_pb2.ClassifyRequest(code=421), timeout=5)
        self.assertEqual(answer.evidence, rebound_pb2.EVIDENCE_REPLY_CODE)
        answer = self.classifier.Classify(rebound_pb2.ClassifyRequest(text="Thanks for your message"), timeout=5)
        self.assertEqual(answer.evidence, rebound_pb2.EVIDENCE_NONE)

    def test_invalid_argument_and_oversize(self):
        with self.assertRaises(grpc.RpcError) as bad:
            self.classifier.Classify(rebound_pb2.ClassifyRequest(code=700), timeout=5)
        self.assertEqual(bad.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertTrue(bad.exception.details().startswith("code:"))
        with self.assertRaises(grpc.RpcError) as big:
            self.classifier.Classify(rebound_pb2.ClassifyRequest(text="x" * (2 << 20)), timeout=5)
        self.assertEqual(big.exception.code(), grpc.StatusCode.OUT_OF_RANGE)

    def test_classify_batch(self):
        items = [rebound_pb2.ClassifyRequest(id=str(i), text="552 5.2.2 Mailbox full") for i in range(100)]
        items[50] = rebound_pb2.ClassifyRequest(id="50", enhanced="5.1")
        answer = self.classifier.ClassifyBatch(rebound_pb2.ClassifyBatchRequest(items=items), timeout=10)
        self.assertEqual([a.id for a in answer.items], [str(i) for i in range(100)])
        self.assertEqual(answer.items[0].category, "mailbox_full")
        self.assertEqual(answer.items[50].error.field, "enhanced")
        self.assertEqual(answer.ruleset.generation, 1)

    def test_classify_stream(self):
        def requests():
            for i in range(1000):
                if i % 100 == 7:
                    yield rebound_pb2.ClassifyRequest(id=str(i), code=42)
                else:
                    yield rebound_pb2.ClassifyRequest(id=str(i), text="421 4.7.0 Try again later")
        answers = list(self.classifier.ClassifyStream(requests(), timeout=30))
        self.assertEqual([a.id for a in answers], [str(i) for i in range(1000)])
        self.assertEqual(answers[7].error.field, "code")
        self.assertTrue(all(a.retryable for a in answers if not a.HasField("error")))

    def assert_unknown_user(self, answer):
        # What the DSN reader makes of the report (fails on the skeleton reader).
        self.assertEqual(answer.kind, rebound_pb2.MESSAGE_KIND_BOUNCE, answer)
        self.assertEqual([r.recipient for r in answer.recipients], ["bob@example.com"])
        bob = answer.recipients[0]
        self.assertEqual(bob.action, rebound_pb2.RECIPIENT_ACTION_FAILED)
        self.assertEqual(bob.category, "invalid_address")
        self.assertTrue(bob.suppress_recipient)

    def test_classify_message(self):
        answer = self.classifier.ClassifyMessage(rebound_pb2.ClassifyMessageRequest(
            id="e-1", message=dsn(), headers=["X-Campaign-Id"], omit_advice=True), timeout=5)
        self.assertEqual(answer.id, "e-1")
        self.assertFalse(answer.HasField("error"))
        self.assertEqual(len(answer.ruleset.digest), 64)
        self.assertTrue(all(r.summary == "" for r in answer.recipients))
        self.assert_unknown_user(answer)
        self.assertEqual([(h.name, h.value) for h in answer.original.headers], [("X-Campaign-Id", "winter-26")])

    def test_classify_message_over_a_limit(self):
        with self.assertRaises(grpc.RpcError) as big:
            self.classifier.ClassifyMessage(rebound_pb2.ClassifyMessageRequest(
                message=dsn(padding=EMAIL_LIMIT)), timeout=5)
        self.assertEqual(big.exception.code(), grpc.StatusCode.OUT_OF_RANGE)
        self.assertIn("--max-email-bytes", big.exception.details())
        with self.assertRaises(grpc.RpcError) as bad:
            self.classifier.ClassifyMessage(rebound_pb2.ClassifyMessageRequest(
                message=dsn(), verp="no placeholders"), timeout=5)
        self.assertEqual(bad.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertTrue(bad.exception.details().startswith("verp:"), bad.exception.details())

    def test_classify_message_stream(self):
        requests = [
            rebound_pb2.ClassifyMessageRequest(id="a", message=dsn()),
            rebound_pb2.ClassifyMessageRequest(id="too-big", message=dsn(padding=EMAIL_LIMIT)),
            rebound_pb2.ClassifyMessageRequest(id="long", message=dsn(padding=20000)),
            rebound_pb2.ClassifyMessageRequest(id="empty", message=b""),
            rebound_pb2.ClassifyMessageRequest(id="z", message=dsn()),
        ]
        answers = list(self.classifier.ClassifyMessageStream(iter(requests), timeout=30))
        self.assertEqual([a.id for a in answers], ["a", "too-big", "long", "empty", "z"])
        errors = [(a.error.code, a.error.field) if a.HasField("error") else None for a in answers]
        self.assertEqual(errors, [None, ("OUT_OF_RANGE", "message"), None, ("INVALID_ARGUMENT", "message"), None])
        self.assertIn("--max-email-bytes", answers[1].error.message)
        for answer in (answers[0], answers[2], answers[4]):
            self.assertEqual(len(answer.ruleset.digest), 64)
            self.assert_unknown_user(answer)

    def test_list_unmatched(self):
        # A wording no rule knows, decided on its codes alone: tallied by template.
        reply = "550 5.7.1 zorvex gateway turned the message away"
        for _ in range(3):
            answer = self.classifier.Classify(rebound_pb2.ClassifyRequest(text=reply), timeout=5)
            self.assertIn(answer.evidence, (rebound_pb2.EVIDENCE_ENHANCED_CODE, rebound_pb2.EVIDENCE_REPLY_CODE,
                                            rebound_pb2.EVIDENCE_NONE))
        listed = self.admin.ListUnmatched(rebound_pb2.ListUnmatchedRequest(limit=1000), timeout=5)
        self.assertEqual(listed.capacity, 10000)
        self.assertGreaterEqual(listed.tracked, 1)
        mine = [t for t in listed.templates if "zorvex" in t.template]
        self.assertEqual(len(mine), 1, listed)
        self.assertGreaterEqual(mine[0].count, 3)
        self.assertLessEqual(mine[0].count - mine[0].error_bound, 3)
        self.assertEqual(mine[0].evidence, answer.evidence)
        self.assertEqual(mine[0].category, answer.category)
        self.assertEqual(mine[0].example, "", "examples are off by default")
        # Filters: nothing is tallied as text evidence.
        text = self.admin.ListUnmatched(rebound_pb2.ListUnmatchedRequest(evidence=rebound_pb2.EVIDENCE_TEXT),
                                        timeout=5)
        self.assertEqual(len(text.templates), 0)
        self.admin.ResetUnmatched(rebound_pb2.ResetUnmatchedRequest(), timeout=5)
        self.assertEqual(self.admin.ListUnmatched(rebound_pb2.ListUnmatchedRequest(), timeout=5).tracked, 0)

    def test_readme_snippet(self):
        readme = (ROOT / "README.md").read_text()
        match = re.search(r"<!-- python-client -->\s*```python\n(.*?)```", readme, re.S)
        self.assertIsNotNone(match, "README has no python-client snippet")
        scope = {"ADDR": self.addr}
        exec(compile(match.group(1), "README.md", "exec"), scope)
        self.assertEqual(scope["answer"].category, "invalid_address")


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    failed = len(result.failures) + len(result.errors)
    print(f"interop: {result.testsRun - failed} passed, {failed} failed")
    sys.exit(1 if failed or result.testsRun == 0 else 0)
