"""Before any test runs: the system tools the monitoring tests need (Debian's ``prometheus`` and
``prometheus-alertmanager``). Missing ones are installed when this runs as root with apt-get
(a fresh CI machine or container); otherwise the run stops at once with one line saying what to
install, instead of failing tests one by one."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

TOOLS = {"prometheus": "prometheus", "promtool": "prometheus",
         "amtool": "prometheus-alertmanager", "prometheus-alertmanager": "prometheus-alertmanager"}


def _missing() -> list[str]:
    return sorted({pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None})


def pytest_sessionstart(session: pytest.Session) -> None:
    packages = _missing()
    if not packages:
        return
    hint = f"apt-get install -y {' '.join(packages)}"
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print(f"\ninstalling {', '.join(packages)} (Debian packages the monitoring tests run)")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *packages]):
            r = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if r.returncode:
                pytest.exit(f"could not install {', '.join(packages)} ({hint}): "
                            f"{(r.stderr.strip().splitlines() or ['?'])[-1]}", returncode=2)
        if not _missing():
            return
    pytest.exit(f"missing system tools for the tests: {hint} (as root)", returncode=2)
