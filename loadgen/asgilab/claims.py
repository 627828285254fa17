"""Documentation against the lab: what each server's own documentation claims
(loadgen/claims.toml), set beside what the probes and the load cells saw on that server.

A claim never decides a cell (the lab's first law); it is only compared. ``compare`` is pure:
it takes the claims, the feature matrix's rows and the matrix's cells and returns one row per
claimed feature and server, saying whether the lab agrees, differs (with the evidence) or
cannot tell (not probed, another version, n/a).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from asgilab import paths
from asgilab.errors import LabError

CLAIM_KEYS = ("package", "version", "variants", "source", "quote", "supported", "unsupported")
SUPPORTED, UNSUPPORTED = "supported", "unsupported"
# Load cells that test a claim of h2 support: the server's own direct h2 / h2c routes.
LOAD_CHECKED = {"h2-alpn": "h2", "h2c-prior-knowledge": "h2c"}


@dataclass(frozen=True)
class Claim:
    package: str
    version: str
    variants: tuple[str, ...]
    source: str
    quote: str
    supported: tuple[str, ...] = ()
    unsupported: tuple[str, ...] = ()

    def says(self) -> list[tuple[str, str]]:
        return [(f, SUPPORTED) for f in self.supported] + [(f, UNSUPPORTED) for f in self.unsupported]


@dataclass
class Row:
    runtime: str
    server: str
    feature: str
    label: str
    says: str  # supported | unsupported, or "works under load"
    saw: str  # what the lab saw: a feature state, a cell status, or "not probed"
    agrees: bool | None  # None: the lab cannot tell (not probed, n/a, another version)
    evidence: str
    claim: Claim
    cells: list[str] = field(default_factory=list)  # load cells behind the row


def load(path: Path | None = None, feature_ids: set[str] | None = None) -> list[Claim]:
    path = path or paths.LOADGEN_DIR / "claims.toml"
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        return []
    except tomllib.TOMLDecodeError as exc:
        raise LabError(f"{path} is not valid TOML: {exc}") from None
    out = []
    for i, raw in enumerate(data.get("claims", []), 1):
        unknown = sorted(set(raw) - set(CLAIM_KEYS))
        missing = [k for k in ("package", "version", "variants", "source", "quote") if k not in raw]
        if unknown or missing:
            raise LabError(f"{path.name}: claim {i}: " + (f"unknown key(s) {', '.join(unknown)}" if unknown
                                                            else f"missing {', '.join(missing)}"))
        claim = Claim(raw["package"], str(raw["version"]), tuple(raw["variants"]), raw["source"],
                      raw["quote"], tuple(raw.get("supported", ())), tuple(raw.get("unsupported", ())))
        bad = [f for f, _ in claim.says() if feature_ids is not None and f not in feature_ids]
        if bad:
            raise LabError(f"{path.name}: claim {i} ({claim.package}): unknown feature(s) {', '.join(bad)}")
        out.append(claim)
    return out


def compare(claims: list[Claim], feature_rows: list[dict], cells: list[dict]) -> list[Row]:
    """Every claimed feature of every claimed variant, per runtime the lab measured it on."""
    direct = {(r["runtime"], r["server"], r["feature"]): r for r in feature_rows if r["path"] == "direct"}
    runtimes = sorted({r["runtime"] for r in feature_rows} | {c["runtime"] for c in cells})
    out: list[Row] = []
    for claim in claims:
        for server in claim.variants:
            for rt in runtimes:
                if not any(k[0] == rt and k[1] == server for k in direct):
                    continue  # the feature matrix has not been run on it here
                for feature, says in claim.says():
                    row = direct.get((rt, server, feature))
                    if row is None:
                        out.append(Row(rt, server, feature, feature, says, "not probed", None,
                                       "no probe result on this runtime", claim))
                        continue
                    out.append(_feature_row(rt, server, feature, says, row, claim))
                    if says == SUPPORTED and feature in LOAD_CHECKED:
                        out += _load_rows(rt, server, feature, LOAD_CHECKED[feature], cells, claim, row)
    return out


def _feature_row(rt: str, server: str, feature: str, says: str, row: dict, claim: Claim) -> Row:
    version = (row.get("versions") or {}).get(claim.package)
    label = row.get("label") or feature
    if version and version != claim.version:
        return Row(rt, server, feature, label, says, "another version", None,
                   f"the claim is about {claim.package} {claim.version}; {server} reported {version}", claim)
    state = row["state"]
    agrees = None if state in ("n/a", "broken") else (state == says)
    return Row(rt, server, feature, label, says, state, agrees, row.get("summary", ""), claim)


def _load_rows(rt: str, server: str, feature: str, client: str, cells: list[dict], claim: Claim,
               feature_row: dict) -> list[Row]:
    """A claim of h2 support meets the load cells on the server's own h2 route: a probe that
    passed and a load that failed is the documentation's claim half-kept."""
    mine = [c for c in cells if c["runtime"] == rt and c["route"]["server"] == server
            and c["route"]["path"] == "direct" and c["route"]["client"] == client
            and c["scenario"]["kind"] in ("load", "locust")]
    if not mine or feature_row["state"] != SUPPORTED:
        return []
    failed = [c for c in mine if c["status"] == "failed"]
    label = f"{feature_row.get('label') or feature} under load"
    if failed:
        worst = failed[0]
        return [Row(rt, server, feature, label, "works under load", "failed", False,
                    f"{len(failed)} of {len(mine)} load cells failed; "
                    f"{worst['scenario']['id']}: {worst['reason']}",
                    claim, [c["cell_id"] for c in failed])]
    ok = [c for c in mine if c["status"] == "ok"]
    if not ok:
        return []
    return [Row(rt, server, feature, label, "works under load", "ok", True,
                f"{len(ok)} of {len(mine)} load cells verified", claim, [c["cell_id"] for c in ok])]
