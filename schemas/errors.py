"""Liaison's error tree.

Every error Liaison raises on purpose derives from ``LiaisonError``::

    LiaisonError
    ├── SchemaError (ValueError)          input does not meet the event contract
    │   ├── QuarantineRecordError         a record on liaison.quarantine cannot be read
    │   └── DuplicateKeyError             a JSON object repeats a key (readers would differ)
    ├── EnvelopeError (ValueError)        a record cannot be opened; ``reason`` says why
    │   └── SignatureError                signature, key id, key validity or key owner
    ├── ConfigurationError (ValueError)   settings, rules or deploy files are wrong
    ├── RedriveError                      a quarantined record is not (or not yet) redriven
    ├── CheckpointError (ValueError)      a signed checkpoint does not parse or verify
    │                                     (schemas.checkpoint)
    ├── ProofError (ValueError)           a Merkle proof does not verify (schemas.merkle)
    ├── AuditStoreError                   the audit store cannot be opened or read
    │                                     (services.audit_store)
    ├── KeyChangeError (ValueError)       a key change is under-signed, stale or refused
    │                                     by the trust root's rules (schemas.trust_root)
    ├── AnalystError                      an operator's change to the analysts' registry
    │                                     cannot be made (services.reader.analysts)
    ├── ReaderError                       a read through the reader service failed
    │                                     (services.reader.client; ``status``: HTTP)
    ├── AuditUnavailableError             the audit log did not take the record of what an
    │                                     analyst would be shown, so nothing is shown
    │                                     (services.reader.shown; retriable)
    ├── InboxError                        a finding is not in the programme's inbox, or the
    │                                     inbox is asked for as the wrong inspectorate
    │                                     (services.inbox)
    ├── ConsiderationNotFoundError        no verified JTAI consideration has that id
    │   (LookupError)                     (services.jtai_desk)
    └── BrokerError                       the message log cannot be reached or used
        └── LocalBrokerError              the local development broker failed to start/stop

``retriable`` says whether trying the same thing again later can help (as aiokafka's
``KafkaError`` does).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "BrokerError",
    "ConfigurationError",
    "DuplicateKeyError",
    "EnvelopeError",
    "LiaisonError",
    "LocalBrokerError",
    "Problem",
    "QuarantineRecordError",
    "RedriveError",
    "SchemaError",
    "SignatureError",
]


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an input: where (a dotted field path) and why, in plain English."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason


class LiaisonError(Exception):
    """Root of every error Liaison raises on purpose."""

    retriable: bool = False


class SchemaError(LiaisonError, ValueError):
    """Input does not meet the event contract; retrying the same input cannot help.

    ``problems`` lists every problem found, each with its field path, so a user can fix
    them all at once; the message joins them.
    """

    def __init__(self, message: str, problems: Iterable[Problem] = ()) -> None:
        self.problems = tuple(problems) or (Problem("", message),)
        super().__init__(message)


class DuplicateKeyError(SchemaError):
    """A JSON object repeats a key: readers disagree on which one wins, so none is taken."""


class QuarantineRecordError(SchemaError):
    """A record on ``liaison.quarantine`` is not a quarantine record (anyone able to write
    there could have put anything); readers list it as unreadable and carry on."""


class EnvelopeError(LiaisonError, ValueError):
    """A record cannot be opened; ``reason`` is a stable code (see ``schemas.envelope``).

    The message says what is wrong in plain English and never repeats event content.
    """

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(f"{reason}: {message}")


class SignatureError(EnvelopeError):
    """The signature does not verify, or its key is unknown, not valid then, or not the
    publisher's own."""


class ConfigurationError(LiaisonError, ValueError):
    """A setting, rule file or deploy file is wrong; fix it and start again."""


class RedriveError(LiaisonError):
    """A quarantined record is not redriven: not found, unreadable, already redriven, still
    refused, or not from the events topic of the inspectorate that signed it."""


class BrokerError(LiaisonError):
    """The message log cannot be reached or refused an operation."""

    retriable = True


class LocalBrokerError(BrokerError):
    """The local development broker could not be fetched, started or stopped."""

    retriable = False
