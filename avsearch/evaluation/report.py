"""An evaluation's result as JSON and as a markdown table, with what produced the numbers:
avsearch version, model id and checkpoint hash, settings, machine and time. Numbers without
that record cannot be compared with anything."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Optional

import avsearch

METRICS = ("R@1", "R@5", "R@10", "MRR", "nDCG@10")


def provenance(index, settings: dict) -> dict:
    """Who and what made the numbers. The checkpoint hash is the model id's digest: a sha256
    over the config, the weight files' headers and samples, and the tokenizer (see
    avsearch/models/wave/identity.py); the same weights anywhere give the same hash."""
    from avsearch.models.describe import device_description

    meta = index.store.meta
    return {
        "avsearch_version": avsearch.__version__,
        "model_id": meta.model_id,
        "model_source": meta.model_source,
        "checkpoint_hash": meta.model_id.split(":", 1)[-1],
        "dim": meta.dim,
        "settings": settings | {"index": index.settings.__dict__ | {"views": list(index.settings.views)}},
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpus": os.cpu_count(), "device": device_description(), "host": platform.node()},
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def build_report(name: str, result: dict, record: dict, seconds: Optional[dict] = None) -> dict:
    return {"evaluation": name, **record, "queries": result.get("queries"),
            "directions": [d.to_dict() for d in result["directions"]],
            "problems": [p.to_dict() for p in result["problems"]], "seconds": seconds or {}}


def write_report(report: dict, out_dir: str | Path) -> tuple[Path, Path]:
    """<out>/<evaluation>-<time>.json and .md; returns both paths."""
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{report['evaluation']}-{report['created_at'].replace(':', '').replace('-', '')}"
    json_path, md_path = out / f"{stem}.json", out / f"{stem}.md"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    md_path.write_text(to_markdown(report))
    return json_path, md_path


def to_markdown(report: dict) -> str:
    """One table: a row per direction and search (exact, IVF), each metric in percent with its
    95% bootstrap interval, and the paper's figure where it published one."""
    lines = [f"# avsearch eval {report['evaluation']}", "",
             f"model `{report['model_source']}` (id `{report['model_id']}`, checkpoint hash "
             f"`{report['checkpoint_hash']}`), avsearch {report['avsearch_version']}, {report['created_at']}, "
             f"{report['machine']['device']} on {report['machine']['platform']}", "",
             f"settings: `{json.dumps(report['settings'], sort_keys=True)}`", "",
             "| direction | search | queries | gallery | " + " | ".join(METRICS) + " | paper |",
             "|---|---|---|---|" + "---|" * len(METRICS) + "---|"]
    for d in report["directions"]:
        legs = [("exact", d["exact"]), ("IVF", d["ann"])]
        for leg, metrics in legs:
            if not d["queries"]:  # nothing scored: neither leg has numbers, and the reason is the queries'
                why = "no query could be scored" + (" (see Left out)" if report["problems"] else "")
                cells = [f"n/a: {why}"] + [""] * (len(METRICS) - 1)
            elif metrics is None:
                cells = [f"n/a: {d['ann_note'] or 'not measured'}"] + [""] * (len(METRICS) - 1)
            else:
                cells = [_cell(metrics.get(m)) for m in METRICS]
            paper = _paper(d.get("paper")) if leg == "exact" else ""
            lines.append(f"| {d['name']} | {leg} | {d['queries']} | {d['gallery']} | " + " | ".join(cells)
                         + f" | {paper} |")
    lines += ["", "Metrics in percent with a 95% bootstrap interval over queries; recall@k = share of queries "
              "with a relevant hit in the top k (the paper's R@k)."]
    notes = {d["paper"]["source"] for d in report["directions"] if d.get("paper")}
    lines += [f"Paper figures: {n}" for n in sorted(notes)]
    if report["problems"]:
        lines += ["", f"## Left out ({len(report['problems'])})", ""]
        lines += [f"- {p['where']}: {p['error']}" for p in report["problems"]]
    return "\n".join(lines) + "\n"


def _cell(m: Optional[dict]) -> str:
    if not m:
        return ""
    return f"{100 * m['mean']:.1f} [{100 * m['ci_low']:.1f}–{100 * m['ci_high']:.1f}]"


def _paper(p: Optional[dict]) -> str:
    if not p:
        return ""
    if p.get("value") is None:
        return "not published in the WAVE paper's tables"
    return f"{p['metric']} {p['value']:.1f}"
