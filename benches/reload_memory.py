"""Resident memory of `rebound serve` across many reloads (issue: no growth beyond noise).

Starts the release binary on a copy of rules/, then N times rewrites one rule file (alternating
two valid versions, so every reload swaps in a new rule set) and calls RuleAdmin.Reload, reading
VmRSS from /proc before, during and after.

Run: python benches/reload_memory.py [N]   (needs grpcio and grpcio-tools, as tests/interop)
"""

import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[1]


def stubs():
    out = tempfile.mkdtemp(prefix="rebound-stubs-")
    include = Path(protoc.__file__).parent / "_proto"
    protoc.main(["protoc", f"-I{ROOT / 'proto'}", f"-I{include}", f"--python_out={out}", f"--grpc_python_out={out}",
                 str(ROOT / "proto/rebound/v1/rebound.proto")])
    sys.path.insert(0, out)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    stubs()
    from rebound.v1 import rebound_pb2, rebound_pb2_grpc

    rules = Path(tempfile.mkdtemp(prefix="rebound-rules-")) / "rules"
    shutil.copytree(ROOT / "rules", rules)
    custom = rules / "custom.yaml"
    version = lambda i: (f"rules:\n  - id: custom/v{i % 2}\n    category: mailbox_full\n"
                         f"    when: {{ text: 'quota exceeded' }}\n    examples: ['552 quota exceeded']\n")
    custom.write_text(version(1))
    admin = f"127.0.0.1:{free_port()}"
    server = subprocess.Popen([str(ROOT / "target/release/rebound"), "serve", "--listen", f"127.0.0.1:{free_port()}",
                               "--admin-listen", admin, "--metrics-listen", "off", "--watch", "false",
                               "--poll-interval", "0s", "--rules", str(rules)],
                              stdout=subprocess.DEVNULL)
    try:
        stub = rebound_pb2_grpc.RuleAdminStub(grpc.insecure_channel(admin))
        for _ in range(100):
            try:
                stub.GetStatus(rebound_pb2.GetStatusRequest(), timeout=1)
                break
            except grpc.RpcError:
                time.sleep(0.1)
        before = rss_kib(server.pid)
        started = time.monotonic()
        samples = []
        for i in range(n):
            custom.write_text(version(i))
            reply = stub.Reload(rebound_pb2.ReloadRequest(), timeout=30)
            assert reply.changed, reply
            if (i + 1) % (n // 10 or 1) == 0:
                samples.append((i + 1, rss_kib(server.pid)))
        took = time.monotonic() - started
        after = rss_kib(server.pid)
        print(f"reloads: {n} in {took:.1f} s ({1000 * took / n:.1f} ms each), generation {reply.status.active.generation}")
        print(f"VmRSS before: {before} KiB, after: {after} KiB ({after - before:+d} KiB)")
        print("VmRSS during: " + ", ".join(f"{i}: {kib} KiB" for i, kib in samples))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=15)


if __name__ == "__main__":
    main()
