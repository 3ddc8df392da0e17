#!/usr/bin/env python3
"""Turns the results of scripts/bench into the markdown section of docs/PERFORMANCE.md.

usage: bench_report.py RUN_DIR [PERFORMANCE.md]
  RUN_DIR holds peers.jsonl (mqtt-load lines from bench-peers.sh, label "broker/scenario#rep"),
  wakeups.jsonl ({"broker", "rep", "wakeups", "conns"} lines for the conns runs), compare.jsonl and scale.jsonl ({"case": ..., "tool": ..., "result": {...}} lines) and
  machine.txt / command.txt. Without PERFORMANCE.md the section is printed; with it, the text
  between the markers is replaced (the markers are added at the end if missing).

Every figure is the median over the repetitions, with (min-max) when there were several."""
import json
import statistics
import sys
from collections import OrderedDict
from pathlib import Path

BEGIN = "<!-- scripts/bench: begin (generated; edits here are overwritten) -->"
END = "<!-- scripts/bench: end -->"

SCENARIOS = OrderedDict([
    ("fanin-q0", ("fan-in 4 -> 1, QoS 0 (delivered msg/s)", "recv_msgs_per_s", "high")),
    ("fanin-q1", ("fan-in 4 -> 1, QoS 1", "recv_msgs_per_s", "high")),
    ("fanin-q2", ("fan-in 4 -> 1, QoS 2", "recv_msgs_per_s", "high")),
    ("fanin-q1-1k", ("fan-in 4 -> 1, QoS 1, 1 KiB", "recv_msgs_per_s", "high")),
    ("fanout-q0", ("fan-out 1 -> 50, QoS 0", "recv_msgs_per_s", "high")),
    ("fanout-q1", ("fan-out 1 -> 50, QoS 1", "recv_msgs_per_s", "high")),
    ("pairs-q1", ("100 pairs, QoS 1", "recv_msgs_per_s", "high")),
    ("lat-q1", ("p99 latency at a steady 10k msg/s, QoS 1 (µs)", "lat_p99_us", "low")),
    ("conns", ("idle connections: connects/s", "conns_per_s", "high")),
    ("conns-mem", ("memory per idle connection (bytes)", "broker_bytes_per_conn", "low")),
])
PEERS = ["mosquitto", "rumqttd"]


def lines(path):
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return out


def median(values):
    values = [v for v in values if isinstance(v, (int, float))]
    return statistics.median(values) if values else None


def fmt(v, unit=""):
    if v is None:
        return "-"
    if abs(v) >= 1e6:
        return f"{v / 1e6:.2f}M{unit}"
    if abs(v) >= 1e4:
        return f"{v / 1e3:.0f}k{unit}"
    if abs(v) >= 100:
        return f"{v:.0f}{unit}"
    return f"{v:.1f}{unit}"


def cell(values):
    values = [v for v in values if isinstance(v, (int, float))]
    if not values:
        return "-"
    m = statistics.median(values)
    if len(values) == 1:
        return fmt(m)
    return f"{fmt(m)} ({fmt(min(values))}–{fmt(max(values))})"


def peer_table(rows):
    by = OrderedDict()
    for r in rows:
        broker, _, rest = r.get("label", "?/?").partition("/")
        scenario = rest.split("#")[0]
        by.setdefault((broker, scenario), []).append(r)
    brokers = ["tern"] + [p for p in PEERS if any(b == p for b, _ in by)]
    ran = [s for s in SCENARIOS if any(sc == s or (s == "conns-mem" and sc == "conns") for _, sc in by)]
    if not ran:
        return []
    out = ["| scenario | " + " | ".join(brokers) + " | tern / best peer | tern lost, dups, errors |",
           "|---" * (len(brokers) + 3) + "|"]
    for s in ran:
        title, key, better = SCENARIOS[s]
        src = "conns" if s == "conns-mem" else s
        cells, meds = [], {}
        for b in brokers:
            rs = by.get((b, src), [])
            cells.append(cell([r.get(key) for r in rs]) if rs else "not run")
            meds[b] = median([r.get(key) for r in rs])
        peers = [meds[p] for p in brokers[1:] if meds.get(p) is not None]
        ratio = "-"
        if meds.get("tern") is not None and peers:
            if s == "conns-mem":  # the goal is mosquitto's figure
                peers = [meds["mosquitto"]] if meds.get("mosquitto") is not None else peers
            best = max(peers) if better == "high" else min(peers)
            if best:
                r = meds["tern"] / best
                ok = r >= 1 if better == "high" else r <= 1
                ratio = f"{r:.2f} {'✓' if ok else '✗'}"
        trs = by.get(("tern", src), [])
        if s.startswith("conns"):
            loss = "failed " + str(sum(r.get("failed", 0) or 0 for r in trs)) if trs else "-"
        else:
            loss = (", ".join(str(sum(r.get(k, 0) or 0 for r in trs)) for k in ("lost", "dups", "errors"))
                    if trs else "-")
        out.append(f"| {title} | " + " | ".join(cells) + f" | {ratio} | {loss} |")
    return out


