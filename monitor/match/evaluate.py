"""Score a watch on labelled items: how a user checks a watch before trusting it.

`load_labelled` reads JSON Lines items (``id``, ``title``, ``summary``,
``lang``, ``label``, optional ``borderline``; ``relevant`` is read as
``label``, as the project's written set spells it) and names the file and line
of any mistake. `evaluate` runs the watch over them as the daemon would (an item
is flagged when ANY enabled rule matches its title and summary) and returns
precision, recall and F1 per language and overall, with every miss and false
alarm explained: a false alarm by the matches that fired, a miss by the rules
whose query held but whose score fell short, and by the entities and groups
the text names at all. Borderline items are counted but never scored.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from monitor.errors import UsageError
from monitor.match.engine import Matcher
from monitor.match.explain import as_dict
from monitor.match.query import parse_query
from monitor.match.watch import Rule, Watch
from monitor.models import Match

REQUIRED = {"id": (str, int), "title": (str,), "summary": (str,), "lang": (str,), "label": (bool,)}
OVERALL = "all"


class LabelledSetError(UsageError):
    """A labelled file that cannot be scored: says which file and line, and why (exit 2)."""


@dataclass(frozen=True)
class LabelledItem:
    id: str | int
    title: str
    summary: str
    lang: str
    label: bool
    borderline: bool = False
    line: int = 0


@dataclass(frozen=True)
class Score:
    """Confusion counts of one language (or of all), and the figures derived from them."""

    scope: str
    true_pos: int = 0
    false_pos: int = 0
    false_neg: int = 0
    true_neg: int = 0
    borderline: int = 0  # seen, not scored

    @property
    def scored(self) -> int:
        return self.true_pos + self.false_pos + self.false_neg + self.true_neg

    @property
    def precision(self) -> float:
        flagged = self.true_pos + self.false_pos
        return self.true_pos / flagged if flagged else 1.0

    @property
    def recall(self) -> float:
        relevant = self.true_pos + self.false_neg
        return self.true_pos / relevant if relevant else 1.0

    @property
    def f1(self) -> float:
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total else 0.0

    def line(self) -> str:
        return (f"{self.scope:4} precision={self.precision:.3f} recall={self.recall:.3f} f1={self.f1:.3f}"
                f"  (tp={self.true_pos} fp={self.false_pos} fn={self.false_neg} tn={self.true_neg},"
                f" scored={self.scored}, borderline={self.borderline})")

    def as_dict(self) -> dict[str, Any]:
        return {"type": "score", "lang": self.scope, "precision": round(self.precision, 4),
                "recall": round(self.recall, 4), "f1": round(self.f1, 4), "tp": self.true_pos,
                "fp": self.false_pos, "fn": self.false_neg, "tn": self.true_neg, "scored": self.scored,
                "borderline": self.borderline}


@dataclass(frozen=True)
class ShortRule:
    """A rule whose query held for a missed item, but whose score stayed below min_score."""

    rule: str
    score: float
    min_score: float


@dataclass(frozen=True)
class Error:
    """One miss (a true item no rule flagged) or false alarm (a false item a rule flagged)."""

    kind: str  # "miss" | "false_alarm"
    item: LabelledItem
    matches: tuple[Match, ...] = ()  # false alarm: what fired
    short: tuple[ShortRule, ...] = ()  # miss: queries that held, scores too low
    named: tuple[tuple[str, tuple[str, ...]], ...] = ()  # miss: "@china" -> matched words

    def as_dict(self) -> dict[str, Any]:
        row: dict[str, Any] = {"type": self.kind, "id": self.item.id, "lang": self.item.lang,
                               "title": self.item.title, "summary": self.item.summary}
        if self.kind == "false_alarm":
            row["matches"] = [as_dict(match) for match in self.matches]
        else:
            row["short"] = [{"rule": s.rule, "score": s.score, "min_score": s.min_score} for s in self.short]
            row["named"] = {name: list(words) for name, words in self.named}
        return row


@dataclass(frozen=True)
class Evaluation:
    scores: dict[str, Score]  # per language, then OVERALL
    errors: tuple[Error, ...] = field(default=())

    @property
    def overall(self) -> Score:
        return self.scores[OVERALL]


def load_labelled(path: Path | str) -> list[LabelledItem]:
    """Every item of a JSON Lines file, validated; blank lines are skipped."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LabelledSetError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise LabelledSetError(f"{path}: is a directory, not a JSON Lines file") from None
    except UnicodeDecodeError as error:
        raise LabelledSetError(f"{path}: not UTF-8 text (byte {error.start})") from None
    except OSError as error:
        raise LabelledSetError(f"{path}: cannot read: {error.strerror}") from None
    items: list[LabelledItem] = []
    seen: dict[str | int, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            data = json.loads(line)
        except ValueError as error:
            raise LabelledSetError(f"{where}: not valid JSON: {error}") from None
        if not isinstance(data, dict):
            raise LabelledSetError(f"{where}: each line must be a JSON object, not {type(data).__name__}")
        if "label" not in data and "relevant" in data:
            data["label"] = data["relevant"]
        for name, types in REQUIRED.items():
            if name not in data:
                raise LabelledSetError(f"{where}: missing field {name!r} (every item needs "
                                       f"{', '.join(REQUIRED)})")
            if not isinstance(data[name], types) or (types != (bool,) and isinstance(data[name], bool)):
                wanted = " or ".join({"str": "a string", "int": "a number", "bool": "true or false"}[t.__name__]
                                     for t in types)
                raise LabelledSetError(f"{where}: field {name!r} must be {wanted}, not {json.dumps(data[name])}")
        borderline = data.get("borderline", False)
        if not isinstance(borderline, bool):
            raise LabelledSetError(f"{where}: field 'borderline' must be true or false, not {json.dumps(borderline)}")
        if data["id"] in seen:
            raise LabelledSetError(f"{where}: duplicate id {json.dumps(data['id'])} (first on line {seen[data['id']]})")
        seen[data["id"]] = number
        items.append(LabelledItem(id=data["id"], title=data["title"], summary=data["summary"],
                                  lang=data["lang"].strip().lower(), label=data["label"],
                                  borderline=borderline, line=number))
    if not items:
        raise LabelledSetError(f"{path}: no labelled items in the file")
    return items


def evaluate(watch: Watch, items: Iterable[LabelledItem], *, explain: bool = True) -> Evaluation:
    """Score WATCH on ITEMS; with EXPLAIN, say why each miss and false alarm happened."""
    matcher = Matcher.compile(watch)
    counts: dict[str, dict[str, int]] = {}
    errors: list[Error] = []
    explainer = _MissExplainer(watch) if explain else None
    for item in items:
        lang_counts = counts.setdefault(item.lang, dict.fromkeys(("tp", "fp", "fn", "tn", "borderline"), 0))
        matches = matcher.match(title=item.title, summary=item.summary, language=item.lang)
        if item.borderline:
            lang_counts["borderline"] += 1
            continue
        key = {(True, True): "tp", (True, False): "fp", (False, True): "fn", (False, False): "tn"}[
            (bool(matches), item.label)]
        lang_counts[key] += 1
        if key == "fp":
            errors.append(Error("false_alarm", item, matches=tuple(matches)))
        elif key == "fn":
            errors.append(explainer.explain(item) if explainer else Error("miss", item))
    scores = {lang: _score(lang, c) for lang, c in sorted(counts.items())}
    total = {name: sum(c[name] for c in counts.values()) for name in ("tp", "fp", "fn", "tn", "borderline")}
    scores[OVERALL] = _score(OVERALL, total)
    return Evaluation(scores=scores, errors=tuple(errors))


def evaluate_file(watch: Watch, path: Path | str, *, explain: bool = True) -> Evaluation:
    return evaluate(watch, load_labelled(path), explain=explain)


def report_lines(evaluation: Evaluation) -> list[str]:
    """The scores, one line per language and one for all, for people."""
    return [score.line() for score in evaluation.scores.values()]


def describe_error(error: Error) -> str:
    """One miss or false alarm for people: the item, then why."""
    item = error.item
    label = "MISS" if error.kind == "miss" else "FALSE ALARM"
    lines = [f"{label} {item.id} [{item.lang}] {item.title or '(no title)'}"]
    if item.summary:
        lines.append(f"  summary: {_clip(item.summary, 160)}")
    if error.kind == "false_alarm":
        for match in error.matches:
            lines.append(f"  fired {match.rule} (score {match.score:g}): {match.snippet}")
        return "\n".join(lines)
    for short in error.short:
        lines.append(f"  {short.rule}: query held, score {short.score:g} < min_score {short.min_score:g}")
    if error.named:
        lines.append("  names: " + "; ".join(f"{name} {', '.join(repr(w) for w in words)}"
                                               for name, words in error.named))
    if not error.short:
        lines.append("  no rule's query held" + ("" if error.named else " (no entity or group term found)"))
    return "\n".join(lines)


def _score(scope: str, c: dict[str, int]) -> Score:
    return Score(scope, true_pos=c["tp"], false_pos=c["fp"], false_neg=c["fn"], true_neg=c["tn"],
                 borderline=c["borderline"])


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1].rstrip() + "…"


