"""Re-captures the real Locust outputs the parser tests read (run by hand, not by pytest).

Needs a running local lab with granian, uvicorn and nginx, e.g.
  LAB_PORT_BASE=22000 LAB_RUNTIME=local python -m asgilab up --servers granian,uvicorn --proxies nginx
then, from loadgen/:  LAB_PORT_BASE=22000 ../.venv/bin/python ../tests/data/locust/capture.py
Each case keeps Locust's out.json, out_stats.csv, out_failures.csv and the locustfile's
out.lab.json, plus the command line and the run's log.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from asgilab.runtime.base import port_base
from asgilab.tools import locust

HERE = Path(__file__).parent
BASE = port_base()
GRANIAN_CLEAR, GRANIAN_TLS, UVICORN_CLEAR, UVICORN_TLS = BASE + 6, BASE + 7, BASE + 2, BASE + 3

CASES = {
    # name: (host, protocol, user class, path, workers, extra plan fields)
    "api-h1-granian": (f"http://127.0.0.1:{GRANIAN_CLEAR}", "h1", "ApiUser", "/query", 0, {}),
    "api-h2-granian-2workers": (f"https://127.0.0.1:{GRANIAN_TLS}", "h2", "ApiUserH2", "/query", 2, {}),
    "page-h2c-granian": (f"http://127.0.0.1:{GRANIAN_CLEAR}", "h2c", "PageUserH2", "/query", 0,
                         {"delay": 0.2, "think": 0.2, "users": 2, "duration": 2.0}),
    "page-h1-granian": (f"http://127.0.0.1:{GRANIAN_CLEAR}", "h1", "PageUser", "/query", 0,
                        {"delay": 0.2, "think": 0.2, "users": 2, "duration": 2.0}),
    "api-h2-uvicorn-alpn-http11": (f"https://127.0.0.1:{UVICORN_TLS}", "h2", "ApiUserH2", "/query", 0, {}),
    "api-h2c-uvicorn-no-h2c": (f"http://127.0.0.1:{UVICORN_CLEAR}", "h2c", "ApiUserH2", "/query", 0, {}),
    "api-h1-granian-404": (f"http://127.0.0.1:{GRANIAN_CLEAR}", "h1", "ApiUser", "/nope", 0, {}),
}
FILES = ("out.json", "out.lab.json", "out_stats.csv", "out_failures.csv")


def main() -> None:
    for name, (host, protocol, cls, path, workers, extra) in CASES.items():
        with tempfile.TemporaryDirectory() as tmp:
            fields = {"users": 4, "spawn_rate": 4.0, "warmup": 0.5, "duration": 1.5, **extra}
            plan = locust.Plan(host=host, protocol=protocol, user_classes=(cls,), path=path,
                               out_prefix=f"{tmp}/out", workers=workers,
                               master_port=locust.master_port(BASE), **fields)
            ran = locust.run(plan, Path(tmp))
            out = HERE / name
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            for f in FILES:
                if Path(tmp, f).exists():
                    shutil.copy(Path(tmp, f), out / f)
            (out / "command.json").write_text(json.dumps(
                {"main": ran.argv, "worker": locust.worker_argv(plan) if workers else None}, indent=2))
            (out / "output.log").write_text(ran.output[-6000:])
            print(name, ran.returncode, sorted(p.name for p in out.iterdir()))


if __name__ == "__main__":
    main()
