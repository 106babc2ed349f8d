"""The JTAI watch deciding as it did before issue 14, by scanning: the oracle that
``test_jtai_oracle.py`` holds the indexed watch to.

Only what the index replaced is written again here, as it was: assessing a concern by a
scan of every concern its area and theme retain, and forgetting by a scan. The rest (the
rule's data, claims, covering, considerations) is the watch's own.
"""

from __future__ import annotations

from collections import Counter

from consumers.jtai import Claimed, Evidence, Forgotten, JtaiWatch, Released
from schemas.inspectorates import Inspectorate
from schemas.jtai import JtaiConsiderationRequested, JtaiTrigger

__all__ = ["ScanningWatch"]


class ScanningWatch(JtaiWatch):
    """``JtaiWatch`` with its two scans back."""

    def _assess(self, stream, concern):  # type: ignore[no-untyped-def]  # noqa: ANN001, ANN202
        t, window = concern.occurred_at, self._window
        urgent = concern.alone is not None
        nearby = [
            c
            for c in stream.concerns.values()
            if t - window < c.occurred_at < t + window and not stream.covers(c.occurred_at)
        ]
        if not urgent and len({c.source for c in nearby}) < self._min_inspectorates:
            return None
        opened: list[Evidence] = sorted(nearby, key=lambda c: (c.occurred_at, c.id))
        if concern.alone is not None:
            return self._raise(concern, concern.alone, self._within(opened, t))
        sources: Counter[Inspectorate] = Counter()
        end = 0
        for i, first in enumerate(opened):
            start = first.occurred_at
            if start > t:
                break
            while end < len(opened) and opened[end].occurred_at < start + window:
                sources[opened[end].source] += 1
                end += 1
            is_new_start = i == 0 or opened[i - 1].occurred_at != start
            if is_new_start and len(sources) >= self._min_inspectorates:
                raised: JtaiConsiderationRequested = self._raise(
                    concern, JtaiTrigger.SEVERAL_INSPECTORATES, opened[i:end]
                )
                return raised
            sources[first.source] -= 1
            if not sources[first.source]:
                del sources[first.source]
        return None

    def _forget(self, stream):  # type: ignore[no-untyped-def]  # noqa: ANN001, ANN202
        if stream.newest is not None:
            horizon = stream.newest - 2 * self._window
            for stale in [i for i, c in stream.concerns.items() if c.occurred_at < horizon]:
                del stream.concerns[stale]
                if stream.log is not None:
                    stream.log.append(Forgotten(stale))
            kept = []
            for start, end in stream.claimed:
                if end > horizon:
                    kept.append((start, end))
                elif stream.log is not None:
                    stream.log.append(Released(Claimed(stream.area, stream.theme, start, end)))
            stream.claimed = kept
            # The index this oracle never reads, kept to what is retained.
            stream.order = [k for k in stream.order if k[1] in stream.concerns]
        if not stream.concerns and not stream.claimed:
            del self._streams[stream.area, stream.theme]
