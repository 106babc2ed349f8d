"""Kafka ACLs as code (``deploy/acls.toml``): read, checked, expanded and compared. Pure.

The file names each Kafka principal (a SASL/SCRAM user) and what it may do: the topics it
reads, writes or only describes, the consumer groups it uses and its transactional ids.
Names are Liaison's contract names without the topic prefix; a trailing ``*`` makes a
Kafka PREFIXED pattern. ``load_acls`` refuses the whole file, in one
``ConfigurationError`` that names the file, the principal and the field of every
problem, when anything is wrong: an unknown key, a topic that is not in the contract
(``schemas.topics.Topics``), a group or transactional id no Liaison component uses. A
near miss gets a suggestion, as elsewhere in the CLI.

``AclFile.bindings(prefix)`` expands the file to the ACL bindings Kafka stores (resource
type, name, pattern, ``User:<name>``, host ``*``, operation, ALLOW), and ``diff`` compares
them with what a cluster holds. Only bindings on resources Liaison names are ever
Liaison's to remove (``liaison_scoped``): a topic, group or transactional id whose name
starts with ``<prefix>liaison``. Others' bindings are never touched.

Nothing the file can say grants ALL or any right on the cluster itself: the operations are
READ, WRITE and DESCRIBE, and the resources topics, groups and transactional ids. The
cluster operator (``admin``) is a super user in the brokers' configuration instead.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Final

from schemas.errors import ConfigurationError
from schemas.inspectorates import JTAI, Inspectorate, Programme
from schemas.keys import BUS
from schemas.topics import Topics

__all__ = [
    "HOST",
    "KNOWN_GROUPS",
    "KNOWN_TOPICS",
    "KNOWN_TRANSACTIONAL_IDS",
    "AclBinding",
    "AclDiff",
    "AclFile",
    "Operation",
    "PatternType",
    "Permission",
    "Principal",
    "ResourceType",
    "diff",
    "liaison_scoped",
    "load_acls",
    "parse_acls",
]


class ResourceType(StrEnum):
    """Kafka's ACL resource types (names as Kafka spells them)."""

    UNKNOWN = "UNKNOWN"
    TOPIC = "TOPIC"
    GROUP = "GROUP"
    CLUSTER = "CLUSTER"
    TRANSACTIONAL_ID = "TRANSACTIONAL_ID"
    DELEGATION_TOKEN = "DELEGATION_TOKEN"  # noqa: S105 - a resource type, not a secret
    USER = "USER"


class PatternType(StrEnum):
    """How a binding's resource name matches: exactly, or as a prefix."""

    UNKNOWN = "UNKNOWN"
    LITERAL = "LITERAL"
    PREFIXED = "PREFIXED"


class Operation(StrEnum):
    """Kafka's ACL operations; the file grants only READ, WRITE and DESCRIBE."""

    UNKNOWN = "UNKNOWN"
    ALL = "ALL"
    READ = "READ"
    WRITE = "WRITE"
    CREATE = "CREATE"
    DELETE = "DELETE"
    ALTER = "ALTER"
    DESCRIBE = "DESCRIBE"
    CLUSTER_ACTION = "CLUSTER_ACTION"
    DESCRIBE_CONFIGS = "DESCRIBE_CONFIGS"
    ALTER_CONFIGS = "ALTER_CONFIGS"
    IDEMPOTENT_WRITE = "IDEMPOTENT_WRITE"
    CREATE_TOKENS = "CREATE_TOKENS"
    DESCRIBE_TOKENS = "DESCRIBE_TOKENS"


class Permission(StrEnum):
    """Whether a binding allows or denies."""

    UNKNOWN = "UNKNOWN"
    DENY = "DENY"
    ALLOW = "ALLOW"


HOST: Final = "*"
"""Every binding the file makes applies from any host."""


