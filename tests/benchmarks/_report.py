"""The pipeline benchmark's output: a table on stdout, JSON and a PNG chart.

Floors are derived here from what was measured: the router's is one verify plus the
records it consumed and produced per event at aiokafka's own cost each (transactional
producing, as the router's); ``liaison publish``'s is one seal plus one transactional
produce; the peer's is one verify plus its records at the idempotent producer's cost.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, Final

from services.local_broker import LocalBroker
from services.settings import Settings

__all__ = ["machine", "report", "versions"]

_TARGET_CPU: Final = 1.5
_TARGET_P99_MS: Final = {"200": 50.0, "1000": 250.0}
_TARGET_SCALE: Final = 1.6
_BUSY_CORES: Final = 0.25
"""Other processes using more than this many cores meanwhile make rates unrepresentative."""
_PACKAGES: Final = ("aiokafka", "faststream", "cryptography", "pydantic", "matplotlib")


def _say(text: str) -> None:
    print(text)  # noqa: T201


def machine() -> dict[str, Any]:
    """CPU model and core count."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "arch": platform.machine(),
            "kernel": platform.release()}  # fmt: skip


def _kafka_version() -> str:
    """The Kafka version of the local broker's jars (``kafka_<scala>-<version>.jar``)."""
    broker = LocalBroker(Settings())
    jars = sorted(broker.libs.glob("kafka_*.jar"))
    if jars:
        return jars[0].stem.split("-", 1)[1]
    return f"{broker.kafka_version} (pinned in the pom; jars not found)"


def versions() -> dict[str, str]:
    """Python, the libraries that do the work, and Kafka."""
    found = {"python": platform.python_version(), "kafka": _kafka_version()}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


# -- figures ------------------------------------------------------------------------------


def _get(results: Mapping[str, Any], *path: str) -> Any:
    node: Any = results
    for step in path:
        if not isinstance(node, Mapping) or step not in node:
            return None
        node = node[step]
    return node


def _num(value: Any) -> float | None:
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def derive(results: Mapping[str, Any]) -> dict[str, Any]:
    """Floors and ratios from the measured figures (``None`` where a part failed)."""
    verify = _num(_get(results, "floors", "verify_us"))
    seal = _num(_get(results, "floors", "seal_us"))
    sign = _num(_get(results, "floors", "sign_us"))
    txn = _num(_get(results, "aiokafka", "produce_transactional_us"))
    idem = _num(_get(results, "aiokafka", "produce_idempotent_us"))
    consume = _num(_get(results, "aiokafka", "consume_us"))
    c_txn = _num(_get(results, "aiokafka", "confluent_produce_transactional_us"))
    c_consume = _num(_get(results, "aiokafka", "confluent_consume_us"))
    derived: dict[str, Any] = {}
    for load in ("spread", "hot_spot"):
        routed = _get(results, f"route {load}") or {}
        produced = _num(routed.get("produced_per_event"))
        cpu = _num(routed.get("cpu_per_event_us"))
        floor = None
        if None not in (verify, consume, txn, produced):
            floor = verify + routed["consumed_per_event"] * consume + produced * txn  # type: ignore[operator]
        signed = _num(routed.get("signed_per_event"))
        design = floor + signed * sign if None not in (floor, signed, sign) else None  # type: ignore[operator]
        # What the router would spend if its Kafka client cost what librdkafka does: its
        # CPU less the difference per record consumed and produced (a projection).
        c_cpu = None
        if (
            cpu is not None
            and produced is not None
            and txn is not None
            and consume is not None
            and c_txn is not None
            and c_consume is not None
        ):
            c_cpu = (
                cpu
                - routed["consumed_per_event"] * (consume - c_consume)
                - produced * (txn - c_txn)
            )
        derived[f"router {load}"] = {
            "c_client_cpu_us": c_cpu,
            "c_client_ratio": c_cpu / floor if c_cpu is not None and floor else None,
            "cpu_us": cpu,
            "floor_us": floor,
            "with_signatures_us": design,
            "with_signatures_ratio": cpu / design if cpu is not None and design else None,
            "ratio": cpu / floor if cpu is not None and floor else None,
            "verify_ratio": cpu / verify if cpu is not None and verify else None,
        }
        published = _num(_get(results, f"publish {load}", "cpu_per_event_us"))
        publish_floor = seal + txn if seal is not None and txn is not None else None
        publish_design = (
            publish_floor + sign + txn if None not in (publish_floor, sign, txn) else None  # type: ignore[operator]
        )
        derived[f"publish {load}"] = {
            "cpu_us": published,
            "floor_us": publish_floor,
            "with_signatures_us": publish_design,
            "with_signatures_ratio": (
                published / publish_design if published is not None and publish_design else None
            ),
            "ratio": published / publish_floor if published is not None and publish_floor else None,
        }
    peer = _get(results, "peer spread") or {}
    peer_cpu = _num(peer.get("cpu_per_event_us"))
    peer_floor = None
    if None not in (verify, consume, idem) and _num(peer.get("produced_per_event")) is not None:
        peer_floor = verify + consume + peer["produced_per_event"] * idem  # type: ignore[operator]
    derived["peer spread"] = {
        "cpu_us": peer_cpu,
        "floor_us": peer_floor,
        "ratio": peer_cpu / peer_floor if peer_cpu is not None and peer_floor else None,
    }
    for wide in SCALE_VARIANTS:
        one = _num(_get(results, f"scale-out 1{wide}", "events_per_s"))
        two = _num(_get(results, f"scale-out 2{wide}", "events_per_s"))
        one_steady = _num(_get(results, f"scale-out 1{wide}", "steady_events_per_s"))
        two_steady = _num(_get(results, f"scale-out 2{wide}", "steady_events_per_s"))
        derived[f"scale-out{wide}"] = {
            "ratio": two / one if one and two else None,
            "steady_ratio": two_steady / one_steady if one_steady and two_steady else None,
        }
    return derived


