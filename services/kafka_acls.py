"""Kafka ACLs on a cluster: describe, create and delete them (``liaison acls``). The I/O.

aiokafka's admin client has no ACL methods, but its protocol has the requests
(``aiokafka.protocol.admin``: DescribeAcls, CreateAcls, DeleteAcls, version 1, which
carries the pattern type). The client is built like every other (``client_options``), so
it connects as the configured principal, which must be allowed to alter the cluster's
ACLs (the ``admin`` super user). What to change is decided by ``services.acls`` (pure);
``apply_acls`` creates what is missing, deletes Liaison's bindings the file does not have
(never a binding on anyone else's resources) and returns both lists.

A cluster in KRaft mode takes ACL changes through its controller and brokers learn them
a moment later, so ``apply_acls`` reads the ACLs back until they match (or a deadline).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import SecurityDisabled, for_code
from aiokafka.protocol.admin import (
    CreateAclsRequest_v1,
    DeleteAclsRequest_v1,
    DescribeAclsRequest_v1,
)
from aiokafka.protocol.api import Request

from schemas.errors import BrokerError
from services.acls import (
    AclBinding,
    AclDiff,
    Operation,
    PatternType,
    Permission,
    ResourceType,
    diff,
)
from services.kafka import admin_client, kafka_refusal, with_retries
from services.settings import Settings

__all__ = ["AclChanges", "acl_drift", "apply_acls", "describe_acls"]

E = TypeVar("E")

# Kafka's wire codes (org.apache.kafka.common.resource / .acl).
_ANY: Final = 1
_RESOURCE: Final = {
    ResourceType.TOPIC: 2,
    ResourceType.GROUP: 3,
    ResourceType.CLUSTER: 4,
    ResourceType.TRANSACTIONAL_ID: 5,
    ResourceType.DELEGATION_TOKEN: 6,
    ResourceType.USER: 7,
}
_PATTERN: Final = {PatternType.LITERAL: 3, PatternType.PREFIXED: 4}
_OPERATION: Final = {
    Operation.ALL: 2,
    Operation.READ: 3,
    Operation.WRITE: 4,
    Operation.CREATE: 5,
    Operation.DELETE: 6,
    Operation.ALTER: 7,
    Operation.DESCRIBE: 8,
    Operation.CLUSTER_ACTION: 9,
    Operation.DESCRIBE_CONFIGS: 10,
    Operation.ALTER_CONFIGS: 11,
    Operation.IDEMPOTENT_WRITE: 12,
    Operation.CREATE_TOKENS: 13,
    Operation.DESCRIBE_TOKENS: 14,
}
_PERMISSION: Final = {Permission.DENY: 2, Permission.ALLOW: 3}

_SETTLE_S: Final = 15.0
"""How long ``apply_acls`` waits for brokers to show the changes it made."""


@dataclass(frozen=True, slots=True)
class AclChanges:
    """What ``apply_acls`` changed."""

    added: tuple[AclBinding, ...]
    removed: tuple[AclBinding, ...]


def _name_of(codes: Mapping[E, int], code: int, unknown: E) -> E:
    for name, value in codes.items():
        if value == code:
            return name
    return unknown


def _wire(binding: AclBinding) -> tuple[int, str, int, str, str, int, int]:
    """A binding as CreateAcls v1 / DeleteAcls v1 (an exact filter) spell it."""
    return (
        _RESOURCE[binding.resource_type],
        binding.resource_name,
        _PATTERN[binding.pattern],
        binding.principal,
        binding.host,
        _OPERATION[binding.operation],
        _PERMISSION[binding.permission],
    )


class _DescribeAll(Request[DescribeAclsRequest_v1]):  # type: ignore[misc] # aiokafka is untyped
    """Every ACL binding of the cluster (a filter matching any)."""

    API_KEY = 29

    def build(self, request_struct_class: type[DescribeAclsRequest_v1]) -> DescribeAclsRequest_v1:
        return request_struct_class(_ANY, None, _ANY, None, None, _ANY, _ANY)


class _Create(Request[CreateAclsRequest_v1]):  # type: ignore[misc] # aiokafka is untyped
    """CreateAcls with many bindings in one request."""

    API_KEY = 30

    def __init__(self, bindings: Sequence[AclBinding]) -> None:
        self._bindings = bindings

    def build(self, request_struct_class: type[CreateAclsRequest_v1]) -> CreateAclsRequest_v1:
        return request_struct_class([_wire(b) for b in self._bindings])


class _Delete(Request[DeleteAclsRequest_v1]):  # type: ignore[misc] # aiokafka is untyped
    """DeleteAcls with one exact filter per binding."""

    API_KEY = 31

    def __init__(self, bindings: Sequence[AclBinding]) -> None:
        self._bindings = bindings

    def build(self, request_struct_class: type[DeleteAclsRequest_v1]) -> DeleteAclsRequest_v1:
        return request_struct_class([_wire(b) for b in self._bindings])


def _check(settings: Settings, code: int, message: str | None, doing: str) -> None:
    """One ``BrokerError`` for an error code in an ACL response."""
    if code == 0:
        return
    error = for_code(code)
    if error is SecurityDisabled:
        raise BrokerError(
            f"could not {doing}: the cluster has no authorizer (SECURITY_DISABLED), so it"
            " keeps no ACLs; point LIAISON_BOOTSTRAP_SERVERS at a secured cluster"
            " (`liaison cluster start`)"
        )
    refused = kafka_refusal(error(message or ""), settings, doing=f"{doing} (it needs ALTER)")
    if refused is not None:
        raise refused
    raise BrokerError(f"could not {doing}: {error.message} {message or ''}".rstrip())


async def _send(admin: AIOKafkaAdminClient, request: Request[Any], what: str) -> Any:  # noqa: ANN401 - aiokafka is untyped
    """Send ``request`` to any broker (it forwards ACL changes to the controller); aiokafka
    has no public ACL API, so this uses the admin client's own request method."""
    return await with_retries(lambda: admin._send_request(request), what)


