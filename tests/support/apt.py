"""Debian packages a test tier needs (a server, a browser, Java), installed when missing."""

from __future__ import annotations

import os
import shutil
import subprocess


def install(package: str, what: str) -> str | None:
    """`apt-get install -y package` (with an `apt-get update` retry); why it could not be
    done, or None when installed. `what` names the missing program in the reason."""
    apt = shutil.which("apt-get")
    if apt is None:
        return f"{what} is not installed and there is no apt-get to install it"
    if os.geteuid() != 0:
        return f"{what} is not installed and installing it needs root (apt-get install -y {package})"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    result = None
    for argv in ([apt, "install", "-y", package], [apt, "update"], [apt, "install", "-y", package]):
        try:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=900, env=env)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"apt-get failed: {exc}"
        if result.returncode == 0 and argv[1] == "install":
            return None
    tail = ((result.stderr or result.stdout) if result else "").strip().splitlines()[-1:] or ["no output"]
    return f"apt-get install -y {package} failed: {tail[0]}"