def wakeup_note(rows):
    """How often the generator's CPU woke the broker's during the connects/s runs."""
    per = OrderedDict()
    for r in rows:
        if isinstance(r.get("wakeups"), (int, float)) and r.get("conns"):
            per.setdefault(r.get("broker", "?"), []).append(r["wakeups"] / r["conns"])
    if not per:
        return []
    each = ", ".join(f"{b} {median(v):.2f}" for b, v in per.items())
    return [f"Wake-ups of the broker's CPU by another CPU (rescheduling and function-call interrupts) "
            f"per connection over the connects/s runs, median: {each}. That scenario is bound by the "
            f"generator's core, and each wake-up of an idle broker costs that core; see "
            f"\"Connects/s\" under \"What moved the numbers\" below."]


def result_rows(rows, case):
    return [r["result"] for r in rows if r.get("case") == case and isinstance(r.get("result"), dict)]


def cell_ms(values):
    """Microsecond values shown in milliseconds."""
    values = [v for v in values if isinstance(v, (int, float))]
    if not values:
        return "-"
    m = statistics.median(values) / 1000
    if len(values) == 1:
        return f"{m:.2f}"
    return f"{m:.2f} ({min(values) / 1000:.2f}–{max(values) / 1000:.2f})"


def compare_table(rows):
    mq = result_rows(rows, "fanin-q1/mqtt-load")
    tb = result_rows(rows, "fanin-q1/tern-bench")
    if not mq and not tb:
        return []
    # The runs alternate (mqtt-load, tern bench, mqtt-load, ...): each pair ran back to back,
    # so the median of the pairs' ratios is not moved by the machine drifting between pairs.
    pairs = [
        b / a
        for a, b in zip((r.get("recv_msgs_per_s") for r in mq), (r.get("recv_msgs_per_s") for r in tb))
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and a > 0
    ]
    a = median([r.get("recv_msgs_per_s") for r in mq])
    b = median([r.get("recv_msgs_per_s") for r in tb])
    ratio = f"{median(pairs):.2f}" if pairs else "-"
    of_medians = f"{b / a:.2f}" if a and b else "-"
    each = ", ".join(f"{p:.2f}" for p in pairs)
    return [
        "| generator | delivered msg/s | end-to-end p99 ms | lost | dups |",
        "|---|---|---|---|---|",
        f"| mqtt-load | {cell([r.get('recv_msgs_per_s') for r in mq])} | {cell_ms([r.get('lat_p99_us') for r in mq])}"
        f" | {sum(r.get('lost', 0) for r in mq)} | {sum(r.get('dups', 0) for r in mq)} |",
        f"| tern bench | {cell([r.get('recv_msgs_per_s') for r in tb])} | {cell_ms([r.get('lat_p99_us') for r in tb])}"
        f" | {sum(r.get('lost', 0) for r in tb)} | {sum(r.get('dups', 0) for r in tb)} |",
        "",
        f"tern bench / mqtt-load (delivered msg/s), median of the {len(pairs)} back-to-back pairs' ratios"
        f" ({each}): **{ratio}** (the goal: within 0.90–1.10); ratio of the medians {of_medians}.",
    ]


