#!/usr/bin/env python3
"""Turns one scripts/bench.sh run (a results/<date>-<set>/ folder) into summary.md, PNG plots,
and the "## Latest" section of results/README.md. Every figure stands beside its ratio to a
baseline measured in the same run: produce bytes/s against fio's O_DIRECT sequential write (and
the 16 KiB write+fdatasync rate, the floor of durable writes), consume bytes/s against fio's
sequential read, and both against iperf3 over loopback. The idempotent and transactional
variants of produce-1k are also given as a ratio to produce-1k's records/s of the same run and
layout, and produce-1k-1m-batches as a ratio to produce-1k's rate and CPU per GB.

Broker cost, from the <scenario>.broker.json that bench.sh writes beside each scenario's JSON:
the broker's CPU seconds (utime + stime over the scenario's loadgen run) per GB (1e9 bytes) of
the scenario's payload, as the column "broker core-s/GB", and the io-wq punts counted on the
tracepoint io_uring:io_uring_queue_async_work, also per produce request (loadgen's
request_latency_us count). A folder without these files (older runs) shows "—".

Latency: the produce and end-to-end percentiles are set beside the fdatasync latency
percentiles of fio's 16 KiB write+fdatasync job of the same run (its "sync" latencies), with
each scenario's p99 as a ratio to fdatasync's p99. latency-<layout>.png draws them as
percentile-distribution curves (HdrHistogram style: x is the percentile on a log scale of
1/(1-p), p50 to p99.99; y is latency in ms, log scale), one line per produce or e2e scenario,
the fdatasync curve beside them; throughput-<layout>.png is records/s over time.

Scale scenarios (issue 11): the produce runs of partitions-10000, connections-10000 and the
fill of restart-<N>g are rows like the others; a "Scale" section adds the idle broker's memory
and descriptors after each step (<scenario>.idle.json: VmRSS, VmHWM, open fds, threads), the
restart times (restart-<N>g.json: seconds from the broker's exec to the first connection, the
first full Metadata and the first acks=all produce answered, after kill -9 and after SIGTERM),
and the two goals of the issue read against them. A "Goals" section reads issue 11's other
goals (CPU per GB, produce and consume against fio and iperf3, e2e p99 against fdatasync) against
the run.

results/README.md keeps everything before its first "## Latest" heading (the introduction and
the hand-written "## Runs" list); only the part from that heading on is replaced."""
import json
import os
import re
import sys

out = sys.argv[1]
load = lambda p: json.load(open(p))


def fio_job(name):
    return load(os.path.join(out, f"fio-{name}.json"))["jobs"][0]


def fio_bw(name, kind):
    return fio_job(name)[kind]["bw_bytes"]


def fio_percentiles_us(lat):
    """fio's {"50.000000": ns, ...} as {50.0: µs, ...}."""
    return {float(p): v / 1000 for p, v in (lat or {}).get("percentile", {}).items()}


base = {
    "disk_write": fio_bw("seqwrite", "write"),
    "disk_read": fio_bw("seqread", "read"),
    "disk_sync_write": fio_bw("syncwrite", "write"),
    "loopback": load(os.path.join(out, "iperf3-loopback.json"))["end"]["sum_received"]["bits_per_second"] / 8,
}
sync_job = fio_job("syncwrite")
# fio reports the fdatasync latencies under "sync" ("lat_ns" in fio 3.x, "clat_ns" in some).
fdatasync_us = fio_percentiles_us(sync_job.get("sync", {}).get("lat_ns") or sync_job.get("sync", {}).get("clat_ns"))
sync_write_us = fio_percentiles_us(sync_job.get("write", {}).get("clat_ns"))

