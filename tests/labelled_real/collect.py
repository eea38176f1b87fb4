"""Build items.jsonl from the collected records, once, before any rule change.

Two sources, both real published news:
  * the real feed snapshots in tests/fixtures/feeds/ (read with monitor's own
    parser, so title and summary are what the daemon would see);
  * raw/*.txt: items copied from pages of English, Ukrainian and Russian
    outlets found with the session's search tool. Each record is

        @|LANG|LABEL|URL|DATE|OUTLET|SEARCH QUERY[|DATE SOURCE]
        T|title as published ("" when the page showed no headline)
        S|lead as published ("" when there is none)

    LABEL is 1 (China's role in the war), 0 (not), or b (borderline: left
    out of the scores). See README.md for the policy. DATE is YYYY-MM-DD or
    empty. The optional DATE SOURCE says where a date was found when the
    item's own stored page did not show it: the URL of the page where the
    date was seen, "url path: ..." or "article text: ..."; it becomes the
    item's "date_source".

Label corrections found after the split (CORRECTIONS below) are applied by
id and recorded in the item ("relabelled": the label at collection and why it
changed); split.py stratifies on the label at collection, so a correction
never moves an item between the halves.

Ids are assigned in a fixed order (fixtures first, then raw files by name),
so rerunning on the same inputs rewrites byte-identical files. A raw file
added later must sort after the existing ones of its language (raw/ru9b.txt
after raw/ru9.txt), or the ids of existing items would shift.

Only dated items are scored: an item without a publication date goes to
undated.jsonl (kept for reference, never split or scored), the others to
items.jsonl. Ids are assigned before that, so moving an item out never
renumbers the rest.

Usage:
    python tests/labelled_real/collect.py           # (re)write items.jsonl, undated.jsonl
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "feeds"
FEEDS = {
    "other_feeder_rss_theguardian.xml": ("The Guardian", "en"),
    "other_rss-parser_guardian.rss": ("The Guardian", "en"),
    "scmp_hknews-backend_rss2-feed.xml": ("South China Morning Post", "en"),
    "other_feeder_rss_ukrnet.xml": ("ukr.net", "uk"),
}
# Fixture stories about China's role (everything else in them is not).
FIXTURE_TRUE = ("Russia’s allies China and India call", "Patience with Putin may be ebbing")
FIXTURE_BORDERLINE = ("Торгівля між Росією та Китаєм у 2023",)
# A negative is "hard" when it names China, the war or its parties: the
# shapes a keyword watch confuses. The rest are ordinary unrelated news.
# Applied after ids are assigned: id -> (True | False | None for borderline, why).
_TOO_SHORT = "the title and lead as published do not name China (the page's headline was not shown): too short to tell"
_TRADE = "China-Russia trade figures with no war, sanctions or leverage link: borderline by the policy"
CORRECTIONS: dict[str, tuple[bool | None, str]] = {
    "en-r168": (None, _TOO_SHORT), "ru-r010": (None, _TOO_SHORT), "uk-r069": (None, _TOO_SHORT),
    "uk-r080": (None, _TOO_SHORT),
    "ru-r068": (None, _TRADE), "ru-r069": (None, _TRADE), "ru-r070": (None, _TRADE), "ru-r071": (None, _TRADE),
}
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
HARD = re.compile(r"chin|beijing|hong kong|taiwan|xi jinping|\bpla\b|russia|ukrain|kyiv|kiev|putin|donbas|"
                  r"luhansk|lugansk|"
                  r"war\b|китай|китаї|пекін|пекин|тайван|кнр|ноак|росі|росс|рф\b|україн|украин|війн|войн|путін|путин|"
                  r"обстріл|обстрел|санкці|санкци|лавров|зеленськ|зеленск", re.IGNORECASE)


def fixture_records() -> list[dict]:
    sys.path.insert(0, str(ROOT))
    from monitor.ingest.parse import parse_feed

    records = []
    for name, (outlet, lang) in FEEDS.items():
        parsed = parse_feed((FIXTURES / name).read_bytes(), {}, feed=name, url="file:///" + name)
        for entry in parsed.entries:
            label: bool | None = entry.title.startswith(FIXTURE_TRUE)
            if entry.title.startswith(FIXTURE_BORDERLINE):
                label = None
            records.append({"lang": lang, "label": label, "url": entry.url,
                            "date": entry.published.date().isoformat() if entry.published else None,
                            "source": outlet, "origin": f"fixture:{name}",
                            "title": entry.title, "summary": entry.summary})
    return records


def raw_records() -> list[dict]:
    records = []
    for path in sorted((HERE / "raw").glob("*.txt")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for number in range(0, len(lines), 3):
            head, title, summary = lines[number:number + 3]
            where = f"{path.name}:{number + 1}"
            fields = head.split("|")
            malformed = fields[0] != "@" or len(fields) not in {7, 8}
            if malformed or not title.startswith("T|") or not summary.startswith("S|"):
                raise SystemExit(f"{where}: malformed record")
            _, lang, label, url, date, outlet, query, *date_source = fields
            if lang not in {"en", "uk", "ru"} or label not in {"0", "1", "b"} or not url.startswith("http"):
                raise SystemExit(f"{where}: bad lang, label or url")
            if date and not DATE.fullmatch(date):
                raise SystemExit(f"{where}: date {date!r} is not YYYY-MM-DD")
            if date_source and not (date and date_source[0]):
                raise SystemExit(f"{where}: a date source needs a date and must not be empty")
            if not (title[2:] or summary[2:]):
                raise SystemExit(f"{where}: neither title nor summary")
            records.append({"lang": lang, "label": None if label == "b" else label == "1", "url": url,
                            "date": date or None, "source": outlet, "origin": f"search:{query}",
                            "title": title[2:], "summary": summary[2:],
                            **({"date_source": date_source[0]} if date_source else {})})
    return records


def build() -> list[dict]:
    items, seen, counters = [], set(), {"en": 0, "uk": 0, "ru": 0}
    for record in fixture_records() + raw_records():
        key = (record["title"], record["summary"])
        if key in seen:
            continue
        seen.add(key)
        counters[record["lang"]] += 1
        label = record["label"]
        text = record["title"] + " " + record["summary"]
        kind = "positive" if label else ("hard_negative" if label is None or HARD.search(text) else "negative")
        item_id = f"{record['lang']}-r{counters[record['lang']]:03d}"
        relabelled = None
        if item_id in CORRECTIONS:
            relabelled = {"from": "borderline" if label is None else label, "reason": CORRECTIONS[item_id][1]}
            label = CORRECTIONS[item_id][0]
        kind = "positive" if label else ("hard_negative" if label is None or HARD.search(text) else "negative")
        item = {"id": item_id, "title": record["title"],
                "summary": record["summary"], "lang": record["lang"], "label": bool(label), "kind": kind}
        if label is None:
            item["borderline"] = True
        if relabelled:
            item["relabelled"] = relabelled
        item.update({"url": record["url"], "date": record["date"]})
        if "date_source" in record:
            item["date_source"] = record["date_source"]
        item.update({"source": record["source"], "origin": record["origin"]})
        items.append(item)
    return items


def write_jsonl(name: str, items: list[dict]) -> None:
    (HERE / name).write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items),
                             encoding="utf-8", newline="\n")


def main() -> int:
    everything = build()
    items = [item for item in everything if item["date"]]
    undated = [item for item in everything if not item["date"]]
    write_jsonl("items.jsonl", items)
    write_jsonl("undated.jsonl", undated)
    print(f"undated.jsonl: {len(undated)} items without a date (not scored)")
    for lang in ("en", "uk", "ru"):
        mine = [i for i in items if i["lang"] == lang]
        print(f"{lang}: {len(mine)} items, {sum(i['label'] for i in mine)} true,"
              f" {sum(bool(i.get('borderline')) for i in mine)} borderline,"
              f" {sum(i['kind'] != 'negative' for i in mine)} hard")
    print(f"all: {len(items)} items, {sum(i['kind'] != 'negative' for i in items)} hard")
    return 0


if __name__ == "__main__":
    sys.exit(main())