async def _describe(settings: Settings, admin: AIOKafkaAdminClient) -> frozenset[AclBinding]:
    response = await _send(admin, _DescribeAll(), "could not describe ACLs")
    _check(settings, response.error_code, response.error_message, "describe ACLs")
    found = set()
    for resource_type, name, pattern, acls in response.resources:
        for principal, host, operation, permission in acls:
            found.add(
                AclBinding(
                    principal=principal,
                    resource_type=_name_of(_RESOURCE, resource_type, ResourceType.UNKNOWN),
                    resource_name=name,
                    pattern=_name_of(_PATTERN, pattern, PatternType.UNKNOWN),
                    operation=_name_of(_OPERATION, operation, Operation.UNKNOWN),
                    host=host,
                    permission=_name_of(_PERMISSION, permission, Permission.UNKNOWN),
                )
            )
    return frozenset(found)


async def describe_acls(settings: Settings) -> frozenset[AclBinding]:
    """Every ACL binding the cluster holds."""
    async with admin_client(settings) as admin:
        return await _describe(settings, admin)


async def acl_drift(settings: Settings, desired: Iterable[AclBinding]) -> AclDiff:
    """The cluster's ACLs against ``desired`` (only Liaison's resources count as extra)."""
    return diff(desired, await describe_acls(settings), settings.topic_prefix)


async def apply_acls(settings: Settings, desired: Iterable[AclBinding]) -> AclChanges:
    """Make the ACLs on Liaison's resources exactly ``desired``; return what changed."""
    desired = frozenset(desired)
    async with admin_client(settings) as admin:
        before = diff(desired, await _describe(settings, admin), settings.topic_prefix)
        if before.missing:
            response = await _send(admin, _Create(before.missing), "could not create ACLs")
            for code, message in response.creation_responses:
                _check(settings, code, message, "create ACLs")
        if before.extra:
            response = await _send(admin, _Delete(before.extra), "could not delete ACLs")
            for code, message, _ in response.filter_responses:
                _check(settings, code, message, "delete ACLs")
        if before.drift:
            await _settled(settings, admin, desired)
    return AclChanges(added=before.missing, removed=before.extra)


async def _settled(
    settings: Settings, admin: AIOKafkaAdminClient, desired: frozenset[AclBinding]
) -> None:
    """Wait until the cluster shows ``desired`` (brokers learn ACLs from the controller)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _SETTLE_S
    while diff(desired, await _describe(settings, admin), settings.topic_prefix).drift:
        if loop.time() > deadline:
            raise BrokerError(
                f"the ACLs were changed but the cluster does not show them after {_SETTLE_S:.0f} s"
            )
        await asyncio.sleep(0.2)
