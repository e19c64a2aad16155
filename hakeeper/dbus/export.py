"""How an object is described on the bus: its interfaces, properties, methods and signals.

A view class lists these once (see hakeeper.dbus.objects); the service dispatches calls by them
and the introspection XML is generated from them, so what the daemon answers and what it says it
answers cannot drift apart. Adding an object kind is one small class.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar
from xml.sax.saxutils import quoteattr

from hakeeper.dbus.names import (
    INTROSPECTABLE_IFACE,
    OBJECT_MANAGER_IFACE,
    PEER_IFACE,
    PROPERTIES_IFACE,
)

NO_CHANGE_SIGNAL = "org.freedesktop.DBus.Property.EmitsChangedSignal"


class CallError(Exception):
    """A call the daemon refuses: `name` is the D-Bus error name, the message says why."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


@dataclass(frozen=True, slots=True)
class Prop:
    """A read-only property; `get(obj)` reads the runtime model (never a copy of it)."""

    name: str
    signature: str
    get: Callable[[Any], Any]
    emits_change: bool = True  # False: changes too often to signal (counters)


@dataclass(frozen=True, slots=True)
class Method:
    """A method; `call(obj, *args)` returns the out value (a tuple for several), or an
    awaitable of it. `control` methods change something: only root may call them."""

    name: str
    call: Callable[..., Any]
    in_args: tuple[tuple[str, str], ...] = ()  # (name, signature)
    out_args: tuple[tuple[str, str], ...] = ()
    control: bool = True
    # returns one big array of structs: marshalled in slices so the loop is never held long
    bulk: bool = False

    @property
    def in_signature(self) -> str:
        return "".join(sig for _, sig in self.in_args)

    @property
    def out_signature(self) -> str:
        return "".join(sig for _, sig in self.out_args)


@dataclass(frozen=True, slots=True)
class Signal:
    name: str
    args: tuple[tuple[str, str], ...] = ()

    @property
    def signature(self) -> str:
        return "".join(sig for _, sig in self.args)


@dataclass(frozen=True)
class Interface:
    name: str
    props: tuple[Prop, ...] = ()
    methods: tuple[Method, ...] = ()
    signals: tuple[Signal, ...] = ()
    prop_by_name: dict[str, Prop] = field(init=False, repr=False, compare=False)
    method_by_name: dict[str, Method] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "prop_by_name", {p.name: p for p in self.props})
        object.__setattr__(self, "method_by_name", {m.name: m for m in self.methods})

    def xml(self, indent: str = "  ") -> str:
        lines = [f"{indent}<interface name={quoteattr(self.name)}>"]
        for m in self.methods:
            lines.append(f"{indent}  <method name={quoteattr(m.name)}>")
            for direction, args in (("in", m.in_args), ("out", m.out_args)):
                for arg, sig in args:
                    lines.append(
                        f"{indent}    <arg name={quoteattr(arg)} type={quoteattr(sig)}"
                        f' direction="{direction}"/>'
                    )
            lines.append(f"{indent}  </method>")
        for s in self.signals:
            lines.append(f"{indent}  <signal name={quoteattr(s.name)}>")
            for arg, sig in s.args:
                lines.append(f"{indent}    <arg name={quoteattr(arg)} type={quoteattr(sig)}/>")
            lines.append(f"{indent}  </signal>")
        for p in self.props:
            head = f"{indent}  <property name={quoteattr(p.name)} type={quoteattr(p.signature)}"
            if p.emits_change:
                lines.append(f'{head} access="read"/>')
            else:
                lines.append(f'{head} access="read">')
                lines.append(f'{indent}    <annotation name="{NO_CHANGE_SIGNAL}" value="false"/>')
                lines.append(f"{indent}  </property>")
        lines.append(f"{indent}</interface>")
        return "\n".join(lines)


# The standard interfaces every object has; the service answers them itself.
_STANDARD_XML = f"""  <interface name="{INTROSPECTABLE_IFACE}">
    <method name="Introspect">
      <arg name="xml_data" type="s" direction="out"/>
    </method>
  </interface>
  <interface name="{PEER_IFACE}">
    <method name="Ping"/>
    <method name="GetMachineId">
      <arg name="machine_uuid" type="s" direction="out"/>
    </method>
  </interface>
  <interface name="{PROPERTIES_IFACE}">
    <method name="Get">
      <arg name="interface_name" type="s" direction="in"/>
      <arg name="property_name" type="s" direction="in"/>
      <arg name="value" type="v" direction="out"/>
    </method>
    <method name="GetAll">
      <arg name="interface_name" type="s" direction="in"/>
      <arg name="props" type="a{{sv}}" direction="out"/>
    </method>
    <method name="Set">
      <arg name="interface_name" type="s" direction="in"/>
      <arg name="property_name" type="s" direction="in"/>
      <arg name="value" type="v" direction="in"/>
    </method>
    <signal name="PropertiesChanged">
      <arg name="interface_name" type="s"/>
      <arg name="changed_properties" type="a{{sv}}"/>
      <arg name="invalidated_properties" type="as"/>
    </signal>
  </interface>"""

_OBJECT_MANAGER_XML = f"""  <interface name="{OBJECT_MANAGER_IFACE}">
    <method name="GetManagedObjects">
      <arg name="objects" type="a{{oa{{sa{{sv}}}}}}" direction="out"/>
    </method>
    <signal name="InterfacesAdded">
      <arg name="object" type="o"/>
      <arg name="interfaces" type="a{{sa{{sv}}}}"/>
    </signal>
    <signal name="InterfacesRemoved">
      <arg name="object" type="o"/>
      <arg name="interfaces" type="as"/>
    </signal>
  </interface>"""

DOCTYPE = (
    '<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"\n'
    ' "http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">'
)


def node_xml(
    interfaces: tuple[Interface, ...], children: list[str], object_manager: bool = False
) -> str:
    """The Introspect answer for a path: its interfaces (with the standard ones) and the
    names of the nodes directly below it."""
    parts = [DOCTYPE, "<node>"]
    if interfaces:
        parts.append(_STANDARD_XML)
        if object_manager:
            parts.append(_OBJECT_MANAGER_XML)
        parts.extend(i.xml() for i in interfaces)
    parts.extend(f"  <node name={quoteattr(c)}/>" for c in children)
    parts.append("</node>")
    return "\n".join(parts) + "\n"


class Exported:
    """One object on the bus. Subclasses set `interfaces` (class level) and `path`."""

    interfaces: ClassVar[tuple[Interface, ...]] = ()
    path: str

    def exists(self) -> bool:
        """False once the model object behind it is gone (a call then gets UnknownObject)."""
        return True

    def iface(self, name: str) -> Interface | None:
        for i in self.interfaces:
            if i.name == name:
                return i
        return None