@dataclass(frozen=True, slots=True, order=True)
class AclBinding:
    """One Kafka ACL: ``principal`` may (or may not) do ``operation`` on the resource."""

    principal: str
    """``User:<name>``."""
    resource_type: ResourceType
    resource_name: str
    pattern: PatternType
    operation: Operation
    host: str = HOST
    permission: Permission = Permission.ALLOW

    @property
    def user(self) -> str:
        """The principal's name without ``User:``."""
        return self.principal.removeprefix("User:")


# -- what Liaison's components name (checked against the code by tests/unit/test_acls.py) --

_OWNERS: Final = (*(i.value for i in Inspectorate), BUS, "demo")
"""Who publishes in transactions (``services.kafka.publisher_transactional_id``)."""

KNOWN_TOPICS: Final = tuple(spec.name for spec in Topics().specs())
"""Every contract topic name (without a prefix)."""

_DELIVERING: Final = (
    *(p.value for p in Programme if p is not JTAI),
    *(f"jtai-{i.value}" for i in Inspectorate),
)

KNOWN_GROUPS: Final = (
    "liaison.router",
    "liaison.key-warden",
    *(f"liaison-deliver-{d}" for d in _DELIVERING),
)
"""Consumer groups Liaison's components use (without a prefix)."""

KNOWN_TRANSACTIONAL_IDS: Final = (
    "liaison.router.*",
    "liaison.key-warden",
    *(f"liaison.deliver.{d}" for d in _DELIVERING),
    *(f"liaison.publisher.{owner}.*" for owner in _OWNERS),
)
"""Transactional ids Liaison's components use; ``*`` ends a family (a random or
per-instance suffix)."""


class _Kind(StrEnum):
    """A grant list of the file: what it grants, on what."""

    READ = "read"
    WRITE = "write"
    DESCRIBE = "describe"
    GROUPS = "groups"
    TRANSACTIONAL_IDS = "transactional_ids"


_GRANTS: Final[Mapping[_Kind, tuple[ResourceType, Operation, str, tuple[str, ...]]]] = {
    _Kind.READ: (ResourceType.TOPIC, Operation.READ, "a Liaison topic", KNOWN_TOPICS),
    _Kind.WRITE: (ResourceType.TOPIC, Operation.WRITE, "a Liaison topic", KNOWN_TOPICS),
    _Kind.DESCRIBE: (ResourceType.TOPIC, Operation.DESCRIBE, "a Liaison topic", KNOWN_TOPICS),
    _Kind.GROUPS: (ResourceType.GROUP, Operation.READ, "a Liaison consumer group", KNOWN_GROUPS),
    _Kind.TRANSACTIONAL_IDS: (
        ResourceType.TRANSACTIONAL_ID,
        Operation.WRITE,
        "a Liaison transactional id",
        KNOWN_TRANSACTIONAL_IDS,
    ),
}

_PRINCIPAL: Final = "principal"
_DESCRIPTION: Final = "description"
_KEYS: Final = (_DESCRIPTION, *(kind.value for kind in _Kind))
_NAME: Final = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_SCOPE: Final = "liaison"
"""Every resource Liaison names starts with this (after the topic prefix)."""
_TOML_POSITION: Final = re.compile(
    r"^(?P<what>.*) \(at line (?P<line>\d+), column (?P<column>\d+)\)$"
)


@dataclass(frozen=True, slots=True)
class Principal:
    """One ``[principal.<name>]`` block: a SASL user and what it may do."""

    name: str
    description: str
    read: tuple[str, ...] = ()
    write: tuple[str, ...] = ()
    describe: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    transactional_ids: tuple[str, ...] = ()

    def grants(self) -> Iterable[tuple[_Kind, str]]:
        """Each (list, name) the block grants."""
        for kind in _Kind:
            for name in getattr(self, kind.value):
                yield kind, name

    def bindings(self, prefix: str = "") -> frozenset[AclBinding]:
        """This principal's ACL bindings with ``prefix`` before every resource name."""
        out = set()
        for kind, name in self.grants():
            resource_type, operation, _, _ = _GRANTS[kind]
            pattern = PatternType.PREFIXED if name.endswith("*") else PatternType.LITERAL
            out.add(
                AclBinding(
                    principal=f"User:{self.name}",
                    resource_type=resource_type,
                    resource_name=prefix + name.removesuffix("*"),
                    pattern=pattern,
                    operation=operation,
                )
            )
        return frozenset(out)


