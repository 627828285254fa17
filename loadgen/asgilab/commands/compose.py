"""images / compose-init / compose-file: the Compose runtime's build step, its in-container
start-up and compose.yaml generated from the catalog."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from asgilab import catalog, certs, composefile, render
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
    p = sub.add_parser("compose-file", help="write compose.yaml from servers/catalog.toml and proxy/ "
                                            "(one service per server variant and proxy)")
    p.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 and show the difference when compose.yaml is stale")
    p.set_defaults(func=cmd_compose_file)


def cmd_images(args: argparse.Namespace) -> int:
    compose.ComposeRuntime().build(offline=True if args.offline else None)
    return 0


def cmd_compose_init(args: argparse.Namespace) -> int:
    rt = compose.ComposeRuntime()
    proxies = catalog.load_proxies()
    services = [*catalog.load_servers(), *proxies]
    tls = certs.ensure(compose.SHARED / "certs", [*services, "localhost", "127.0.0.1"])
    # Only the servers the driver starts (LAB_SERVERS): nginx refuses an upstream host that
    # does not resolve. Ports stay those of the whole catalog.
    selected = [s for s in os.environ.get("LAB_SERVERS", "").split(",") if s]
    topo = rt.topology(catalog.pick(catalog.load_servers(), selected, "server") or None)
    settings = catalog.load_settings()
    for kind in proxies.values():
        # The paths the proxy's command in compose.yaml names (composefile.proxy_files).
        config, workdir = composefile.proxy_files(kind)
        out = Path(config)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(render.render(kind, topo, settings, tls, workdir, "0.0.0.0",
                                     health_port=compose.HEALTH_PORT))
        out.chmod(0o644)
    print(f"compose-init: certificates for {', '.join(services)}; configurations for "
          f"{', '.join(proxies)} to {', '.join(selected) or 'every server'} "
          f"(ports from {topo.ports()[0]})")
    return 0


def cmd_compose_file(args: argparse.Namespace) -> int:
    path = composefile.compose_path()
    if args.check:
        diff = composefile.differences(path, lines=40)
        if diff:
            print("\n".join(diff), file=sys.stderr)
            print(f"{path.name} is stale: run `make compose-file`", file=sys.stderr)
            return 1
        print(f"{path.name} matches the catalog")
        return 0
    changed = composefile.write(path)
    print(f"{path.name} {'written' if changed else 'already matches the catalog'}")
    return 0