# -- the table ------------------------------------------------------------------------------


def _us(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f} us"


def _times(value: float | None, what: str = "floor") -> str:
    return "" if value is None else f" = {value:.1f}x {what}"


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}/s"


def _row(cells: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))


def table(results: Mapping[str, Any], derived: Mapping[str, Any]) -> list[list[str]]:
    """Rows of the main table: figure, spread, hot spot, target."""
    header = ["figure", "spread (20 areas x 6 themes)", "hot spot (1 area, 1 theme)", "target"]
    rows: list[list[str]] = [header]
    floors = results.get("floors", {})
    kafka = results.get("aiokafka", {})
    rows += [
        ["one Ed25519 verify (cryptography alone)", _us(_num(floors.get("verify_us"))), "", ""],
        ["one seal (schemas.envelope.seal)", _us(_num(floors.get("seal_us"))), "", ""],
        ["one Ed25519 sign (cryptography alone)", _us(_num(floors.get("sign_us"))), "", ""],
        ["aiokafka produce / record, idempotent",
         _us(_num(kafka.get("produce_idempotent_us"))), "", ""],
        ["aiokafka produce / record, transactional",
         _us(_num(kafka.get("produce_transactional_us"))), "", ""],
        ["aiokafka consume / record, read committed", _us(_num(kafka.get("consume_us"))), "", ""],
    ]  # fmt: skip
    if "confluent_produce_transactional_us" in kafka:
        rows += [
            ["confluent-kafka (C core) produce / record, txn",
             _us(_num(kafka.get("confluent_produce_transactional_us"))), "", "for comparison"],
            ["confluent-kafka (C core) consume / record",
             _us(_num(kafka.get("confluent_consume_us"))), "", "for comparison"],
        ]  # fmt: skip

    consumed = ["router records consumed / produced per event"]
    for load in ("spread", "hot_spot"):
        routed = results.get(f"route {load}", {})
        per = _num(routed.get("produced_per_event"))
        consumed.append("n/a" if per is None else f"{routed['consumed_per_event']:.0f} / {per:.2f}")
    rows.append([*consumed, ""])
    floor_row = ["router floor per event"]
    design_row = ["router floor + its own signatures"]
    publish_design_row = ["publish floor + its audit record (sign, produce)"]
    cpu_row = ["router CPU per routed event"]
    c_row = ["router CPU with a C-core client (projected)"]
    rate_row = ["router events/s (state loaded to all on feed)"]
    broker_row = ["broker CPU per routed event (whole JVM)"]
    publish_row = ["liaison publish CPU per event (marginal)"]
    for load in ("spread", "hot_spot"):
        d = derived[f"router {load}"]
        floor_row.append(_us(d["floor_us"]))
        signed = _num(results.get(f"route {load}", {}).get("signed_per_event"))
        design_row.append(
            _us(d["with_signatures_us"])
            + ("" if signed is None else f" ({signed:.2f} signed/event)")
            + ("" if d["with_signatures_ratio"] is None else
               f"; CPU = {d['with_signatures_ratio']:.1f}x it")
        )  # fmt: skip
        verify = d["verify_ratio"]
        extra = "" if verify is None else f" ({verify:.1f}x verify)"
        cpu_row.append(_us(d["cpu_us"]) + _times(d["ratio"]) + extra)
        c_row.append(_us(d["c_client_cpu_us"]) + _times(d["c_client_ratio"]))
        routed = results.get(f"route {load}", {})
        rate_row.append(_rate(_num(routed.get("events_per_s"))))
        broker = _num(_get(routed, "others_cpu_s", "broker"))
        events = routed.get("events")
        broker_row.append(_us(broker / events * 1e6) if broker is not None and events else "n/a")
        p = derived[f"publish {load}"]
        publish_row.append(_us(p["cpu_us"]) + _times(p["ratio"]))
        publish_design_row.append(
            _us(p["with_signatures_us"])
            + ("" if p["with_signatures_ratio"] is None else
               f"; CPU = {p['with_signatures_ratio']:.1f}x it")
        )  # fmt: skip
    rows += [
        [*floor_row, "verify + consumed x consume + produced x produce"],
        [*design_row, "+ audit records and route attestations x sign"],
        [*cpu_row, f"<= {_TARGET_CPU}x floor"],
        *(
            [[*c_row, "CPU less (aiokafka - librdkafka) x records"]]
            if "confluent_produce_transactional_us" in kafka
            else []
        ),
        [*rate_row, ""],
        [*broker_row, ""],
        [*publish_row, f"<= {_TARGET_CPU}x (seal + produce)"],
        [*publish_design_row, "seal + sign + 2 x produce"],
    ]
    peer = derived["peer spread"]
    peer_results = results.get("peer spread", {})
    rows.append(
        [
            "peer (faststream alone) CPU per event",
            _us(peer["cpu_us"]) + _times(peer["ratio"], "its floor")
            + (f", {_rate(_num(peer_results.get('events_per_s')))}" if peer_results else ""),
            "",
            "its floor: verify + consume + forwards x produce",
        ]
    )  # fmt: skip
    return rows


