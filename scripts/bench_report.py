#!/usr/bin/env python3
"""Turns one scripts/bench.sh run (a results/<date>-<set>/ folder) into summary.md, PNG plots,
and the latest table in results/README.md. Every figure stands beside its ratio to a baseline
measured in the same run: produce bytes/s against fio's O_DIRECT sequential write (and the
16 KiB write+fdatasync rate, the floor of durable writes), consume bytes/s against fio's
sequential read, and both against iperf3 over loopback. The idempotent and transactional
variants of produce-1k are also given as a ratio to produce-1k's records/s of the same run
and layout."""
import json
import os
import sys

out = sys.argv[1]
load = lambda p: json.load(open(p))


def fio_bw(name, kind):
    j = load(os.path.join(out, f"fio-{name}.json"))
    return j["jobs"][0][kind]["bw_bytes"]


base = {
    "disk_write": fio_bw("seqwrite", "write"),
    "disk_read": fio_bw("seqread", "read"),
    "disk_sync_write": fio_bw("syncwrite", "write"),
    "loopback": load(os.path.join(out, "iperf3-loopback.json"))["end"]["sum_received"]["bits_per_second"] / 8,
}

SCENARIOS = [
    ("produce-1k", "produce", "durable produce, 1 KiB records, 8 partitions"),
    ("produce-1k-idempotent", "produce", "durable idempotent produce, 1 KiB records, 8 partitions"),
    ("produce-1k-txn", "produce", "durable transactional produce, 1 KiB records, 8 partitions, 1,000-record transactions"),
    ("produce-1k-cleaner-off", "produce", "durable produce at 50%, beside a compacted topic, cleaner off"),
    ("produce-1k-cleaning", "produce", "durable produce at 50%, beside a compacted topic being cleaned"),
    ("produce-100b", "produce", "durable produce, 100 B records, 8 partitions"),
    ("e2e-25", "e2e", "end-to-end at 25% of max"),
    ("e2e-50", "e2e", "end-to-end at 50% of max"),
    ("e2e-75", "e2e", "end-to-end at 75% of max"),
    ("consume-tail", "consume", "tail consume (producer at 50%)"),
    ("consume-catchup", "consume", "catch-up consume (cold: O_DIRECT reads)"),
    ("partitions-1000", "produce", "durable produce, 1,000 partitions"),
    ("connections-1000", "produce", "durable produce, 1,000 connections"),
]

mib = lambda b: b / (1 << 20)
# Scenarios read as a ratio to another of the same run and layout (records/s).
RELATIVE_TO = {"produce-1k-idempotent": "produce-1k", "produce-1k-txn": "produce-1k"}
# Scenarios whose produce p99 is read as a ratio to another's of the same run and layout.
P99_RELATIVE_TO = {"produce-1k-cleaning": "produce-1k-cleaner-off"}
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
        if kind == "produce":
            ratio = f"{bps / base['disk_write']:.2f}× disk write, {bps / base['disk_sync_write']:.2f}× sync write"
            ref = RELATIVE_TO.get(name)
            ref_path = os.path.join(out, layout, f"{ref}.json") if ref else None
            if ref_path and os.path.exists(ref_path) and load(ref_path)["records_per_s"] > 0:
                ratio = f"{j['records_per_s'] / load(ref_path)['records_per_s']:.2f}× {ref}, " + ratio
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
        if j.get("ok") is False:
            label += " (not kept up: see below)"
        rows.append((layout, label, j["records_per_s"], mib(bps), lat.get("p50"), lat.get("p99"), lat.get("p999"), lat.get("max"), j.get("errors", 0), ratio, j))


def us(v):
    return "—" if v is None else (f"{v / 1000:.1f} ms" if v >= 10_000 else f"{v:.0f} µs")


machine = open(os.path.join(out, "machine.txt")).read().strip()
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
    f"| iperf3 loopback | {mib(base['loopback']):.0f} MiB/s |",
    "",
    "## Scenarios",
    "",
    "| layout | scenario | records/s | MiB/s | p50 | p99 | p99.9 | max | errors | ratio to baseline |",
    "|---|---|---|---|---|---|---|---|---|---|",
]
for layout, label, rps, mbs, p50, p99, p999, mx, errors, ratio, _ in rows:
    lines.append(f"| {layout} | {label} | {rps:,.0f} | {mbs:.1f} | {us(p50)} | {us(p99)} | {us(p999)} | {us(mx)} | {errors} | {ratio} |")
lines += [
    "",
    "Latency: produce, send (intended send time under a rate) to acknowledgement; e2e, send to receipt.",
    "Plots: `throughput-<layout>.png` (records/s each second), `latency-<layout>.png` (percentiles).",
]
failures = os.path.join(out, "failures.txt")
if os.path.exists(failures):
    lines += ["", "## Scenarios that did not finish cleanly", "", "```", open(failures).read().strip(), "```"]
summary = "\n".join(lines) + "\n"
open(os.path.join(out, "summary.md"), "w").write(summary)

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for layout in layouts:
        mine = [r for r in rows if r[0] == layout]
        fig, ax = plt.subplots(figsize=(9, 5))
        for r in mine:
            series = r[10].get("series", [])
            if series:
                ax.plot([p["t_s"] for p in series], [p["records"] for p in series], label=r[1])
        ax.set_xlabel("seconds")
        ax.set_ylabel("records/s")
        ax.set_title(f"Throughput over time ({layout})")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(os.path.join(out, f"throughput-{layout}.png"), dpi=110)
        plt.close(fig)

        fig, ax = plt.subplots(figsize=(9, 5))
        names = ["p50", "p90", "p99", "p999", "p9999", "max"]
        width = 0.8 / max(1, len(mine))
        for i, r in enumerate(mine):
            lat = r[10].get("latency_us", {})
            ax.bar([x + i * width for x in range(len(names))], [lat.get(n, 0) / 1000 for n in names], width, label=r[1])
        ax.set_xticks([x + 0.4 for x in range(len(names))])
        ax.set_xticklabels(names)
        ax.set_yscale("log")
        ax.set_ylabel("ms")
        ax.set_title(f"Latency percentiles ({layout})")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(os.path.join(out, f"latency-{layout}.png"), dpi=110)
        plt.close(fig)
except ImportError:
    print("matplotlib missing: no plots", file=sys.stderr)

readme = os.path.join(os.path.dirname(out), "README.md")
head = """# results/

Measured figures: one folder per run of `scripts/bench.sh` (`<date>-<set>/`), holding the JSON
of every loadgen scenario and baseline, `summary.md`, `machine.txt` and the plots. Every figure
is read beside a baseline measured in the same run (fio for the disk, iperf3 for loopback): the
machine is shared and noisy, so absolute numbers move between runs and ratios move less.

Reproduce: `scripts/bench.sh` (full, about 15 minutes) or `scripts/bench.sh --quick` (under 5).

## Latest
"""
open(readme, "w").write(head + f"\nFrom `{os.path.basename(out)}/`:\n\n" + summary)
print(summary)