@dataclass(frozen=True, slots=True)
class AclFile:
    """Every principal of the file, in the file's order."""

    source: str
    principals: Mapping[str, Principal] = field(default_factory=dict)

    def bindings(self, prefix: str = "") -> frozenset[AclBinding]:
        """Every ACL binding the file asks for, under topic prefix ``prefix``."""
        return frozenset(b for p in self.principals.values() for b in p.bindings(prefix))


@dataclass(frozen=True, slots=True)
class AclDiff:
    """Desired bindings against a cluster's: what is there, missing, or extra."""

    present: tuple[AclBinding, ...]
    missing: tuple[AclBinding, ...]
    """In the file, not on the cluster: ``acls apply`` adds them."""
    extra: tuple[AclBinding, ...]
    """On Liaison's resources, not in the file: ``acls apply`` removes them."""

    @property
    def drift(self) -> bool:
        """Whether the cluster differs from the file."""
        return bool(self.missing or self.extra)


def liaison_scoped(binding: AclBinding, prefix: str = "") -> bool:
    """Whether ``binding`` is on a resource Liaison names under ``prefix`` (a topic, group
    or transactional id starting ``<prefix>liaison``): only those are Liaison's to remove."""
    return binding.resource_type in {
        ResourceType.TOPIC,
        ResourceType.GROUP,
        ResourceType.TRANSACTIONAL_ID,
    } and binding.resource_name.startswith(prefix + _SCOPE)


def diff(desired: Iterable[AclBinding], actual: Iterable[AclBinding], prefix: str = "") -> AclDiff:
    """Compare the file's bindings with a cluster's (only Liaison's count as extra)."""
    wanted = frozenset(desired)
    found = frozenset(actual)
    return AclDiff(
        present=tuple(sorted(wanted & found)),
        missing=tuple(sorted(wanted - found)),
        extra=tuple(sorted(b for b in found - wanted if liaison_scoped(b, prefix))),
    )


# -- reading the file -----------------------------------------------------------------------


def load_acls(path: Path) -> AclFile:
    """The ACL file at ``path``; one ``ConfigurationError`` listing every problem."""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        problem = "file not found"
    except IsADirectoryError:
        problem = "is a directory, not an ACL file"
    except OSError as exc:
        problem = f"cannot be read ({exc.strerror or exc})"
    except UnicodeDecodeError as exc:
        problem = f"not UTF-8 text (byte {exc.start} cannot be decoded); TOML files are UTF-8"
    else:
        return parse_acls(text, str(path))
    raise ConfigurationError(f"{path}: {problem}")


