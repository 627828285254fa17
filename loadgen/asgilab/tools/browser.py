"""Headless Chromium (Debian's ``chromium``) driven by Playwright: one page, one run.

Playwright's own browser download does not work here, so it launches the system's
Chromium by path. Every run gets a fresh browser, so that no connection, cache or
protocol memory (Alt-Svc, HSTS) carries over from one route to the next; the browser is
closed on every exit path, Ctrl-C included.
"""

from __future__ import annotations

import atexit
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

from asgilab import config
from asgilab.errors import LabError

# The real binary first: Debian's /usr/bin/chromium is a shell wrapper that only adds
# flags we set ourselves (and prints shell noise on some machines).
CANDIDATES = ("/usr/lib/chromium/chromium", "chromium", "chromium-browser")
# Quiet, reproducible headless Chromium: no background traffic, no component updates.
BASE_ARGS = (
    "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
    "--disable-extensions", "--disable-default-apps", "--no-default-browser-check",
    # The lab's certificates are made at start-up by its own CA, which Chromium does not know.
    "--ignore-certificate-errors",
)
LAUNCH_TIMEOUT_MS = 30_000

# What the page gives back: the page's own total, and every Resource Timing entry.
COLLECT_JS = """async (timeoutMs) => {
  const timer = new Promise((_, reject) =>
    setTimeout(() => reject(new Error("page did not finish in " + timeoutMs + " ms")), timeoutMs));
  const result = await Promise.race([window.run(), timer]);
  const nav = performance.getEntriesByType("navigation")[0];
  const pick = (e) => ({name: e.name, nextHopProtocol: e.nextHopProtocol, startTime: e.startTime,
    connectStart: e.connectStart, connectEnd: e.connectEnd, secureConnectionStart: e.secureConnectionStart,
    requestStart: e.requestStart, responseStart: e.responseStart, responseEnd: e.responseEnd,
    responseStatus: e.responseStatus ?? null, transferSize: e.transferSize});
  return {result, document: nav ? pick(nav) : null,
          resources: performance.getEntriesByType("resource").map(pick)};
}"""


@dataclass
class PageRun:
    """One page run as the browser saw it. ``error`` is set when the run did not complete."""

    url: str
    args: list[str]
    browser_version: str = ""
    total_ms: float | None = None  # the page's own measure: first fetch to last response
    count: int | None = None  # responses the page parsed as JSON
    document: dict | None = None  # the navigation's Resource Timing entry
    resources: list[dict] = field(default_factory=list)  # Resource Timing, one per fetch
    network: dict[str, dict] = field(default_factory=dict)  # url -> status, protocol, connection (CDP)
    console: list[str] = field(default_factory=list)
    error: str | None = None
    wall_s: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def executable() -> str:
    """Debian's Chromium, or $LAB_CHROMIUM; a LabError says how to get it."""
    wanted = config.get().chromium
    for name in ([wanted] if wanted else CANDIDATES):
        found = name if Path(name).is_file() and os.access(name, os.X_OK) else shutil.which(name)
        if found:
            return found
    raise LabError("chromium not found: install Debian's chromium (`make setup`) or set LAB_CHROMIUM")


def launch_args(client: str, spki: str | None = None) -> list[str]:
    """HTTP/1.1 over TLS needs h2 switched off: Chromium would otherwise pick it by ALPN.
    HTTP/3 is forced on every origin (the only way a first visit goes over QUIC, without an
    Alt-Svc round); Chromium's QUIC ignores --ignore-certificate-errors, so the lab's leaf
    key is trusted by its hash (``spki``)."""
    args = list(BASE_ARGS) + (["--disable-http2"] if client == "h1-tls" else [])
    if client == "h3":
        if not spki:
            raise LabError("HTTP/3 in Chromium needs the hash of the lab certificate's key (spki)")
        args += ["--enable-quic", "--origin-to-force-quic-on=*",
                 f"--ignore-certificate-errors-spki-list={spki}"]
    return args


def spki_sha256(cert: str | Path) -> str:
    """base64(SHA-256(SubjectPublicKeyInfo)) of a PEM certificate, as Chromium's
    --ignore-certificate-errors-spki-list takes it."""
    import base64
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    key = x509.load_pem_x509_certificate(Path(cert).read_bytes()).public_key()
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def playwright_version() -> str:
    try:
        return metadata.version("playwright")
    except metadata.PackageNotFoundError:
        return "not installed"


