"""Split the real-news set once into a development half and a held-out half.

The split is random but reproducible: one fixed seed, strata visited in a
fixed order, members sorted by id before shuffling. Running the script again
on the same items.jsonl rewrites byte-identical dev.jsonl and heldout.jsonl,
so the held-out half cannot drift towards the rules.

Each stratum (language x label x borderline, as labelled at collection: an
item corrected later carries its first label in "relabelled") is halved; an odd stratum's extra
item goes alternately to dev and to held-out, so the halves differ by at most
one item per language.

Usage:
    python tests/labelled_real/split.py           # (re)write dev.jsonl, heldout.jsonl
    python tests/labelled_real/split.py --check   # exit 1 if the files on disk differ
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

SEED = 20261204
HERE = Path(__file__).resolve().parent
ITEMS = HERE / "items.jsonl"
OUTPUTS = {"dev": HERE / "dev.jsonl", "heldout": HERE / "heldout.jsonl"}
REQUIRED = {"id", "title", "summary", "lang", "label", "kind", "url", "date", "source", "origin"}
KINDS = {"positive", "hard_negative", "negative"}


def load_items(path: Path) -> list[dict]:
    """Read and validate every line, so a broken item fails here, not in a score."""
    items: list[dict] = []
    seen: set[str] = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        item = json.loads(line)
        where = f"{path.name}:{number}"
        if set(item) - REQUIRED - {"borderline", "relabelled", "date_source"} or not REQUIRED <= set(item):
            raise SystemExit(f"{where}: unexpected or missing fields {sorted(item)}")
        if item["lang"] not in {"en", "uk", "ru"} or item["kind"] not in KINDS or not item["url"]:
            raise SystemExit(f"{where}: bad lang, kind or url")
        if item["label"] != (item["kind"] == "positive"):
            raise SystemExit(f"{where}: label and kind disagree")
        if item["id"] in seen:
            raise SystemExit(f"{where}: duplicate id {item['id']}")
        seen.add(item["id"])
        items.append(item)
    return items


def split(items: list[dict]) -> dict[str, list[dict]]:
    """Stratified 50/50 split; output keeps the order of items.jsonl."""
    rng = random.Random(SEED)
    strata: dict[tuple[str, bool, bool], list[dict]] = {}
    for item in items:
        strata.setdefault(_collected(item), []).append(item)
    dev_ids: set[str] = set()
    odd_goes_to_dev = True
    for key in sorted(strata):
        members = sorted(strata[key], key=lambda item: item["id"])
        rng.shuffle(members)
        half = len(members) // 2
        if len(members) % 2:
            half += 1 if odd_goes_to_dev else 0
            odd_goes_to_dev = not odd_goes_to_dev
        dev_ids.update(item["id"] for item in members[:half])
    return {
        "dev": [item for item in items if item["id"] in dev_ids],
        "heldout": [item for item in items if item["id"] not in dev_ids],
    }


def _collected(item: dict) -> tuple[str, bool, bool]:
    """The stratum of an item by its label at collection (before any correction)."""
    if "relabelled" in item:
        first = item["relabelled"]["from"]
        return item["lang"], first is True, first == "borderline"
    return item["lang"], item["label"], bool(item.get("borderline"))


def render(items: list[dict]) -> str:
    return "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items)


def main(argv: list[str]) -> int:
    halves = {name: render(part) for name, part in split(load_items(ITEMS)).items()}
    if argv == ["--check"]:
        stale = [name for name, text in halves.items()
                 if not OUTPUTS[name].exists() or OUTPUTS[name].read_text(encoding="utf-8") != text]
        if stale:
            print(f"out of date: {', '.join(stale)}; run tests/labelled_real/split.py", file=sys.stderr)
            return 1
        return 0
    if argv:
        print(__doc__, file=sys.stderr)
        return 2
    for name, text in halves.items():
        OUTPUTS[name].write_text(text, encoding="utf-8", newline="\n")
        print(f"{OUTPUTS[name].name}: {text.count(chr(10))} items")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
