"""Where the lab's files are. Environment variables let tests and Compose relocate state."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(os.environ.get("LAB_ROOT", Path(__file__).resolve().parents[2]))
SERVERS_DIR = ROOT / "servers"
APP_DIR = SERVERS_DIR / "app"
PROXY_DIR = ROOT / "proxy"
LOADGEN_DIR = ROOT / "loadgen"


def state_dir() -> Path:
    """Run-time state (pids, logs, rendered configs, certificates); never committed."""
    return Path(os.environ.get("LAB_STATE_DIR", ROOT / ".lab"))


def reports_dir() -> Path:
    return Path(os.environ.get("LAB_REPORTS_DIR", ROOT / "reports"))
