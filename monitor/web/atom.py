"""`/matches.atom`: the matched stories as an Atom 1.0 feed, so a person can
follow them in any feed reader. Every value is feed text: it is cleaned of what
XML cannot carry and escaped by ElementTree.
"""

from __future__ import annotations

import json
import re
import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from monitor.alert.render import render_alert
from monitor.models import AlertView, RuleHit
from monitor.store.database import StoreThread
from monitor.store.matches import latest_matches
from monitor.store.values import from_text, to_text

ATOM_NS = "http://www.w3.org/2005/Atom"
ATOM_TYPE = "application/atom+xml; charset=utf-8"
# Characters XML 1.0 cannot carry at all, not even escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


# --------------------------------------------------------------------------
# the matches feed
# --------------------------------------------------------------------------


async def matches_atom(store: StoreThread, *, title: str, limit: int = 100) -> bytes:
    """An Atom 1.0 feed of the latest matched stories, one entry per story with every rule
    it matched and why."""
    rows = await store.call(latest_matches, limit)
    return build_atom(rows, title=title, now=datetime.now(UTC))


def build_atom(rows: list[dict[str, Any]], *, title: str, now: datetime) -> bytes:
    """The feed document: every value is feed text, so it is cleaned and escaped."""
    feed = ET.Element("feed", xmlns=ATOM_NS)
    _child(feed, "id", _urn("matches", title))
    _child(feed, "title", _xml_text(title))
    _child(feed, "updated", rows[0]["created"] if rows else to_text(now))
    _child(ET.SubElement(feed, "author"), "name", "monitor")
    _child(feed, "generator", "monitor")
    for row in rows:
        _entry(feed, row)
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)


def _entry(feed: ET.Element, row: dict[str, Any]) -> None:
    view = _view(row)
    entry = ET.SubElement(feed, "entry")
    _child(entry, "id", _urn("story", row["feed_id"], row["guid"]))
    more = len(view.rules) - 1
    _child(entry, "title", _xml_text(f"[{view.rule}{f' +{more}' if more else ''}] {row['title']}"))
    _child(entry, "updated", row["created"])
    if row["published"]:
        _child(entry, "published", row["published"])
    url = row["url"] or ""
    if urlsplit(url).scheme.lower() in ("http", "https"):
        ET.SubElement(entry, "link", rel="alternate", href=_NOT_XML.sub("", url))
    for hit in view.rules:
        ET.SubElement(entry, "category", term=_xml_text(hit.rule))
    _child(entry, "content", _NOT_XML.sub("", render_alert(view, "UTC").html), type="html")


def _view(row: dict[str, Any]) -> AlertView:
    hits = sorted((RuleHit(rule=m["rule"], severity=m["severity"], score=m["score"],
                           snippet=m["snippet"],
                           terms=tuple(dict.fromkeys(hit["term"] for hit in m["hits"])))
                   for m in json.loads(row["matches"])), key=RuleHit.order)
    top = hits[0]
    return AlertView(rule=top.rule, severity=top.severity, score=top.score,
                     title=row["title"], url=row["url"], feed=row["feed"],
                     published=from_text(row["published"]), snippet=top.snippet, terms=top.terms,
                     rules=tuple(hits))


def _child(parent: ET.Element, tag: str, text: str, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attributes)
    element.text = text
    return element


def _urn(*parts: object) -> str:
    """A stable id: the same story keeps its own across restarts and feed renames."""
    return "urn:uuid:" + str(uuid.uuid5(uuid.NAMESPACE_URL, "monitor:" + "\n".join(map(str, parts))))


def _xml_text(value: str) -> str:
    """One line of text XML can carry (ElementTree escapes it; it cannot drop what XML forbids)."""
    return " ".join(_NOT_XML.sub("", value).split())