SCALE = [
    ("fanout-1000", "fan-out 1 -> 1,000 subscribers, QoS 1, 64 B", "recv_msgs_per_s"),
    ("fanin-64k", "fan-in 4 -> 1, QoS 1, 64 KiB payloads", "recv_msgs_per_s"),
    ("persist-off", "fan-in 4 -> 1, QoS 1, persistent subscriber, publisher window 256, --in-memory", "recv_msgs_per_s"),
    ("persist-on", "fan-in 4 -> 1, QoS 1, persistent subscriber, publisher window 256, persistence on", "recv_msgs_per_s"),
    ("persist-on-20k", "QoS 1 at 20,000 msg/s, persistence on", "recv_msgs_per_s"),
]


def scale_table(rows):
    present = [s for s in SCALE if result_rows(rows, s[0])]
    if not present:
        return []
    out = ["| case | delivered msg/s | publish -> PUBACK p50 / p99 ms | end-to-end p99 ms | sent | lost, dups, errors |",
           "|---|---|---|---|---|---|"]
    for case, title, key in present:
        rs = result_rows(rows, case)
        loss = ", ".join(str(sum(r.get(k, 0) for r in rs)) for k in ("lost", "dups", "errors"))
        out.append(
            f"| {title} | {cell([r.get(key) for r in rs])} | {cell_ms([r.get('ack_p50_us') for r in rs])} / "
            f"{cell_ms([r.get('ack_p99_us') for r in rs])} | {cell_ms([r.get('lat_p99_us') for r in rs])} | "
            f"{cell([r.get('sent') for r in rs])} | {loss} |")
    on = median([r.get("recv_msgs_per_s") for r in result_rows(rows, "persist-on")])
    off = median([r.get("recv_msgs_per_s") for r in result_rows(rows, "persist-off")])
    p99 = median([r.get("ack_p99_us") for r in result_rows(rows, "persist-on-20k")])
    notes = []
    if on and off:
        notes.append(f"persistence on / in memory: **{on / off:.2f}** (issue 6 asks at least 0.5)")
    if p99 is not None:
        notes.append(f"publish -> PUBACK p99 at 20,000 msg/s with persistence on: **{p99 / 1000:.2f} ms**"
                     " (issue 6 asks under 5 ms)")
    if notes:
        out += [""] + [f"- {n}" for n in notes]
    return out


def section(run_dir):
    machine = (run_dir / "machine.txt").read_text().strip() if (run_dir / "machine.txt").exists() else ""
    commands = (run_dir / "command.txt").read_text().strip() if (run_dir / "command.txt").exists() else ""
    peers = peer_table(lines(run_dir / "peers.jsonl"))
    wakeups = wakeup_note(lines(run_dir / "wakeups.jsonl"))
    compare = compare_table(lines(run_dir / "compare.jsonl"))
    scale = scale_table(lines(run_dir / "scale.jsonl"))
    out = [BEGIN, "", "### Last `scripts/bench` run", "", machine, "", commands, ""]
    if peers:
        out += ["#### Tern against mosquitto and rumqttd (mqtt-load, `bench-peers.sh`)", "",
                "64 B payloads unless said, MQTT 3.1.1, broker pinned to CPU 0 and mqtt-load to CPU 1, "
                "a fresh broker process per run. ✓: the issue 7 goal is met (throughput at least the "
                "better peer's; latency and memory at most the better peer's / mosquitto's).", ""] + peers + [""]
        if wakeups:
            out += wakeups + [""]
    if compare:
        out += ["#### `tern bench` against mqtt-load: fan-in 4 -> 1, QoS 1, 64 B, on `tern broker`", ""] + compare + [""]
    if scale:
        out += ["#### Scale figures (`tern bench` on `tern broker`, pinned as above)", ""] + scale + [""]
    out.append(END)
    return "\n".join(out) + "\n"


def main():
    run_dir = Path(sys.argv[1])
    text = section(run_dir)
    if len(sys.argv) < 3:
        sys.stdout.write(text)
        return
    doc = Path(sys.argv[2])
    old = doc.read_text() if doc.exists() else "# Performance\n"
    if BEGIN in old and END in old:
        head, rest = old.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        new = head + text.rstrip("\n") + tail
    else:
        new = old.rstrip("\n") + "\n\n## Broker benchmarks\n\n" + text
    doc.write_text(new)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