SCENARIOS = [
    ("produce-1k", "produce", "durable produce, 1 KiB records, 8 partitions, 16 KiB batches"),
    ("produce-1k-1m-batches", "produce", "durable produce, 1 KiB records, 8 partitions, 1 MiB batches"),
    ("produce-1k-idempotent", "produce", "durable idempotent produce, 1 KiB records, 8 partitions"),
    ("produce-1k-txn", "produce", "durable transactional produce, 1 KiB records, 8 partitions, 1,000-record transactions"),
    ("produce-1k-cleaner-off", "produce", "durable produce at 50%, beside a compacted topic, cleaner off"),
    ("produce-1k-cleaning", "produce", "durable produce at 50%, beside a compacted topic being cleaned"),
    ("produce-100b", "produce", "durable produce, 100 B records, 8 partitions"),
    ("e2e-25", "e2e", "end-to-end at 25% of max"),
    ("e2e-50", "e2e", "end-to-end at 50% of max"),
    ("e2e-75", "e2e", "end-to-end at 75% of max"),
    ("consume-tail", "consume", "tail consume (producer at 50%)"),
    ("consume-catchup", "consume", "catch-up consume (cold: page cache dropped)"),
    ("partitions-1000", "produce", "durable produce, 1,000 partitions"),
    ("connections-1000", "produce", "durable produce, 1,000 connections"),
    ("partitions-10000", "produce", "durable produce, 10,000 partitions"),
    ("connections-10000", "produce", "durable produce, 10,000 connections, 16 KiB of buffer each"),
    ("restart-10g-fill", "produce", "durable produce, 1,000 partitions: restart-10g's 10 GiB fill"),
    ("restart-1g-fill", "produce", "durable produce, 1,000 partitions: restart-1g's 1 GiB fill"),
]
# Issue 11's goals for the scale scenarios.
IDLE_RSS_GOAL_KIB = 1 << 20
RESTART_GOAL_S = 2.0

mib = lambda b: b / (1 << 20)
GB = 1e9
# Scenarios read as a ratio to another of the same run and layout (records/s).
RELATIVE_TO = {"produce-1k-idempotent": "produce-1k", "produce-1k-txn": "produce-1k", "produce-1k-1m-batches": "produce-1k"}
# Scenarios whose broker core-s/GB is read as a ratio to another's of the same run and layout.
COST_RELATIVE_TO = {"produce-1k-1m-batches": "produce-1k"}
# Scenarios whose produce p99 is read as a ratio to another's of the same run and layout.
P99_RELATIVE_TO = {"produce-1k-cleaning": "produce-1k-cleaner-off"}
# loadgen's latency summary keys by percentile.
PERCENTILE_KEYS = [(50.0, "p50"), (90.0, "p90"), (99.0, "p99"), (99.9, "p999"), (99.99, "p9999")]


def broker_cost(layout, name, j, kind):
    """The broker's CPU and io-wq punts over the scenario's run, from its .broker.json (None
    where the run has no such file), with the figures derived from them."""
    path = os.path.join(out, layout, f"{name}.broker.json")
    if not os.path.exists(path):
        return None
    c = load(path)
    cpu_s = c.get("cpu_s")
    payload = j.get("bytes", 0)
    # Produce requests loadgen sent (produce and e2e: one latency sample per request).
    requests = j.get("request_latency_us", {}).get("count") if kind in ("produce", "e2e") else None
    punts = c.get("io_wq_punts")
    return {
        "cpu_s": cpu_s,
        "wall_s": c.get("wall_s"),
        "gb": payload / GB,
        "core_s_per_gb": cpu_s / (payload / GB) if cpu_s is not None and payload > 0 else None,
        "requests": requests,
        "kib_per_request": payload / 1024 / requests if requests else None,
        "cpu_us_per_request": cpu_s * 1e6 / requests if cpu_s is not None and requests else None,
        "punts": punts,
        "punts_per_request": punts / requests if punts is not None and requests else None,
        "punts_why": c.get("io_wq_punts_not_counted"),
    }


