"""Read hakeeper's native YAML config: keepalived's keywords, laid out as YAML.

The schema mirrors keepalived.conf so a keepalived user can read it at a glance. Named
blocks become mappings keyed by name under a plural key; value blocks become lists whose
items are the lines keepalived would have inside the braces::

    global_defs:
      router_id: lb1
      vrrp_version: 2               # any global_defs keyword
      notification_email: [ops@example.com]
    vrrp_scripts:                   # vrrp_script NAME { ... }
      chk_nginx:
        script: /usr/bin/killall -0 nginx   # one string, keepalived's quoting; or an argv list
        interval: 2
        weight: -20                 # or "-20 reverse"
    vrrp_track_files:               # vrrp_track_file NAME { ... }
      maint: {file: /run/maint, weight: -50}
    vrrp_track_processes:           # vrrp_track_process NAME { ... }
      nginx: {process: nginx, quorum: 1, weight: -20, delay: 2}
    vrrp_instances:                 # vrrp_instance NAME { ... }
      VI_1:
        state: MASTER
        interface: eth0
        virtual_router_id: 51
        priority: 150
        nopreempt: true             # a bare keepalived flag is `true` (or left empty)
        authentication: {auth_type: PASS, auth_pass: secret}
        virtual_ipaddress:          # one list item per keepalived line
          - 198.18.0.100/24 dev eth0 label eth0:1
          - {address: 198.18.0.101/24, dev: eth0}   # or the same as a mapping
        unicast_peer: [198.18.0.2]
        track_script: [chk_nginx, "chk_other weight -10", {name: chk_x, weight: 5}]
        notify_master: /etc/keepalived/notify.sh master
    vrrp_sync_groups:               # vrrp_sync_group NAME { ... }
      VG_1: {group: [VI_1, VI_2]}
    virtual_server_groups:          # virtual_server_group NAME { lines }
      web: ["198.18.0.100 80", "198.18.0.101-105 80", "fwmark 7"]
    virtual_servers:                # keyed by the words after `virtual_server`:
      "198.18.0.100 80":            #   "IP PORT", "IP", "fwmark N" or "group NAME"
        protocol: TCP
        lvs_sched: rr
        lvs_method: NAT
        persistence_timeout:        # a keyword alone: empty, or `true` for a flag
        sorry_server: 198.18.2.1 80
        quorum_up: /usr/local/bin/up.sh   # a command, as notify_* above
        real_servers:               # real_server IP [PORT] { ... }, keyed the same way
          "198.18.1.10 80":
            weight: 2
            HTTP_GET:               # a checker block: a mapping under its keyword,
              url:                  # a list of mappings repeats it (one `url { }` each)
                - {path: /, digest: 9b3a0c85a887a256d6939da88aabd8cd, status_code: 200}
              connect_timeout: 3
            TCP_CHECK: [{connect_port: 8080}, {connect_port: 8081}]   # two of one kind
    SSL: {ca: /etc/ssl/ca.pem}      # the SSL { } block of SSL_GET

A header key whose value is a list of mappings (two virtual servers with the same words and
different protocols, say) repeats the block the same way. A scalar value is split into words
like a keepalived line, so `weight: "-20 reverse"` means `weight -20 reverse`. Values are read
as written (no YAML typing), so `auth_pass: 0123` stays "0123". Errors and warnings carry the
YAML line. Meaning and validation live in build.py and lvs.py, shared with the keepalived.conf
reader.
"""

from __future__ import annotations

import yaml

from hakeeper.config.build import SCRIPT_KEYWORDS, Node, build_config
from hakeeper.config.errors import ConfigError, ConfigErrors
from hakeeper.config.keepalived import QuoteError, split_quoted, split_words
from hakeeper.config.lvs_model import CHECKER_KINDS
from hakeeper.config.model import Config, Origin, Warning_

