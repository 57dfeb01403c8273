"""The dress rehearsal's report (`make rehearsal`): per rule of the paper config run at paper size, its
jobs, the measured seconds a training step, the step `rarts plan` projects from a CPU step table
measured at paper size (their ratio), and each job's peak memory against its rule's `mem_mb`.

The jobs come from Snakemake's own dry run of the targets (as `rarts plan` takes them), with each
job's log, outputs and resources; a job's peak memory from the usage file beside its log
(`rarts.core.usage`), its step time from the `step_s` of its last epoch. A request below a measured peak,
or a plan off by more than PLAN_TOLERANCE either way, is a finding.
"""

from __future__ import annotations

import json
import math
import statistics
import tempfile
from pathlib import Path

from rarts.pipeline import costs
from rarts.planning import plan
from rarts.pipeline.io import write_csv, write_text

PLAN_TOLERANCE = 1.5


def measured_step(outputs: list[str]) -> float | None:
    """The last epoch's seconds a step, from the history a job wrote (search or training)."""
    for out in map(Path, outputs):
        if out.suffix != ".json" or not out.is_file():
            continue
        record = json.loads(out.read_text())
        history = record.get("epochs") or record.get("history") if isinstance(record, dict) else None
        if history and "step_s" in history[-1]:
            return history[-1]["step_s"]
    return None


def planned_step(args, table: costs.StepTable) -> float | None:
    """Wall seconds a step of this job by the plan's model (`costs.StepTable.train_step` for its ranks and
    the cell it trains)."""
    command = getattr(args, "command", None)
    if command == "search" and args.algo in costs.PASSES:
        hp = args.spec["hp"]
        return table.search_step(args.space, args.algo, args.spec.get("net", {}).get("name"), hp["batch_size"])
    if command in ("train", "width-train"):
        net = args.net if command == "train" else args.spec["net"]["name"]
        return table.train_step(net, args.spec["hp"]["batch_size"], ranks=getattr(args, "gpus", 1),
                                cell=plan.job_cell(args))
    return None


def job_rows(jobs: list[dict], table: costs.StepTable) -> list[dict]:
    rows = []
    for job in jobs:
        usage_file = Path(job["log"] + ".usage.json") if job["log"] else None
        usage = json.loads(usage_file.read_text()) if usage_file and usage_file.is_file() else {}
        args = plan.parse_command(job["shell"])
        rows.append({"rule": job["rule"], "log": job["log"], "mem_mb": job["resources"].get("mem_mb"),
                     "peak_pss_mb": usage.get("peak_pss_mb"), "peak_rss_mb": usage.get("peak_rss_mb"),
                     "wall_s": usage.get("wall_s"), "measured_step_s": measured_step(job["outputs"]),
                     "planned_step_s": planned_step(args, table) if args is not None else None})
    return rows


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def rule_rows(jobs: list[dict]) -> list[dict]:
    """One row per rule: its jobs' medians of the step times and of each job's measured / planned (its
    jobs differ: each retraining is planned for its own cell), their range, the largest peak against its
    request."""
    by_rule: dict[str, list[dict]] = {}
    for j in jobs:
        by_rule.setdefault(j["rule"], []).append(j)
    rows = []
    for rule, js in by_rule.items():
        measured, planned = _median(j["measured_step_s"] for j in js), _median(j["planned_step_s"] for j in js)
        ratios = [j["measured_step_s"] / j["planned_step_s"] for j in js
                  if j["measured_step_s"] and j["planned_step_s"]]
        ratio = _median(ratios)
        peaks = [(j["peak_pss_mb"] / j["mem_mb"], j) for j in js if j["peak_pss_mb"] is not None and j["mem_mb"]]
        worst = max(peaks, key=lambda t: t[0])[1] if peaks else {}
        findings = []
        if peaks and worst["peak_pss_mb"] > worst["mem_mb"]:
            findings.append(f"peak {worst['peak_pss_mb']:.0f} MB > request {worst['mem_mb']} MB ({worst['log']})")
        if ratio is not None and abs(math.log(ratio)) > math.log(PLAN_TOLERANCE):
            findings.append(f"measured step {ratio:.2f}× the plan's")
        measured_jobs = sum(j["wall_s"] is not None for j in js)
        if measured_jobs < len(js):
            findings.append(f"{len(js) - measured_jobs} of {len(js)} jobs have no usage file (not run?)")
        rows.append({"rule": rule, "jobs": len(js), "measured_step_s": measured, "planned_step_s": planned,
                     "measured_over_planned": ratio,
                     "job_ratios": f"{min(ratios):.2f}–{max(ratios):.2f}" if ratios else None,
                     "peak_pss_mb": worst.get("peak_pss_mb"), "peak_rss_mb": worst.get("peak_rss_mb"),
                     "mem_mb_request": worst.get("mem_mb"),
                     "peak_over_request": worst["peak_pss_mb"] / worst["mem_mb"] if peaks else None,
                     "job_seconds": sum(j["wall_s"] or 0 for j in js), "finding": "; ".join(findings)})
    return sorted(rows, key=lambda r: -r["job_seconds"])


def report_main(args) -> list[dict]:
    import pandas as pd

    with tempfile.TemporaryDirectory() as tmp:  # the run's own config: the dry run lists the jobs it ran
        configfile = Path(tmp) / "config.json"
        configfile.write_text(json.dumps(args.config))
        jobs = [j for j in plan.dry_run_jobs(args.targets, [str(configfile)]) if j["rule"] not in args.unmeasured]
    table = costs.StepTable.load(args.bench, required=True)
    rows = rule_rows(job_rows(jobs, table))
    df = pd.DataFrame(rows)
    write_csv(args.csv, df)
    total = df.job_seconds.sum()
    top = ", ".join(f"{r.rule} {r.job_seconds / total:.0%}" for r in df.head(4).itertuples())
    findings = [f"{r.rule}: {r.finding}" for r in df.itertuples() if r.finding]
    shown = df.drop(columns=["finding"]).round(3).astype(object).where(df.notna(), "")
    lines = ["# Rehearsal report: the paper config at paper size", "",
             f"**{costs_note(table)}**", "", shown.to_markdown(index=False), "",
             f"- {len(jobs)} jobs, {total / 3600:.2f} job-hours on this machine; the largest shares: {top}.",
             "- measured_step_s: the last epoch's seconds a training step (median over the rule's jobs); "
             "planned_step_s: what `rarts plan` projects from the step table above (a retraining's for the cell "
             "it trains); measured_over_planned: the median of the jobs' ratios, job_ratios their range; a "
             f"median outside 1/{PLAN_TOLERANCE}–{PLAN_TOLERANCE} is a finding.",
             "- peak_pss_mb: the largest peak of the rule's jobs (their whole process trees, `rarts.core.usage`) "
             "against that job's mem_mb request; a request below its peak is a finding.",
             "- What this proves: every rule runs at the paper's sizes (networks, resolutions, batches, ranks) on "
             "the real loaders and formats, to the end of two epochs with a checkpoint and a resume point each. "
             "What it cannot: GPU kernels, bf16 and cuDNN (see `make gpu-check`), the real data's content, or the "
             "time a real run takes (a CPU step table plans CPU steps).", ""]
    lines += ["## Findings", ""] + ([f"- {f}" for f in findings] or ["- none"]) + [""]
    write_text(args.md, "\n".join(lines))
    return rows


def costs_note(table: costs.StepTable) -> str:
    return f"REHEARSAL DATA (synthetic, at the real sizes): planned from {table.where}."
