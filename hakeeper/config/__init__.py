"""Config readers: keepalived.conf or native YAML into one frozen model (see model.py)."""

from __future__ import annotations

from hakeeper.config.errors import ConfigError, ConfigErrors
from hakeeper.config.keepalived import load_keepalived, parse_keepalived_text
from hakeeper.config.model import Config
from hakeeper.config.yaml_reader import load_yaml, parse_yaml_text

YAML_SUFFIXES = (".yaml", ".yml")


def load_config(path: str) -> Config:
    """Read `path`: YAML for .yaml/.yml, an unchanged keepalived.conf otherwise."""
    if path.lower().endswith(YAML_SUFFIXES):
        return load_yaml(path)
    return load_keepalived(path)


__all__ = [
    "Config",
    "ConfigError",
    "ConfigErrors",
    "load_config",
    "load_keepalived",
    "load_yaml",
    "parse_keepalived_text",
    "parse_yaml_text",
]
