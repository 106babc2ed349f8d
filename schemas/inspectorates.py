"""The five inspectorates, the programmes each owns, and the agencies findings are about."""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType
from typing import Final

__all__ = [
    "JTAI",
    "PROGRAMMES",
    "Agency",
    "Inspectorate",
    "Programme",
    "owner_of",
]


class Inspectorate(StrEnum):
    """An inspectorate that publishes to and reads from Liaison (wire value)."""

    OFSTED = "ofsted"
    CQC = "cqc"
    HMICFRS = "hmicfrs"
    HMI_PROBATION = "hmi_probation"
    HMI_PRISONS = "hmi_prisons"


class Programme(StrEnum):
    """An inspection programme; each owns an inbound queue ``liaison.programme.<value>``."""

    ILACS = "ilacs"
    FOCUSED_VISIT = "focused_visit"
    MONITORING_VISIT = "monitoring_visit"
    CLAS = "clas"
    SAAS = "saas"
    CORE_SERVICE = "core_service"
    PEEL = "peel"
    NCPI = "ncpi"
    YOUTH_JUSTICE = "youth_justice"
    PROBATION_SERVICE = "probation_service"
    CUSTODY = "custody"
    JTAI = "jtai"


JTAI: Final = Programme.JTAI
"""Joint Targeted Area Inspection, run by all inspectorates together (queue ``liaison.jtai``)."""

PROGRAMMES: Final = MappingProxyType(
    {
        Inspectorate.OFSTED: (
            Programme.ILACS,
            Programme.FOCUSED_VISIT,
            Programme.MONITORING_VISIT,
        ),
        Inspectorate.CQC: (Programme.CLAS, Programme.SAAS, Programme.CORE_SERVICE),
        Inspectorate.HMICFRS: (Programme.PEEL, Programme.NCPI),
        Inspectorate.HMI_PROBATION: (Programme.YOUTH_JUSTICE, Programme.PROBATION_SERVICE),
        Inspectorate.HMI_PRISONS: (Programme.CUSTODY,),
    }
)
"""The programmes each inspectorate runs on its own (JTAI is shared and not listed)."""

_OWNER: Final = MappingProxyType(
    {programme: owner for owner, programmes in PROGRAMMES.items() for programme in programmes}
)


def owner_of(programme: Programme) -> Inspectorate | None:
    """The inspectorate that runs ``programme``; ``None`` for the joint JTAI programme."""
    return _OWNER.get(programme)


class Agency(StrEnum):
    """The agency a finding is about (not the inspectorate that found it)."""

    LOCAL_AUTHORITY = "local_authority"
    POLICE = "police"
    HEALTH = "health"
    YOUTH_JUSTICE_SERVICE = "youth_justice_service"
    PROBATION = "probation"
    CUSTODY = "custody"
    EDUCATION = "education"
    MULTI_AGENCY = "multi_agency"
