"""The indexed JTAI watch decides exactly as the watch before it, which scanned every
retained concern of an area and theme at each concern (``jtai_oracle.ScanningWatch``): the same
considerations, the same state and the same changes, for any history of findings and
replayed considerations, in any order, with forgetting."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from consumers.jtai import JtaiWatch
from schemas.events import ConcernRaised, Theme
from schemas.inspectorates import PROGRAMMES, Inspectorate
from tests.factories import concern
from tests.unit.jtai_oracle import ScanningWatch

T0 = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
STEP = dt.timedelta(hours=60)

_OP = st.tuples(
    st.sampled_from(["observe", "observe", "observe", "replay", "emit", "drain"]),
    st.sampled_from(list(Inspectorate)),
    st.sampled_from(["E08000025", "E08000025", "E10000016"]),
    st.sampled_from([Theme.NEGLECT, Theme.NEGLECT, Theme.FRONT_DOOR]),
    st.integers(min_value=0, max_value=40),  # steps after T0: many windows, so forgetting
    st.sampled_from([1, 2, 3, 3, 4]),
    st.booleans(),
    st.integers(min_value=0, max_value=3),  # reuse an earlier id (a duplicate) when 0
)


def _finding(i: int, spec: tuple[object, ...]) -> ConcernRaised:
    _, source, area, theme, steps, severity, risk, _ = spec
    assert isinstance(source, Inspectorate)
    return concern(
        id=uuid.UUID(int=i + 1),
        source=source,
        programme=PROGRAMMES[source][0],
        area=area,
        theme=theme,
        occurred_at=T0 + int(str(steps)) * STEP,
        severity=severity,
        immediate_risk=risk and severity != 4,
    )


def _changes(changes: list[object]) -> Counter[str]:
    # As a multiset: the two forget in different orders.
    return Counter(repr(c) for c in changes)


@settings(max_examples=300, deadline=None)
@given(
    ops=st.lists(_OP, min_size=1, max_size=40),
    window_steps=st.integers(min_value=1, max_value=6),
    k=st.integers(min_value=2, max_value=3),
)
def test_the_indexed_watch_decides_as_the_scanning_one(
    ops: list[tuple[object, ...]], window_steps: int, k: int
) -> None:
    window = window_steps * STEP
    new = JtaiWatch(window, k, log_changes=True)
    old = ScanningWatch(window, k, log_changes=True)
    seen: list[ConcernRaised] = []
    raised = []
    for i, spec in enumerate(ops):
        op, reuse = spec[0], spec[-1]
        finding = seen[i % len(seen)] if reuse == 0 and seen else _finding(i, spec)
        seen.append(finding)
        if op == "observe":
            got = new.observe(finding)
            assert got == old.observe(finding)
            if got is not None:
                raised.append(got)
        elif op == "replay":
            new.replay_finding(finding)
            old.replay_finding(finding)
        elif op == "emit" and raised:
            # A consideration replayed (from the JTAI queue), perhaps long after.
            again = raised[i % len(raised)]
            new.replay_emission(again)
            old.replay_emission(again)
        else:
            assert _changes(list(new.drain_changes())) == _changes(list(old.drain_changes()))
        assert new.held() == old.held()
        assert new.retained == old.retained
    assert _changes(list(new.drain_changes())) == _changes(list(old.drain_changes()))