# plural YAML key -> keepalived's block keyword, for the named blocks
NAMED_BLOCKS = {
    "vrrp_scripts": "vrrp_script",
    "vrrp_track_files": "vrrp_track_file",
    "vrrp_track_processes": "vrrp_track_process",
    "vrrp_instances": "vrrp_instance",
    "vrrp_sync_groups": "vrrp_sync_group",
}
_BOOL_TAG = "tag:yaml.org,2002:bool"
_NULL_TAG = "tag:yaml.org,2002:null"
_TRUE = frozenset({"true", "yes", "on", "y"})
_LINE_HEADS = ("name", "address")  # mapping form of a line: which key starts it
# blocks that may repeat: a list of mappings under the key is one block per item
REPEATED_BLOCKS = CHECKER_KINDS | {"url", "host", "BFD_CHECK"}
# mappings keyed by a block's header words: YAML key -> keepalived keyword
KEYED_BLOCKS = {"virtual_servers": "virtual_server", "real_servers": "real_server"}


class _Bad(Exception):
    def __init__(self, node: yaml.Node, message: str) -> None:
        super().__init__(message)
        self.node = node


class _Reader:
    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.errors: list[ConfigError] = []
        self.warnings: list[Warning_] = []

    def origin(self, node: yaml.Node) -> Origin:
        return Origin(self.filename, node.start_mark.line + 1)

    def _pairs(self, node: yaml.Node) -> list[tuple[str, yaml.Node, Origin]]:
        if not isinstance(node, yaml.MappingNode):
            raise _Bad(node, "expected a mapping")
        seen: set[str] = set()
        out = []
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode):
                raise _Bad(key, "a key must be a plain word")
            if key.value in seen:
                self.warnings.append(
                    Warning_(self.origin(key), f"duplicate key '{key.value}'; the last one wins")
                )
            seen.add(key.value)
            out.append((key.value, value, self.origin(key)))
        return out

    def top(self, doc: yaml.Node | None) -> list[Node]:
        if doc is None or (isinstance(doc, yaml.ScalarNode) and doc.tag == _NULL_TAG):
            return []
        nodes: list[Node] = []
        for key, value, origin in self._pairs(doc):
            try:
                nodes.extend(self._root(key, value, origin))
            except _Bad as e:
                self.errors.append(ConfigError(self.origin(e.node), f"{key}: {e}"))
            except QuoteError as e:
                self.errors.append(ConfigError(origin, f"{key}: {e}"))
        return nodes

    def _root(self, key: str, value: yaml.Node, origin: Origin) -> list[Node]:
        if key == "global_defs":
            return [Node(key, [], origin, self.block(value))]
        if key in NAMED_BLOCKS:
            if isinstance(value, yaml.ScalarNode) and value.tag == _NULL_TAG:
                return []
            return [
                Node(NAMED_BLOCKS[key], [name], where, self.block(body))
                for name, body, where in self._pairs(value)
            ]
        if key in KEYED_BLOCKS:
            return self.keyed(KEYED_BLOCKS[key], value)
        if key == "virtual_server_groups":
            if isinstance(value, yaml.ScalarNode) and value.tag == _NULL_TAG:
                return []
            out = []
            for name, body, where in self._pairs(value):
                try:
                    out.append(Node("virtual_server_group", [name], where, self.lines(body)))
                except _Bad as e:
                    self.errors.append(ConfigError(self.origin(e.node), f"{name}: {e}"))
            return out
        if key == "SSL":
            return [Node(key, [], origin, self.block(value))]
        self.warnings.append(Warning_(origin, f"unknown keyword '{key}'"))
        return []

    def block(self, node: yaml.Node) -> list[Node]:
        """A mapping of keyword -> value, i.e. the inside of a keepalived `{ }` block."""
        if isinstance(node, yaml.ScalarNode) and node.tag == _NULL_TAG:
            return []
        out: list[Node] = []
        for key, value, origin in self._pairs(node):
            try:
                if key in KEYED_BLOCKS:
                    out.extend(self.keyed(KEYED_BLOCKS[key], value))
                elif key in REPEATED_BLOCKS and isinstance(value, yaml.SequenceNode):
                    out.extend(
                        Node(key, [], self.origin(item), self.block(item)) for item in value.value
                    )
                else:
                    out.append(self._keyword(key, value, origin))
            except _Bad as e:
                self.errors.append(ConfigError(self.origin(e.node), f"{key}: {e}"))
            except QuoteError as e:
                self.errors.append(ConfigError(self.origin(value), f"{key}: {e}"))
        return out

    def _keyword(self, key: str, value: yaml.Node, origin: Origin) -> Node:
        if isinstance(value, yaml.MappingNode):
            return Node(key, [], origin, self.block(value))
        if isinstance(value, yaml.SequenceNode):
            if key in SCRIPT_KEYWORDS:  # an argv list, taken as is
                return Node(key, [], origin, argv=tuple(self._scalar(v) for v in value.value))
            return Node(key, [], origin, [self._line(item) for item in value.value])
        assert isinstance(value, yaml.ScalarNode)
        if value.tag == _NULL_TAG:
            return Node(key, [], origin)
        if value.tag == _BOOL_TAG:
            # a keepalived flag: present means on; `false` is passed for the flag to read
            return Node(key, [] if value.value.lower() in _TRUE else ["false"], origin)
        if key in SCRIPT_KEYWORDS:
            return Node(key, [value.value], origin, argv=tuple(split_quoted(value.value, True)))
        return Node(key, split_words(value.value), origin)

    def _scalar(self, node: yaml.Node) -> str:
        if not isinstance(node, yaml.ScalarNode):
            raise _Bad(node, "expected a single value")
        return node.value

    def _line(self, item: yaml.Node) -> Node:
        """One line of a value block: a string, or a mapping {name|address: X, opt: val}."""
        origin = self.origin(item)
        if isinstance(item, yaml.ScalarNode):
            words = split_words(item.value)
        elif isinstance(item, yaml.MappingNode):
            pairs = self._pairs(item)
            pairs.sort(key=lambda p: p[0] not in _LINE_HEADS)  # stable: head key first
            words = []
            for key, value, _ in pairs:
                if isinstance(value, yaml.ScalarNode) and value.tag == _BOOL_TAG:
                    if value.value.lower() in _TRUE:
                        words.append(key)
                    continue
                text = self._scalar(value)
                if key not in _LINE_HEADS:
                    words.append(key)
                words.extend(split_words(text))
        else:
            raise _Bad(item, "expected a line (a string or a mapping)")
        if not words:
            raise _Bad(item, "empty line")
        return Node(words[0], words[1:], origin)

    def keyed(self, keyword: str, node: yaml.Node) -> list[Node]:
        """`HEADER WORDS: {block}` items (a list of blocks repeats the header)."""
        if isinstance(node, yaml.ScalarNode) and node.tag == _NULL_TAG:
            return []
        out = []
        for header, body, origin in self._pairs(node):
            try:
                words = split_words(header)
                if isinstance(body, yaml.SequenceNode):  # one header, several blocks
                    items = [(item, self.origin(item)) for item in body.value]
                else:
                    items = [(body, origin)]
                out.extend(Node(keyword, words, where, self.block(item)) for item, where in items)
            except _Bad as e:
                self.errors.append(ConfigError(self.origin(e.node), f"{header}: {e}"))
            except QuoteError as e:
                self.errors.append(ConfigError(origin, f"{header}: {e}"))
        return out

    def lines(self, node: yaml.Node) -> list[Node]:
        """A value block: a list of lines (one line may stand alone as a string)."""
        if isinstance(node, yaml.ScalarNode) and node.tag == _NULL_TAG:
            return []
        items = node.value if isinstance(node, yaml.SequenceNode) else [node]
        return [self._line(item) for item in items]


def parse_yaml_text(text: str, filename: str = "hakeeper.yaml") -> Config:
    """Parse native YAML config text; raises ConfigErrors listing every problem."""
    reader = _Reader(filename)
    try:
        doc = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else 0
        raise ConfigErrors([ConfigError(Origin(filename, line), str(e.problem))]) from e
    except yaml.YAMLError as e:
        raise ConfigErrors([ConfigError(Origin(filename, 0), str(e))]) from e
    try:
        nodes = reader.top(doc)
    except _Bad as e:
        raise ConfigErrors([ConfigError(reader.origin(e.node), str(e))]) from e
    return build_config(nodes, filename, reader.errors, reader.warnings)


def load_yaml(path: str) -> Config:
    """Read a YAML config file; raises ConfigErrors listing every problem."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigErrors([ConfigError(Origin(path, 0), f"cannot read: {e}")]) from e
    return parse_yaml_text(text, path)