rows = []
layouts = [d for d in sorted(os.listdir(out)) if os.path.isdir(os.path.join(out, d))]
for layout in layouts:
    for name, kind, label in SCENARIOS:
        path = os.path.join(out, layout, f"{name}.json")
        if not os.path.exists(path):
            continue
        j = load(path)
        bps = j["bytes_per_s"]
        lat = j.get("latency_us", {})
        cost = broker_cost(layout, name, j, kind)
        if kind == "produce":
            ratio = f"{bps / base['disk_write']:.2f}× disk write, {bps / base['disk_sync_write']:.2f}× sync write"
            ref = RELATIVE_TO.get(name)
            ref_path = os.path.join(out, layout, f"{ref}.json") if ref else None
            if ref_path and os.path.exists(ref_path) and load(ref_path)["records_per_s"] > 0:
                ratio = f"{j['records_per_s'] / load(ref_path)['records_per_s']:.2f}× {ref}, " + ratio
            ref = COST_RELATIVE_TO.get(name)
            ref_path = os.path.join(out, layout, f"{ref}.json") if ref else None
            if ref_path and os.path.exists(ref_path) and cost and cost["core_s_per_gb"]:
                theirs = broker_cost(layout, ref, load(ref_path), "produce")
                if theirs and theirs["core_s_per_gb"]:
                    ratio = f"core-s/GB {cost['core_s_per_gb'] / theirs['core_s_per_gb']:.2f}× {ref}'s, " + ratio
            ref = P99_RELATIVE_TO.get(name)
            ref_path = os.path.join(out, layout, f"{ref}.json") if ref else None
            if ref_path and os.path.exists(ref_path):
                mine, theirs = lat.get("p99"), load(ref_path).get("latency_us", {}).get("p99")
                if mine and theirs:
                    ratio = f"p99 {mine / theirs:.2f}× {ref}'s, " + ratio
                cleanings = os.path.join(out, layout, f"{name}.cleanings")
                if os.path.exists(cleanings):
                    ratio = f"{open(cleanings).read().strip()} cleanings, " + ratio
        elif kind == "consume":
            ratio = f"{bps / base['disk_read']:.2f}× disk read, {bps / base['loopback']:.3f}× loopback"
        else:
            ratio = f"{bps / base['disk_write']:.3f}× disk write"
        if kind == "e2e" and "linger_ms" in j.get("parameters", {}):
            label += f", linger {j['parameters']['linger_ms']} ms"
        if j.get("ok") is False:
            label += " (not kept up: see below)"
        rows.append({
            "layout": layout, "name": name, "kind": kind, "label": label, "json": j, "lat": lat,
            "rps": j["records_per_s"], "mibs": mib(bps), "errors": j.get("errors", 0),
            "ratio": ratio, "cost": cost,
        })


def us(v):
    return "—" if v is None else (f"{v / 1000:.1f} ms" if v >= 10_000 else f"{v:.0f} µs")


def num(v, fmt):
    return "—" if v is None else format(v, fmt)


def cost_of(r, key, fmt):
    return num(r["cost"][key], fmt) if r["cost"] else "—"


machine = open(os.path.join(out, "machine.txt")).read().strip()
fds = lambda p: fdatasync_us.get(p)
lines = [
    f"# Benchmark results: {os.path.basename(out)}",
    "",
    "```",
    machine,
    "```",
    "",
    "## Baselines (same run)",
    "",
    "| baseline | figure |",
    "|---|---|",
    f"| fio O_DIRECT sequential write, 1 MiB blocks | {mib(base['disk_write']):.0f} MiB/s |",
    f"| fio O_DIRECT sequential read, 1 MiB blocks | {mib(base['disk_read']):.0f} MiB/s |",
    f"| fio 16 KiB write + fdatasync each | {mib(base['disk_sync_write']):.1f} MiB/s |",
    f"| fio fdatasync latency (after each 16 KiB write) | p50 {us(fds(50.0))}, p99 {us(fds(99.0))}, p99.9 {us(fds(99.9))} |",
    f"| iperf3 loopback | {mib(base['loopback']):.0f} MiB/s |",
    "",
    "## Scenarios",
    "",
    "| layout | scenario | records/s | MiB/s | p50 | p99 | p99.9 | max | errors | broker core-s/GB | io-wq punts | ratio to baseline |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|",
]
for r in rows:
    lat = r["lat"]
    lines.append(
        f"| {r['layout']} | {r['label']} | {r['rps']:,.0f} | {r['mibs']:.1f} | {us(lat.get('p50'))} | {us(lat.get('p99'))} "
        f"| {us(lat.get('p999'))} | {us(lat.get('max'))} | {r['errors']} | {cost_of(r, 'core_s_per_gb', '.2f')} "
        f"| {cost_of(r, 'punts', ',')} | {r['ratio']} |"
    )