def latency_rows(results: Mapping[str, Any]) -> list[list[str]]:
    """Rows of the latency table."""
    rows = [["latency (events append -> feed append)", "p50", "p99", "max", "exactly once",
             "router CPU / event (busy)", "target p99"]]  # fmt: skip
    for rate, measured in (results.get("latency") or {}).items():
        if not isinstance(measured, Mapping):
            continue
        label = f"{rate}/s for {measured.get('seconds', 0):g} s"
        if "error" in measured:
            rows.append([label, "failed", "", "", "", "", measured["error"][:60]])
            continue
        once = "yes" if measured["exactly_once"] else (
            f"no: {measured['on_feed']} of {measured['published']}, "
            f"{measured['duplicates']} duplicates"
        )  # fmt: skip
        target = _TARGET_P99_MS.get(rate)
        rows.append([label, f"{measured['p50_ms']:,.0f} ms", f"{measured['p99_ms']:,.0f} ms",
                     f"{measured['max_ms']:,.0f} ms", once,
                     f"{_us(measured['router_cpu_per_event_us'])} ({measured['router_busy']:.0%})",
                     "" if target is None else f"< {target:.0f} ms"])  # fmt: skip
    return rows


def scale_rows(results: Mapping[str, Any], derived: Mapping[str, Any]) -> list[list[str]]:
    """Rows of the scale-out table, with how the cores were shared."""
    rows = [["routers", "events/s first to last routed", "after the last rebalance",
             "CPU seconds used over the run (2 cores)"]]  # fmt: skip
    for wide in SCALE_VARIANTS:
        rows += _scale_rows(results, derived, wide)
    return rows