class _MissExplainer:
    """Two helper matchers built from the same watch with public types only: the
    rules with no score floor (which queries held?) and one probe rule per
    entity and group (which of them does the text name?)."""

    def __init__(self, watch: Watch) -> None:
        self._floors = {rule.name: rule.min_score for rule in watch.rules if rule.enabled}
        floorless = tuple(replace(rule, min_score=0.0) for rule in watch.rules if rule.enabled)
        self._floorless = Matcher.compile(replace(watch, rules=floorless))
        probes = [_probe(f"@{name}") for name in watch.entities] + [_probe(f"#{name}") for name in watch.groups]
        self._probes = Matcher.compile(replace(watch, rules=tuple(probes)))

    def explain(self, item: LabelledItem) -> Error:
        texts = {"title": item.title, "summary": item.summary}
        short = tuple(ShortRule(m.rule, m.score, self._floors[m.rule])
                      for m in self._floorless.match(title=item.title, summary=item.summary, language=item.lang))
        named = tuple((m.rule, _words(m, texts)) for m in
                      self._probes.match(title=item.title, summary=item.summary, language=item.lang))
        return Error("miss", item, short=short, named=named)


def _probe(reference: str) -> Rule:
    return Rule(name=reference, query=reference, tree=parse_query(reference))


def _words(match: Match, texts: dict[str, str]) -> tuple[str, ...]:
    seen: list[str] = []
    for hit in match.hits:
        word = texts[hit.field][hit.start:hit.end]
        if word not in seen:
            seen.append(word)
    return tuple(seen)

