"""The one configuration: precedence, bad values, what results record, README's table."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest

from asgilab import config, images, paths, runtime
from asgilab.commands import settings
from asgilab.errors import LabError
from asgilab.runtime import compose

ROOT = Path(__file__).resolve().parents[1]


# -- precedence ---------------------------------------------------------------------------
def test_default_then_environment_then_flag():
    assert config.build({}).runtime == "auto"
    assert config.build({}).source("runtime") == "default"
    env = {"LAB_RUNTIME": "local"}
    assert config.build(env).runtime == "local"
    assert config.build(env).source("runtime") == "environment"
    flagged = config.build(env, {"runtime": "compose"})
    assert flagged.runtime == "compose" and flagged.source("runtime") == "command line"


def test_empty_variable_counts_as_unset():
    cfg = config.build({"LAB_PORT_BASE": "", "LAB_PLACEMENT": "", "LAB_INSIDE": ""})
    assert cfg.port_base == 18000 and cfg.placement is None and cfg.inside is False
    assert cfg.source("port_base") == "default"


def test_computed_defaults_follow_the_values_before_them():
    cfg = config.build({"LAB_ROOT": "/elsewhere", "PATH": "/bin"})
    assert cfg.state_dir == Path("/elsewhere/.lab") and cfg.reports_dir == Path("/elsewhere/reports")
    assert cfg.tool_path.startswith("/bin:")
    assert config.build({"LAB_ROOT": "/x", "LAB_STATE_DIR": "/s"}).state_dir == Path("/s")


def test_typed_values():
    cfg = config.build({"LAB_PORT_BASE": "19000", "LAB_LOCUST_EXTERNAL_WORKERS": "1", "LAB_INSIDE": "1",
                        "LAB_PLACEMENT": '{"servers cpuset": "1"}', "LAB_CPUSET_LOADGEN": "0-2,4"})
    assert cfg.port_base == 19000 and cfg.locust_external_workers is True and cfg.inside is True
    assert cfg.placement == {"servers cpuset": "1"} and cfg.cpuset_loadgen == "0-2,4"


def test_get_follows_the_environment_and_from_args_wins(monkeypatch):
    monkeypatch.setenv("LAB_RUNTIME", "local")
    assert config.get().runtime == "local"
    assert config.get() is config.get()  # built once while nothing changes
    monkeypatch.setenv("LAB_PORT_BASE", "21000")
    assert config.get().port_base == 21000  # the environment changed: built again
    config.from_args(argparse.Namespace(runtime="compose"))
    assert config.get().runtime == "compose"
    config.from_args(argparse.Namespace(runtime=None))  # a flag left out changes nothing
    assert config.get().runtime == "compose"
    config.reset()
    assert config.get().runtime == "local"


def test_readers_use_the_config(monkeypatch, tmp_path):
    monkeypatch.setenv("LAB_STATE_DIR", str(tmp_path / "s"))
    monkeypatch.setenv("LAB_RUNTIME", "local")
    monkeypatch.setenv("LAB_CPUSET_SERVERS", "3")
    monkeypatch.setenv("LAB_COMPOSE_PROJECT", "other")
    assert paths.state_dir() == tmp_path / "s"
    assert runtime.choose() == "local"
    assert compose.cpusets()["servers"] == "3" and compose.project() == "other"
    assert runtime.base.port_base() == config.get().port_base


# -- bad values ---------------------------------------------------------------------------
@pytest.mark.parametrize("var, raw, why", [
    ("LAB_PORT_BASE", "abc", "is not a number"),
    ("LAB_PORT_BASE", "80", "out of range"),
    ("LAB_PORT_BASE", "70000", "out of range"),
    ("LAB_RUNTIME", "k8s", "unknown runtime"),
    ("LAB_LOCUST_EXTERNAL_WORKERS", "maybe", "not a boolean"),
    ("LAB_LOCUST_MASTER_PORT", "0", "out of range"),
    ("LAB_CPUSET_SERVERS", "last", "not a cpuset"),
    ("LAB_PLACEMENT", "{nope", "not JSON"),
    ("LAB_TOOL_VERSIONS", "[1]", "not a JSON object"),
])
def test_bad_value_is_one_line_naming_the_variable(var, raw, why):
    with pytest.raises(LabError) as exc:
        config.build({var: raw})
    msg = str(exc.value)
    assert msg.startswith(f"{var}={raw!r}") and why in msg and "\n" not in msg


def test_bad_flag_names_the_flag():
    with pytest.raises(LabError, match=r"^--runtime='k8s' unknown runtime"):
        config.build({}, {"runtime": "k8s"})


# -- what results record ------------------------------------------------------------------
def test_record_holds_the_whole_configuration_as_environment_text():
    cfg = config.build({"LAB_RUNTIME": "local", "LAB_CPUSET_SERVERS": "1", "LAB_LOCUST_EXTERNAL_WORKERS": "1",
                        "LAB_CHROMIUM": "/opt/chromium", "LAB_PORT_BASE": "19000"})
    rec = cfg.record()
    assert set(rec) == {o.env for o in config.OPTIONS if not o.internal}
    assert {o.env for o in config.OPTIONS if o.recorded} < set(rec)
    assert rec["LAB_RUNTIME"] == "local" and rec["LAB_CPUSET_SERVERS"] == "1"
    assert rec["LAB_LOCUST_EXTERNAL_WORKERS"] == "1" and rec["LAB_CHROMIUM"] == "/opt/chromium"
    assert rec["LAB_PORT_BASE"] == "19000" and "LAB_STATE_DIR" in rec  # whole
    assert "LAB_INSIDE" not in rec and "LAB_TOOL_VERSIONS" not in rec  # internal plumbing
    json.dumps(rec)
    # Environment text goes back in: a recorded configuration can be replayed.
    assert config.build(rec).record() == rec


def test_every_option_is_declared_once():
    assert len({o.env for o in config.OPTIONS}) == len(config.OPTIONS)
    assert len({o.attr for o in config.OPTIONS}) == len(config.OPTIONS)
    assert all(not (o.internal and o.recorded) for o in config.OPTIONS)


# -- nothing read or set without a declaration --------------------------------------------
SOURCES = [*ROOT.glob("loadgen/asgilab/**/*.py"), *ROOT.glob("servers/app/*.py"),
           ROOT / "loadgen/locustfiles/lab.py", ROOT / "compose.yaml", ROOT / "Makefile",
           *ROOT.glob("**/Dockerfile")]
# Being removed by its own change (workers become a catalog parameter of each server variant).
LEAVING: set[str] = set()


def test_every_lab_variable_in_the_code_is_declared():
    seen: dict[str, set[str]] = {}
    for path in SOURCES:
        if ".venv" in path.parts or ".lab" in path.parts:
            continue
        for name in re.findall(r"\bLAB_[A-Z][A-Z_]*[A-Z]\b", path.read_text()):
            seen.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    undeclared = {n: sorted(w) for n, w in seen.items()
                  if n not in {*config.BY_ENV, *LEAVING} and not n.startswith(config.GENERATED)}
    assert not undeclared, f"declare these in loadgen/asgilab/config.py: {undeclared}"


def test_options_read_elsewhere_are_read_there():
    for o in config.OPTIONS:
        if o.read_by != "asgilab":
            where = ROOT / o.read_by
            text = "".join(p.read_text() for p in ([where] if where.is_file() else where.glob("*.py")))
            assert o.env in text, f"{o.env} is declared as read by {o.read_by}, which does not mention it"


def test_app_default_delay_matches_the_declaration():
    text = (ROOT / "servers/app/labpage.py").read_text()
    default = re.search(r'"LAB_MESSAGE_DELAY", "([\d.]+)"', text).group(1)
    assert float(default) == config.BY_ATTR["message_delay"].default


def test_image_build_variables_are_declared():
    bases = [images.Base(arg, image, image, "official image")
             for arg, image in images.official_bases().items()]
    assert set(images.build_env(bases)) <= set(config.BY_ENV)


# -- README -------------------------------------------------------------------------------
def test_readme_settings_table_is_generated_from_the_declarations():
    table = settings.readme_table((ROOT / "README.md").read_text())
    assert table is not None, f"README.md lost its {settings.BEGIN} / {settings.END} markers"
    assert table == config.markdown(), (
        f"README's settings table differs from loadgen/asgilab/config.py: run `{settings.REGENERATE}`")


def test_table_lists_public_options_only():
    table = config.markdown()
    assert "`LAB_PORT_BASE` | `18000`" in table and "LAB_INSIDE" not in table
    assert all(f"`{o.env}`" in table for o in config.OPTIONS if not o.internal)


def test_splice_replaces_only_between_the_markers():
    text = f"before\n{settings.BEGIN}\nold\n{settings.END}\nafter\n"
    out = settings.splice(text, "| new |\n")
    assert out == f"before\n{settings.BEGIN}\n| new |\n{settings.END}\nafter\n"
    assert settings.readme_table(out) == "| new |\n"
    with pytest.raises(LabError):
        settings.splice("no markers", "x")