def _scale_rows(
    results: Mapping[str, Any], derived: Mapping[str, Any], wide: str
) -> list[list[str]]:
    rows: list[list[str]] = []
    for routers in (1, 2):
        measured = results.get(f"scale-out {routers}{wide}")
        if not isinstance(measured, Mapping):
            continue
        if "error" in measured:
            rows.append([f"{routers}{wide}", "failed", measured["error"][:60], ""])
            continue
        used = measured["cpu_s"]
        shares = ", ".join(
            f"{name} {value:.1f}"
            for name, value in used.items()
            if name not in {"machine", "others_cores"}
        )
        steady = _num(measured.get("steady_events_per_s"))
        rows.append([
            f"{routers}{wide}",
            _rate(_num(measured["events_per_s"])),
            _rate(steady),
            f"{shares}; wall {measured['wall_s']:.1f} s",
        ])  # fmt: skip
    if not rows:
        return rows
    ratio = derived[f"scale-out{wide}"]["ratio"]
    steady_ratio = derived[f"scale-out{wide}"]["steady_ratio"]
    rows.append([
        f"2 vs 1{wide}",
        "n/a" if ratio is None else f"{ratio:.2f}x",
        "n/a" if steady_ratio is None else f"{steady_ratio:.2f}x",
        f"target >= {_TARGET_SCALE}x when the cores allow",
    ])  # fmt: skip
    return rows


SCALE_VARIANTS: Final = ("", " (6 partitions)")
"""The scale-out phases' suffixes: the contract's 3 partitions, and a run on 6."""


def _others(results: Mapping[str, Any]) -> dict[str, float]:
    """Per measured phase, the cores other processes used on average meanwhile."""
    found: dict[str, float] = {}
    phases: list[tuple[str, Any]] = list(results.items())
    phases += [(f"latency {k}", v) for k, v in (results.get("latency") or {}).items()]
    for name, value in phases:
        if not isinstance(value, Mapping):
            continue
        used = value.get("others_cpu_s") or value.get("cpu_s")
        cores = _num(used.get("others_cores")) if isinstance(used, Mapping) else None
        if cores is not None:
            found[name] = cores
    return found