lines += [
    "",
    "Latency: produce, send (intended send time under a rate) to acknowledgement; e2e, send to receipt;",
    "consume, fetch request to response. Broker core-s/GB: the broker's CPU seconds (utime + stime, every",
    "thread) over the scenario's run, per 1e9 bytes of its payload (produced, or consumed for consume and",
    "e2e); a side load's work is in it too (consume-tail's producer, the compacted topic's producer and",
    "cleaner). io-wq punts: io_uring requests handed to worker threads instead of completing inline.",
]

# Latency beside the fdatasync floor of the same run.
lines += [
    "",
    "## Latency beside fdatasync (same run)",
    "",
    "| layout | latency of | p50 | p90 | p99 | p99.9 | p99.99 | p99 ÷ fdatasync p99 |",
    "|---|---|---|---|---|---|---|---|",
]
if fdatasync_us:
    lines.append(
        "| — | fio fdatasync after each 16 KiB O_DIRECT write | "
        + " | ".join(us(fds(p)) for p, _ in PERCENTILE_KEYS) + " | 1.00× |"
    )
if sync_write_us:
    lines.append(
        "| — | fio 16 KiB O_DIRECT write before each fdatasync (completion) | "
        + " | ".join(us(sync_write_us.get(p)) for p, _ in PERCENTILE_KEYS)
        + f" | {num(sync_write_us.get(99.0) / fds(99.0) if fds(99.0) and sync_write_us.get(99.0) else None, '.2f')}× |"
    )
for r in rows:
    if r["kind"] not in ("produce", "e2e") or not r["lat"]:
        continue
    lat = r["lat"]
    vs = f"{lat['p99'] / fds(99.0):,.0f}×" if lat.get("p99") and fds(99.0) else "—"
    lines.append(
        f"| {r['layout']} | {r['label']} | " + " | ".join(us(lat.get(k)) for _, k in PERCENTILE_KEYS) + f" | {vs} |"
    )
if not fdatasync_us:
    lines += ["", "fio's JSON has no fdatasync latency percentiles in this run."]

