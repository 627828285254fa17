"""Where the lab's files are. LAB_ROOT, LAB_STATE_DIR and LAB_REPORTS_DIR (asgilab.config)
let tests and Compose relocate them."""

from __future__ import annotations

from pathlib import Path

from asgilab import config

ROOT = config.root()
SERVERS_DIR = ROOT / "servers"
APP_DIR = SERVERS_DIR / "app"
PROXY_DIR = ROOT / "proxy"
LOADGEN_DIR = ROOT / "loadgen"


def state_dir() -> Path:
    """Run-time state (pids, logs, rendered configs, certificates); never committed."""
    return config.get().state_dir


def reports_dir() -> Path:
    return config.get().reports_dir