def parse_acls(text: str, source: str = "acls.toml") -> AclFile:
    """The ACL file whose TOML text is ``text`` (``source`` names it in errors)."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{source}: {_toml_problem(str(exc))}") from None
    problems: list[str] = []
    for key in document:
        if key != _PRINCIPAL:
            hint = _did_you_mean(key, (_PRINCIPAL,)) or "only [principal.<name>] blocks belong here"
            problems.append(f"unknown top-level key {key!r} ({hint})")
    blocks = document.get(_PRINCIPAL)
    principals: dict[str, Principal] = {}
    if not isinstance(blocks, dict) or not blocks:
        problems.append("no principals: add at least one [principal.<name>] block")
    else:
        for name, block in blocks.items():
            principal, found = _principal(name, block)
            problems += found
            if principal is not None:
                principals[name] = principal
    if problems:
        raise ConfigurationError("\n".join(f"{source}: {problem}" for problem in problems))
    return AclFile(source, principals)


def _principal(name: str, block: object) -> tuple[Principal | None, list[str]]:
    where = f"principal {name!r}"
    if not _NAME.match(name):
        return None, [
            f"{where}: not a valid principal name (lowercase letters, digits and '_',"
            " starting with a letter, at most 64 characters)"
        ]
    if not isinstance(block, dict):
        return None, [f"{where}: must be a [principal.{name}] block, not a plain value"]
    problems: list[str] = []
    for key in block:
        if key not in _KEYS:
            hint = _did_you_mean(key, _KEYS) or "expected one of: " + ", ".join(_KEYS)
            problems.append(f"{where}: unknown key {key!r} ({hint})")
    description = block.get(_DESCRIPTION)
    if not isinstance(description, str) or not description.strip():
        problems.append(f"{where}: {_DESCRIPTION} is required (who uses this principal)")
    lists: dict[str, tuple[str, ...]] = {}
    for kind in _Kind:
        names, found = _grant_list(where, kind, block.get(kind.value, []))
        problems += found
        lists[kind.value] = names
    if problems:
        return None, problems
    assert isinstance(description, str)  # noqa: S101 - checked above
    return Principal(name=name, description=description.strip(), **lists), []


def _grant_list(where: str, kind: _Kind, raw: object) -> tuple[tuple[str, ...], list[str]]:
    if not isinstance(raw, list):
        return (), [f'{where}: {kind.value}: must be a list, e.g. {kind.value} = ["..."]']
    problems: list[str] = []
    seen: set[str] = set()
    for number, item in enumerate(raw):
        field_name = f"{where}: {kind.value}.{number}"
        if not isinstance(item, str):
            problems.append(f"{field_name}: must be a string in double quotes, not {item!r}")
            continue
        if item in seen:
            problems.append(f"{field_name}: {item!r} is listed twice")
            continue
        seen.add(item)
        problem = _check_name(kind, item)
        if problem is not None:
            problems.append(f"{field_name}: {problem}")
    return tuple(item for item in raw if isinstance(item, str)), problems


def _check_name(kind: _Kind, name: str) -> str | None:
    """Why ``name`` cannot be granted in list ``kind``, or None."""
    _, _, noun, known = _GRANTS[kind]
    stem = name.removesuffix("*")
    if "*" in stem:
        return f"{name!r}: '*' may only end a name (a PREFIXED pattern)"
    if not stem.startswith(f"{_SCOPE}.") and not stem.startswith(f"{_SCOPE}-"):
        return f"{name!r} is not {noun}: every Liaison name starts 'liaison.'{_hint(name, known)}"
    if _matches(name, known):
        return None
    if name.endswith("*"):
        return f"{name!r} matches no {noun.removeprefix('a ')}{_hint(name, known)}"
    return f"{name!r} is not {noun}{_hint(name, known)}"


def _matches(name: str, known: Sequence[str]) -> bool:
    """Whether ``name`` (a literal or a ``*`` pattern) names some of ``known`` (literals, or
    ``*`` families such as ``liaison.publisher.ofsted.*``)."""
    stem = name.removesuffix("*")
    for entry in known:
        family = entry.removesuffix("*")
        if entry.endswith("*"):
            # A family: a literal inside it, or a pattern inside or around it.
            if name.endswith("*"):
                if family.startswith(stem) or stem.startswith(family):
                    return True
            elif stem.startswith(family) and len(stem) > len(family):
                return True
        elif (name.endswith("*") and entry.startswith(stem)) or entry == name:
            return True
    return False


def _hint(name: str, known: Sequence[str]) -> str:
    candidates = list(dict.fromkeys([*known, *_families(known)]))
    close = difflib.get_close_matches(name, candidates, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _families(known: Sequence[str]) -> list[str]:
    """``liaison.events.*`` for ``liaison.events.ofsted`` and the like: what a prefixed
    grant of a family looks like, for suggestions."""
    return [name.rsplit(".", 1)[0] + ".*" for name in known if name.count(".") >= 2]  # noqa: PLR2004


def _did_you_mean(word: str, known: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(word, list(known), n=1)
    return f"did you mean {close[0]!r}?" if close else None


def _toml_problem(message: str) -> str:
    if found := _TOML_POSITION.match(message):
        return f"not valid TOML (line {found['line']}, column {found['column']}): {found['what']}"
    return f"not valid TOML: {message}"