# Broker cost, with the figures that tell per-request from per-byte cost.
if any(r["cost"] for r in rows):
    lines += [
        "",
        "## Broker cost (same runs)",
        "",
        "| layout | scenario | broker CPU | wall | payload | core-s/GB | produce requests | KiB/request | CPU µs/request | io-wq punts | punts/request |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if not r["cost"]:
            continue
        c = r["cost"]
        lines.append(
            f"| {r['layout']} | {r['name']} | {num(c['cpu_s'], '.2f')} s | {num(c['wall_s'], '.1f')} s | {c['gb']:.2f} GB "
            f"| {num(c['core_s_per_gb'], '.2f')} | {num(c['requests'], ',')} | {num(c['kib_per_request'], ',.0f')} "
            f"| {num(c['cpu_us_per_request'], ',.0f')} | {num(c['punts'], ',')} | {num(c['punts_per_request'], '.2f')} |"
        )
    whys = sorted({r["cost"]["punts_why"] for r in rows if r["cost"] and r["cost"]["punts_why"]})
    lines += ["", "Produce requests: loadgen's (e2e: its producers'); KiB/request: payload per produce request."]
    # The same records in 16 KiB and in 1 MiB batches: two runs, two unknowns (CPU per request
    # and per byte), cpu = a * requests + b * GB.
    for layout in layouts:
        small, large = ({r["name"]: r for r in rows if r["layout"] == layout}.get(n) for n in ("produce-1k", "produce-1k-1m-batches"))
        if not (small and large and small["cost"] and large["cost"]):
            continue
        (c1, r1, g1), (c2, r2, g2) = ((x["cost"]["cpu_s"], x["cost"]["requests"], x["cost"]["gb"]) for x in (small, large))
        det = (r1 or 0) * g2 - (r2 or 0) * g1
        if c1 is None or c2 is None or det == 0:
            continue
        a, b = (c1 * g2 - c2 * g1) / det, (r1 * c2 - r2 * c1) / det
        split = (f"{a * 1e6:,.0f} µs per produce request + {b:.2f} core-s per GB of payload" if a > 0 and b > 0
                 else "not separable in this run (one term comes out negative: noise)")
        lines += ["", f"{layout}: produce-1k and produce-1k-1m-batches' broker CPU split into per request and per byte "
                  f"(two runs, two unknowns, as noisy as the runs): {split}."]
    if whys:
        lines += ["", "io-wq punts were not counted in this run: " + "; ".join(whys)]
lines += [
    "",
    "Plots: `throughput-<layout>.png` (records/s each second), `latency-<layout>.png` (percentile",
    "distribution of produce and e2e latency, with fio's fdatasync latency of the same run).",
]


def scale_section():
    """Idle memory after each step of the scale scenarios, restart times, and the goals."""
    idle, restarts = [], []
    for layout in layouts:
        for f in sorted(os.listdir(os.path.join(out, layout))):
            if f.endswith(".idle.json"):
                idle.append((layout, f[: -len(".idle.json")], load(os.path.join(out, layout, f))))
            elif re.fullmatch(r"restart-\d+g\.json", f):
                restarts.append((layout, f[: -len(".json")], load(os.path.join(out, layout, f))))
    if not idle and not restarts:
        return []
    mb = lambda kib: f"{kib / 1024:,.0f} MiB"
    sec = lambda v: "—" if v is None else f"{v:.2f} s"
    s = ["", "## Scale (issue 11)", ""]
    if idle:
        s += ["| layout | scenario | idle after | VmRSS | VmHWM (peak so far) | open fds | threads | also |",
              "|---|---|---|---|---|---|---|---|"]
        for layout, name, doc in idle:
            for step, v in doc.items():
                also = ", ".join(f"{k} {v[k]:,.{0 if k in ('connections', 'data_bytes') else 2}f}" for k in v
                                 if k not in ("rss_kib", "hwm_kib", "fds", "threads", "settle_s"))
                s.append(f"| {layout} | {name} | {step} (settled in {v['settle_s']:.0f} s) | {mb(v['rss_kib'])} "
                         f"| {mb(v['hwm_kib'])} | {v['fds']:,} | {v['threads']} | {also} |")
        s += ["", "Idle: once the broker used under 2 clock ticks of CPU in a second (at most 60 s after the step)."]
    if restarts:
        s += ["", "| layout | scenario | log | restart after | first connection | Metadata (every partition led) "
              "| first acks=all produce | stop (SIGTERM) |", "|---|---|---|---|---|---|---|---|"]
        for layout, name, r in restarts:
            for label, key in (("kill -9 (recovery)", "kill9"), ("SIGTERM (clean)", "clean")):
                t = r[key]
                stop = sec(r["sigterm_stop_s"]) if key == "clean" else "—"
                s.append(f"| {layout} | {name} | {r['log_bytes'] / (1 << 30):.1f} GiB, {r['partitions']:,} partitions "
                         f"| {label} | {sec(t['connect_s'])} | {sec(t['metadata_s'])} | {sec(t['produce_s'])} | {stop} |")
        s += ["", "Seconds from the broker's exec (scripts/scale_probe.py serving); segments cut by recovery "
              "after the kill -9: " + ", ".join(f"{n} {r['segments_truncated']}" for _, n, r in restarts) + "."]
    # The goals, read against the runs.
    by = {(r["layout"], r["name"]): r for r in rows}
    s += ["", "| goal (issue 11) | layout | measured | met |", "|---|---|---|---|"]
    for layout in layouts:
        mine = [(n, d) for l, n, d in idle if l == layout and n in ("partitions-10000", "connections-10000")]
        if mine:
            # Judged on the scenarios this run has (--scale may leave some out); one whose
            # loadgen run left no JSON was not served.
            served = {n: bool(by.get((layout, n)) and by[(layout, n)]["errors"] == 0
                              and by[(layout, n)]["json"].get("ok", True)) for n, _ in mine}
            worst = max(v["rss_kib"] for _, d in mine for v in d.values())
            said = ", ".join(f"{n} {'served' if ok else 'not served cleanly'}" for n, ok in served.items())
            s.append(f"| 10k partitions / 10k connections: serving; idle RSS <= 1 GiB | {layout} "
                     f"| {said}; largest idle RSS {mb(worst)} "
                     f"| {'yes' if all(served.values()) and worst <= IDLE_RSS_GOAL_KIB else 'no'} |")
        for l, name, r in restarts:
            if l != layout:
                continue
            times = [r[k]["produce_s"] for k in ("kill9", "clean")]
            worst = None if None in times else max(times)
            s.append(f"| restart with {r['log_bytes'] / (1 << 30):.0f} GiB of log: serving in <= 2 s | {layout} "
                     f"| after kill -9 {sec(times[0])}, after SIGTERM {sec(times[1])} "
                     f"| {'yes' if worst is not None and worst <= RESTART_GOAL_S else 'no'} |")
    return s


def goals_section():
    """Issue 11's goals on throughput, CPU and latency, read against this run (the scale
    goals are in the Scale section)."""
    by = {(r["layout"], r["name"]): r for r in rows}
    fsync_p99 = fdatasync_us.get(99.0)
    goals = [
        ("broker CPU per GB of durable 1 KiB produce, 1 MB batches: <= 0.3 core-s", "produce-1k-1m-batches",
         lambda r: (r["cost"] or {}).get("core_s_per_gb"), lambda v: f"{v:.2f} core-s/GB", lambda v: v <= 0.3),
        ("the same with the Java default 16 KiB batches: <= 1 core-s", "produce-1k",
         lambda r: (r["cost"] or {}).get("core_s_per_gb"), lambda v: f"{v:.2f} core-s/GB", lambda v: v <= 1.0),
        ("durable produce, 1 KiB, 8 partitions: >= 0.5x fio write", "produce-1k",
         lambda r: r["json"]["bytes_per_s"] / base["disk_write"], lambda v: f"{v:.2f}x fio write", lambda v: v >= 0.5),
        ("100 B records: >= 2 M rec/s", "produce-100b",
         lambda r: r["rps"], lambda v: f"{v:,.0f} rec/s", lambda v: v >= 2e6),
        ("end-to-end p99 at 50% of max: <= 3x fio's fdatasync p99", "e2e-50",
         lambda r: r["lat"].get("p99") / fsync_p99 if fsync_p99 and r["lat"].get("p99") else None,
         lambda v: f"{v:,.1f}x fdatasync p99 ({fsync_p99:.0f} µs)", lambda v: v <= 3),
        ("tail consume (producer at 50%): >= 0.5x iperf3 loopback", "consume-tail",
         lambda r: r["json"]["bytes_per_s"] / base["loopback"], lambda v: f"{v:.3f}x loopback", lambda v: v >= 0.5),
        ("catch-up consume of cold data: >= 0.9x fio read", "consume-catchup",
         lambda r: r["json"]["bytes_per_s"] / base["disk_read"], lambda v: f"{v:.2f}x fio read", lambda v: v >= 0.9),
    ]
    s = ["", "## Goals (issue 11)", "", "| goal | layout | measured | met |", "|---|---|---|---|"]
    for layout in layouts:
        for label, name, measure, show, met in goals:
            r = by.get((layout, name))
            v = measure(r) if r else None
            if v is None:
                s.append(f"| {label} | {layout} | not measured | — |")
            else:
                s.append(f"| {label} | {layout} | {show(v)} | {'yes' if met(v) else 'no'} |")
    s += ["", "The scale goals (10k partitions and connections, restart with 10 GB) are in the Scale section."]
    return s


lines += goals_section()
lines += scale_section()
failures = os.path.join(out, "failures.txt")
if os.path.exists(failures):
    lines += ["", "## Scenarios that did not finish cleanly", "", "```", open(failures).read().strip(), "```"]
summary = "\n".join(lines) + "\n"
open(os.path.join(out, "summary.md"), "w").write(summary)

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # Percentile p (in %) at x = 1/(1-p): p50 at 2, p99 at 100, p99.99 at 10,000.
    at = lambda p: 1 / (1 - p / 100)
    for layout in layouts:
        mine = [r for r in rows if r["layout"] == layout]
        fig, ax = plt.subplots(figsize=(9, 5))
        for r in mine:
            series = r["json"].get("series", [])
            if series:
                ax.plot([p["t_s"] for p in series], [p["records"] for p in series], label=r["label"])
        ax.set_xlabel("seconds")
        ax.set_ylabel("records/s")
        ax.set_title(f"Throughput over time ({layout})")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(os.path.join(out, f"throughput-{layout}.png"), dpi=110)
        plt.close(fig)

        fig, ax = plt.subplots(figsize=(11, 6))
        curves = [r for r in mine if r["kind"] in ("produce", "e2e") and r["lat"].get("p50")]
        colours = plt.get_cmap("tab20") # the ten dark colours first, then their light pairs
        for i, r in enumerate(curves):
            pts = [(p, r["lat"].get(k)) for p, k in PERCENTILE_KEYS if r["lat"].get(k)]
            ax.plot([at(p) for p, _ in pts], [v / 1000 for _, v in pts], marker="o", markersize=3,
                    linestyle="-" if r["kind"] == "e2e" else "-.", color=colours((2 * i) % 20 + (2 * i // 20) % 2),
                    label=f"{r['name']} ({r['kind']})")
        pts = sorted((p, v) for p, v in fdatasync_us.items() if 50 <= p <= 99.99)
        if pts:
            ax.plot([at(p) for p, _ in pts], [v / 1000 for _, v in pts], color="black", linewidth=2.5,
                    linestyle="--", marker="s", markersize=3, label="fio fdatasync after a 16 KiB write (same run)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ticks = [50, 90, 99, 99.9, 99.99]
        ax.set_xticks([at(p) for p in ticks])
        ax.set_xticklabels([f"{p:g}%" for p in ticks])
        ax.minorticks_off()
        ax.set_xlim(at(50) * 0.9, at(99.99) * 1.1)
        ax.set_xlabel("percentile")
        ax.set_ylabel("latency (ms)")
        ax.grid(True, which="major", alpha=0.3)
        ax.set_title(f"Latency by percentile ({layout}): produce (dash-dot), end-to-end (solid), fdatasync (black)")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        fig.tight_layout()
        fig.savefig(os.path.join(out, f"latency-{layout}.png"), dpi=110)
        plt.close(fig)
except ImportError:
    print("matplotlib missing: no plots", file=sys.stderr)

# results/README.md: the part before "## Latest" (the introduction and the hand-written
# "## Runs") stays as it is; the latest run's summary replaces the rest.
readme = os.path.join(os.path.dirname(out), "README.md")
head = """# results/

Measured figures: one folder per run of `scripts/bench.sh` (`<date>-<set>/`), holding the JSON
of every loadgen scenario and baseline, `summary.md`, `machine.txt` and the plots. Every figure
is read beside a baseline measured in the same run (fio for the disk, iperf3 for loopback): the
machine is shared and noisy, so absolute numbers move between runs and ratios move less.

Reproduce: `scripts/bench.sh` (full, about 15 minutes) or `scripts/bench.sh --quick` (about 5).

"""
if os.path.exists(readme):
    text = open(readme).read()
    m = re.search(r"^## Latest\b.*$", text, re.M)
    head = text[: m.start()] if m else text.rstrip("\n") + "\n\n"
latest = f"## Latest\n\nFrom `{os.path.basename(out)}/`:\n\n" + summary
open(readme, "w").write(head + latest)
print(summary)
