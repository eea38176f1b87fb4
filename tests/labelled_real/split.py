"""Split the real-news set into a development half and a held-out half, once.

The split is random but reproducible: one fixed seed, strata visited in a
fixed order, members sorted by id before shuffling. Each stratum (language x
label x borderline, as labelled at collection: an item corrected later
carries its first label in "relabelled") is halved; an odd stratum's extra
item goes alternately to dev and to held-out, so the halves differ by at most
one item per language.

The assignment is recorded in split_ids.json, one batch per split: the first
split of every item collected at first (dated or not), then the items added
later, split among themselves with the same seed and procedure. An item never
changes halves: a new run splits only the items of items.jsonl that no batch
holds yet and appends them as a new batch. dev.jsonl and heldout.jsonl are
the items of items.jsonl (dated items; undated.jsonl is never split) in their
recorded half.

Usage:
    python tests/labelled_real/split.py           # split new items, (re)write dev.jsonl, heldout.jsonl
    python tests/labelled_real/split.py --check   # exit 1 if an item is unsplit, a batch is not
                                                  # what the seed gives, or a file on disk differs
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

SEED = 20261204
HERE = Path(__file__).resolve().parent
ITEMS = HERE / "items.jsonl"
UNDATED = HERE / "undated.jsonl"
SPLIT_IDS = HERE / "split_ids.json"
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


def load_batches() -> list[dict]:
    if not SPLIT_IDS.exists():
        return []
    return json.loads(SPLIT_IDS.read_text(encoding="utf-8"))["batches"]


def new_batch(items: list[dict], batches: list[dict]) -> dict | None:
    """The split of the items no batch holds yet, or None when every item is split."""
    assigned = {item_id for batch in batches for half in ("dev", "heldout") for item_id in batch[half]}
    new = [item for item in items if item["id"] not in assigned]
    if not new:
        return None
    halves = split(new)
    return {"what": "items added after the first split, split among themselves",
            "dev": [item["id"] for item in halves["dev"]], "heldout": [item["id"] for item in halves["heldout"]]}


def batch_errors(batches: list[dict], known: dict[str, dict]) -> list[str]:
    """Each recorded batch must be exactly what the seeded split gives on its own items."""
    errors = []
    for number, batch in enumerate(batches, 1):
        ids = batch["dev"] + batch["heldout"]
        missing = [item_id for item_id in ids if item_id not in known]
        if missing:
            errors.append(f"batch {number}: ids in neither items.jsonl nor undated.jsonl: {missing[:5]}")
            continue
        members = sorted((known[item_id] for item_id in ids), key=lambda item: item["id"])
        halves = split(members)
        if {item["id"] for item in halves["heldout"]} != set(batch["heldout"]):
            errors.append(f"batch {number}: its halves are not what the seed gives on its items")
    return errors


def halves_of(items: list[dict], batches: list[dict]) -> dict[str, list[dict]]:
    """The dated items in their recorded half, in the order of items.jsonl."""
    return {half: [item for item in items if item["id"] in {i for batch in batches for i in batch[half]}]
            for half in ("dev", "heldout")}


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


def write_batches(batches: list[dict]) -> None:
    document = {"seed": SEED, "batches": batches}
    SPLIT_IDS.write_text(json.dumps(document, ensure_ascii=False, indent=1) + "\n", encoding="utf-8", newline="\n")


def render(items: list[dict]) -> str:
    return "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items)


def main(argv: list[str]) -> int:
    if argv not in ([], ["--check"]):
        print(__doc__, file=sys.stderr)
        return 2
    items = load_items(ITEMS)
    undated = load_items(UNDATED) if UNDATED.exists() else []
    batches = load_batches()
    errors = batch_errors(batches, {item["id"]: item for item in items + undated})
    if errors:
        print("\n".join(errors), file=sys.stderr)
        return 1
    batch = new_batch(items, batches)
    if argv == ["--check"]:
        if batch:
            print(f"{len(batch['dev']) + len(batch['heldout'])} items not split yet;"
                  f" run tests/labelled_real/split.py", file=sys.stderr)
            return 1
        halves = {name: render(part) for name, part in halves_of(items, batches).items()}
        stale = [name for name, text in halves.items()
                 if not OUTPUTS[name].exists() or OUTPUTS[name].read_text(encoding="utf-8") != text]
        if stale:
            print(f"out of date: {', '.join(stale)}; run tests/labelled_real/split.py", file=sys.stderr)
            return 1
        return 0
    if batch:
        batches.append(batch)
        write_batches(batches)
        print(f"split_ids.json: batch {len(batches)} splits {len(batch['dev'])} new items to dev,"
              f" {len(batch['heldout'])} to held-out")
    halves = {name: render(part) for name, part in halves_of(items, batches).items()}
    for name, text in halves.items():
        OUTPUTS[name].write_text(text, encoding="utf-8", newline="\n")
        print(f"{OUTPUTS[name].name}: {text.count(chr(10))} items")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
