"""images / compose-init: the Compose runtime's build step and its in-container start-up."""

from __future__ import annotations

import argparse

from asgilab import catalog, certs, render
from asgilab.runtime import compose


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("images", help="make the base images (official or offline stand-ins) and "
                                      "build the lab's container images")
    p.add_argument("--offline", action="store_true",
                   help="use offline stand-ins made from Debian packages for every base image")
    p.set_defaults(func=cmd_images)
    p = sub.add_parser("compose-init", help="(inside the init container) make certificates and "
                                            "render the proxies' configurations into the shared volume")
    p.set_defaults(func=cmd_compose_init)


def cmd_images(args: argparse.Namespace) -> int:
    compose.ComposeRuntime().build(offline=True if args.offline else None)
    return 0


def cmd_compose_init(args: argparse.Namespace) -> int:
    rt = compose.ComposeRuntime()
    proxies = catalog.load_proxies()
    services = [*catalog.load_servers(), *proxies]
    tls = certs.ensure(compose.SHARED / "certs", [*services, "localhost", "127.0.0.1"])
    topo = rt.topology()
    settings = catalog.load_settings()
    for name, kind in proxies.items():
        out = compose.SHARED / "config" / name
        out.mkdir(parents=True, exist_ok=True)
        text = render.render(kind, topo, settings, tls, f"/tmp/{name}", "0.0.0.0",
                             health_port=compose.HEALTH_PORT)
        (out / kind.config_name).write_text(text)
        (out / kind.config_name).chmod(0o644)
    (compose.SHARED / "config" / "envoy" / "concurrency").write_text(f"{settings.get('workers', 1)}\n")
    print(f"compose-init: certificates for {', '.join(services)}; configurations for "
          f"{', '.join(proxies)} (ports from {topo.ports()[0]})")
    return 0