def _print(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    _say(_row(rows[0], widths))
    _say(_row(["-" * w for w in widths], widths))
    for row in rows[1:]:
        _say(_row(row, widths))
    _say("")


# -- the chart --------------------------------------------------------------------------------


def chart(results: Mapping[str, Any], derived: Mapping[str, Any], path: Path) -> str | None:
    """A PNG: the latency distribution at each rate (CDF), and CPU per event per stage
    beside its floor. ``None`` when drawn, else why not."""
    try:
        import matplotlib as mpl  # noqa: PLC0415 - optional (the bench extra)

        mpl.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError as exc:
        return f"matplotlib is not installed ({exc}); pip install -e '.[bench]'"
    figure, (left, right) = plt.subplots(1, 2, figsize=(14, 5.5))
    for rate, measured in (results.get("latency") or {}).items():
        if not isinstance(measured, Mapping) or not measured.get("latencies_ms"):
            continue
        values = measured["latencies_ms"]
        fractions = [(i + 1) / len(values) for i in range(len(values))]
        left.step(values, fractions, where="post", label=f"{rate} events/s")
    left.set_xscale("symlog", linthresh=10)
    left.set_xlabel("latency, ms (broker append time: events topic to feed)")
    left.set_ylabel("fraction of events")
    left.set_title("publish-to-routed latency (CDF)")
    left.grid(visible=True, which="both", alpha=0.3)
    if left.get_legend_handles_labels()[0]:
        left.legend()
    stages = [
        ("router\nspread", "router spread"), ("router\nhot spot", "router hot_spot"),
        ("peer\nspread", "peer spread"), ("publish\nspread", "publish spread"),
        ("publish\nhot spot", "publish hot_spot"),
    ]  # fmt: skip
    names = [label for label, _ in stages]
    measured_us = [derived[key]["cpu_us"] or 0.0 for _, key in stages]
    floors_us = [derived[key]["floor_us"] or 0.0 for _, key in stages]
    signed_us = [derived[key].get("with_signatures_us") or 0.0 for _, key in stages]
    positions = list(range(len(stages)))
    width = 0.27
    right.bar(
        [p - width for p in positions], measured_us, width=width, label="measured CPU / event"
    )
    right.bar(positions, floors_us, width=width, label="floor (same run)")
    right.bar([p + width for p in positions], signed_us, width=width,
              label="floor + its own signatures")  # fmt: skip
    for p, value, floor in zip(positions, measured_us, floors_us, strict=True):
        if floor:
            right.annotate(f"{value / floor:.1f}x", (p - width, value), ha="center", va="bottom")
    right.set_xticks(positions, names)
    right.set_ylabel("CPU microseconds per event")
    right.set_title("CPU per event per stage, beside its floor")
    right.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return None


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities as ``null`` (JSON has neither)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


# -- all of it --------------------------------------------------------------------------------


def report(results: Mapping[str, Any], began: dt.datetime, out: Path, events: int) -> int:
    """Print the tables; write the JSON and the chart; the exit code (1 if a phase failed)."""
    derived = derive(results)
    host, found = machine(), versions()
    _say("")
    _say(f"Liaison pipeline benchmark, {began:%Y-%m-%d %H:%M} UTC: {host['cpu']}, "
         f"{host['cores']} cores; Python {found['python']}, aiokafka {found['aiokafka']}, "
         f"Kafka {found['kafka']}; {events:,} events per load")  # fmt: skip
    _say("")
    main_rows = table(results, derived)
    _print(main_rows)
    lat = latency_rows(results)
    _print(lat)
    scale = scale_rows(results, derived)
    _print(scale)
    _say(
        "Cores: nothing is pinned; the OS shares the cores between the broker's JVM, the"
        " router(s), the harness and any other process (`others`: the machine's busy time"
        " less these). CPU seconds from each one's own accounting, from the routers' start."
    )
    _say("")
    busy = _others(results)
    if busy:
        listed = ", ".join(f"{phase} {cores:.2f}" for phase, cores in busy.items())
        _say(f"Other processes on the machine, cores used on average: {listed}.")
        if max(busy.values()) > _BUSY_CORES:
            _say(
                "warning: other processes used the cores during the run; CPU per event is"
                " each process's own, but rates and latencies are not this machine's best."
            )
        _say("")
    failed = [name for name, value in results.items()
              if isinstance(value, Mapping) and "error" in value]  # fmt: skip
    failed += [f"latency {rate}" for rate, value in (results.get("latency") or {}).items()
               if isinstance(value, Mapping) and "error" in value]  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    stem = began.strftime("%Y-%m-%dT%H%M%SZ")
    json_path, png_path = out / f"{stem}.json", out / f"{stem}.png"
    document = {
        "date": began.isoformat(),
        "machine": host,
        "versions": found,
        "events_per_load": events,
        "results": results,
        "derived": derived,
        "tables": {"main": main_rows, "latency": lat, "scale_out": scale},
        "failed": failed,
        "other_processes_cores": busy,
    }
    text = json.dumps(_finite(document), indent=1, default=str, allow_nan=False)
    json_path.write_text(text + "\n", encoding="utf-8")
    _say(f"results: {json_path}")
    try:
        problem = chart(results, derived, png_path)
    except (OSError, ValueError, RuntimeError) as exc:
        problem = f"{type(exc).__name__}: {exc}"
    _say(f"chart: {png_path}" if problem is None else f"chart not drawn: {problem}")
    if failed:
        _say(f"failed: {', '.join(failed)}")
        return 1
    return 0
