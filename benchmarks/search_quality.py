"""Retrieval quality through the service's own path (ONNX encoder + FAISS bundle), over the whole
published collection rather than one split: each held-out caption must find its video among all
indexed videos.

    python benchmarks/search_quality.py --root bundles --data data/demo --split test
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bundle  # noqa: E402
from models.data.paraphrase import paraphrase  # noqa: E402
from models.metrics import retrieval_metrics  # noqa: E402
from service.store import load_bundle  # noqa: E402


def ranks_for(live, queries: list[tuple[str, str]], modality: str, n: int) -> np.ndarray:
    vecs = live.encoder.encode([q for q, _ in queries])
    results = live.searcher.search(vecs, n, modality)
    row_of = {it.id: it.row for it in live.searcher.items(list(range(live.searcher.index.ntotal))).values()}
    out = []
    for (_, gt), hits in zip(queries, results, strict=True):
        rows = [r for r, _ in hits]
        out.append(rows.index(row_of[gt]) if row_of[gt] in rows else n)
    return np.array(out)


KINDS = ("whole-item caption", "paraphrased whole-item caption", "per-event caption")


def query_sets(item: dict) -> dict[str, list[str]]:
    """Queries for one held-out item, by kind; paraphrases exist for video captions only."""
    caps = [c["caption"] for c in item["captions"]]
    sets = {KINDS[0]: caps[:1], KINDS[2]: caps[1:]}
    if item["modality"] == "video":
        sets[KINDS[1]] = [paraphrase(caps[0])]
    return sets


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", type=Path, default=Path("bundles"))
    ap.add_argument("--data", type=Path, default=Path("data/demo"))
    ap.add_argument("--split", default="test")
    ap.add_argument("--collection", default="demo")
    args = ap.parse_args()
    live = load_bundle(args.root / args.collection / bundle.read_current(args.root, args.collection))
    items = [json.loads(x) for x in (args.data / "manifest.jsonl").read_text().splitlines()]
    rows = []
    for modality in ("video", "image"):
        pool = [i for i in items if i["modality"] == modality]
        held = [i for i in pool if i["split"] == args.split]
        for kind in KINDS:
            queries = [(q, i["id"]) for i in held for q in query_sets(i).get(kind, [])]
            if not queries:
                continue
            m = retrieval_metrics(ranks_for(live, queries, modality, len(pool)))
            rows.append((modality, kind, len(queries), len(pool), m))
    print("| gallery | query | queries | gallery size | R@1 | R@5 | R@10 | MdR | MnR | chance R@10 |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for modality, kind, nq, n, m in rows:
        print(
            f"| {modality} | {kind} | {nq} | {n} | {m['R@1']:.1f} | {m['R@5']:.1f} | {m['R@10']:.1f} | "
            f"{m['MdR']:.0f} | {m['MnR']:.1f} | {100 * 10 / n:.1f} |"
        )


if __name__ == "__main__":
    main()
