"""examples/: every file loads cleanly with the real readers, each .conf and its .yaml twin
are the same configuration, and examples/README.md lists exactly the files there are."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hakeeper.config import load_config
from hakeeper.config.convert import to_yaml

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FILES = sorted(p for p in EXAMPLES.rglob("*") if p.suffix in (".conf", ".yaml"))
TOP = [p for p in FILES if p.parent == EXAMPLES]
INCLUDED = [p for p in FILES if p.parent != EXAMPLES]  # conf.d/: pulled in by `include`


def rel(p: Path) -> str:
    return str(p.relative_to(EXAMPLES))


@pytest.mark.parametrize("path", FILES, ids=rel)
def test_example_loads_without_errors_or_warnings(path: Path) -> None:
    config = load_config(str(path))  # raises ConfigErrors, each naming FILE:LINE
    assert [str(w) for w in config.warnings] == []
    if path in TOP:
        assert config.vrrp_instances, "an example that runs nothing"
    # says what it is for before anything else
    assert path.read_text().startswith(("!", "#")), f"{rel(path)}: no leading comment"


@pytest.mark.parametrize("conf", [p for p in TOP if p.suffix == ".conf"], ids=rel)
def test_conf_and_yaml_twin_are_the_same_configuration(conf: Path) -> None:
    twin = conf.with_suffix(".yaml")
    assert twin.exists(), f"{conf.name} has no YAML twin"
    from_conf, from_yaml = load_config(str(conf)), load_config(str(twin))
    # compared as converted text first: a difference then reads as a diff of keywords
    assert to_yaml(from_yaml) == to_yaml(from_conf)
    assert from_yaml == from_conf


def test_every_yaml_has_a_conf_twin() -> None:
    for path in TOP:
        if path.suffix == ".yaml":
            assert path.with_suffix(".conf").exists(), path.name


def test_included_files_are_used_by_an_example() -> None:
    texts = "".join(p.read_text() for p in TOP if p.suffix == ".conf")
    for path in INCLUDED:
        assert f"include {path.parent.name}/" in texts, rel(path)


def test_readme_lists_exactly_the_example_files() -> None:
    readme = (EXAMPLES / "README.md").read_text()
    listed = set(re.findall(r"`([\w./-]+\.(?:conf|yaml))`", readme))
    assert listed == {rel(p) for p in FILES}
