"""``xmr moments eval`` against the official QVHighlights evaluation's own sample output.

    python benchmarks/check_official_eval.py --submission sample_val_preds.jsonl \\
        --gt highlight_val_release.jsonl --official sample_val_preds_metrics_raw.json

The three files are jayleicn/moment_detr's ``standalone_eval/sample_val_preds.jsonl``,
``data/highlight_val_release.jsonl`` and ``standalone_eval/sample_val_preds_metrics_raw.json`` (not
shipped here: QVHighlights annotations are CC BY-NC-SA). Every number of the official output is
compared with ours (both are rounded to two decimals); exit 1 on any difference or missing key.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.moments.data import read_jsonl  # noqa: E402
from models.moments.metrics import eval_submission  # noqa: E402


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out |= flatten(value, f"{prefix}{key}/")
        else:
            out[prefix + key] = value
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--submission", type=Path, required=True)
    ap.add_argument("--gt", type=Path, required=True)
    ap.add_argument("--official", type=Path, required=True)
    args = ap.parse_args()
    ours = flatten(eval_submission(read_jsonl(args.submission), read_jsonl(args.gt)))
    theirs = flatten(json.loads(args.official.read_text()))
    bad = [(k, ours.get(k, "missing"), v) for k, v in theirs.items() if ours.get(k) != v]
    print(f"{len(theirs) - len(bad)} of {len(theirs)} official values equal")  # noqa: T201
    for key, got, want in bad:
        print(f"  {key}: ours {got}, official {want}")  # noqa: T201
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