class Session:
    """One Playwright driver and one Chromium per set of flags, started on first use and
    reused: each page run gets a fresh browser context, which in Chromium has its own
    network state (sockets, connection pools, cache, Alt-Svc, HSTS), so no connection
    carries over from one route to the next. ``close()`` ends every browser it started;
    it is also registered to run at exit."""

    def __init__(self) -> None:
        self._pw = None
        self._browsers: dict[tuple[str, ...], object] = {}
        atexit.register(self.close)

    def browser(self, args: list[str]):
        from playwright.sync_api import sync_playwright

        if self._pw is None:
            self._pw = sync_playwright().start()
        key = tuple(args)
        b = self._browsers.get(key)
        if b is None or not b.is_connected():
            b = self._pw.chromium.launch(executable_path=executable(), args=list(args), headless=True,
                                         timeout=LAUNCH_TIMEOUT_MS)
            self._browsers[key] = b
        return b

    def close(self) -> None:
        from playwright.sync_api import Error as PlaywrightError

        for b in self._browsers.values():
            try:
                b.close()
            except (PlaywrightError, OSError):
                pass  # the driver is gone already (e.g. Ctrl-C reached it first)
        self._browsers.clear()
        if self._pw is not None:
            try:
                self._pw.stop()
            except Exception:  # noqa: BLE001 - stopping a dead driver must not mask the real error
                pass
            self._pw = None


def run_page(url: str, client: str, timeout_s: float, session: Session | None = None,
             spki: str | None = None) -> PageRun:
    """Opens ``url`` in a fresh headless Chromium context, calls the page's ``run()`` and
    collects its total, the Resource Timing entries and, from the DevTools protocol, each
    response's status, protocol and connection id. Bounded by ``timeout_s``. Without a
    session, a browser is started for this run alone and closed again."""
    try:
        from playwright.sync_api import Error as PlaywrightError
    except ImportError as exc:
        raise LabError("playwright is not installed: run `make setup`") from exc
    own = session is None
    session = session or Session()
    out = PageRun(url=url, args=launch_args(client, spki))
    t0 = time.monotonic()
    context = None
    try:
        b = session.browser(out.args)
        out.browser_version = b.version
        context = b.new_context(ignore_https_errors=True)
        page = context.new_page()
        page.on("console", lambda m: out.console.append(f"{m.type}: {m.text}"[:300]))
        page.on("pageerror", lambda e: out.console.append(f"pageerror: {e}"[:300]))
        cdp = context.new_cdp_session(page)
        cdp.on("Network.responseReceived", lambda ev: _on_response(out.network, ev))
        cdp.send("Network.enable")
        page.goto(url, wait_until="load", timeout=timeout_s * 1000)
        left_ms = max(1000.0, (timeout_s - (time.monotonic() - t0)) * 1000)
        got = page.evaluate(COLLECT_JS, left_ms)
        out.total_ms = float(got["result"]["total_ms"])
        out.count = int(got["result"]["count"])
        out.document = got["document"]
        out.resources = got["resources"]
    except PlaywrightError as exc:
        out.error = _first_line(str(exc))
    finally:
        if context is not None:
            try:
                context.close()
            except PlaywrightError:
                pass
        if own:
            session.close()
    out.wall_s = round(time.monotonic() - t0, 3)
    return out


def _on_response(network: dict[str, dict], event: dict) -> None:
    r = event.get("response") or {}
    network[r.get("url", "")] = {
        "status": r.get("status"),
        "protocol": r.get("protocol"),
        "connection_id": r.get("connectionId"),
        "connection_reused": r.get("connectionReused"),
        "remote": f"{r.get('remoteIPAddress', '')}:{r.get('remotePort', '')}",
    }


def _first_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return (lines[0] if lines else "browser error")[:400]


@dataclass
class PageCheck:
    """What a person would see of a page: console errors, and how many elements match
    each selector asked about."""

    url: str
    screenshot: str
    console_errors: list[str] = field(default_factory=list)
    found: dict[str, int] = field(default_factory=dict)
    error: str | None = None


def inspect_page(url: str, screenshot: str | Path, selectors: dict[str, str],
                 viewport: tuple[int, int] = (1440, 900), full_page: bool = False,
                 timeout_s: float = 60.0) -> PageCheck:
    """Opens ``url`` (e.g. the report from disk) in a fresh headless Chromium with no
    network besides what the page itself asks for, counts ``selectors`` and saves a
    screenshot of the first screen (or the whole page)."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    out = PageCheck(url=url, screenshot=str(screenshot))
    with sync_playwright() as pw:
        b = None
        try:
            b = pw.chromium.launch(executable_path=executable(), args=list(BASE_ARGS), headless=True,
                                   timeout=LAUNCH_TIMEOUT_MS)
            page = b.new_page(viewport={"width": viewport[0], "height": viewport[1]})
            page.on("console",
                    lambda m: out.console_errors.append(m.text[:300]) if m.type == "error" else None)
            page.on("pageerror", lambda e: out.console_errors.append(f"pageerror: {e}"[:300]))
            page.on("requestfailed", lambda r: out.console_errors.append(f"request failed: {r.url}"[:300]))
            page.goto(url, wait_until="load", timeout=timeout_s * 1000)
            out.found = {name: page.locator(sel).count() for name, sel in selectors.items()}
            Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=full_page, timeout=timeout_s * 1000)
        except PlaywrightError as exc:
            out.error = _first_line(str(exc))
        finally:
            if b is not None:
                try:
                    b.close()
                except PlaywrightError:
                    pass
    return out
