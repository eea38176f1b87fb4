"""The shipped watch (config/watch.toml) against the labelled set in tests/labelled/.

The floor the issue sets: precision >= 0.95 and recall >= 0.95 on the held-out
half, which rules were never tuned on. Both halves are scored and printed, so a
gap between them (overfitting to the development half) shows up in every run.
An item counts as flagged when ANY enabled rule matches it, as in the daemon.

The explicit cases below pin the traps named in the issue (porcelain "china",
sport scores, "Orlovshchina", Taiwan, the US-China trade war, Russia-India
oil) and Ukrainian/Russian inflected forms that a plain keyword list misses.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from monitor.match import Matcher, load_watch
from monitor.match.evaluate import evaluate_file

ROOT = Path(__file__).resolve().parent.parent
WATCH = ROOT / "config" / "watch.toml"
LABELLED = ROOT / "tests" / "labelled"
FLOOR = 0.95


@dataclass(frozen=True)
class Score:
    """Confusion counts of one half, and the figures derived from them."""

    half: str
    true_pos: int
    false_pos: int
    false_neg: int
    true_neg: int

    @property
    def precision(self) -> float:
        flagged = self.true_pos + self.false_pos
        return self.true_pos / flagged if flagged else 0.0

    @property
    def recall(self) -> float:
        relevant = self.true_pos + self.false_neg
        return self.true_pos / relevant if relevant else 0.0

    @property
    def f1(self) -> float:
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total else 0.0

    def line(self) -> str:
        return (f"{self.half:8} precision={self.precision:.3f} recall={self.recall:.3f} f1={self.f1:.3f}"
                f"  (tp={self.true_pos} fp={self.false_pos} fn={self.false_neg} tn={self.true_neg},"
                f" n={self.true_pos + self.false_pos + self.false_neg + self.true_neg})")


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return Matcher.compile(load_watch(WATCH))


def score_half(half: str) -> Score:
    """Run the watch over one half, through the library call behind `monitor rules eval`:
    only title, summary and language reach the matcher."""
    overall = evaluate_file(load_watch(WATCH), LABELLED / f"{half}.jsonl", explain=False).overall
    return Score(half, true_pos=overall.true_pos, false_pos=overall.false_pos,
                 false_neg=overall.false_neg, true_neg=overall.true_neg)


@pytest.fixture(scope="module")
def scores() -> dict[str, Score]:
    return {half: score_half(half) for half in ("dev", "heldout")}


def report(capsys: pytest.CaptureFixture[str], lines: list[str]) -> None:
    """Show the figures on every run, with or without -s, and again in a failure report."""
    with capsys.disabled():
        print()
        for line in lines:
            print(f"watch quality: {line}")
    for line in lines:
        print(line)


def test_split_is_the_committed_one() -> None:
    """The held-out half means something only while nobody re-split or edited it."""
    result = subprocess.run([sys.executable, str(LABELLED / "split.py"), "--check"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"split.py --check failed:\n{result.stdout}{result.stderr}"


def test_shipped_watch_meets_the_floor_on_the_heldout_half(capsys: pytest.CaptureFixture[str],
                                                           scores: dict[str, Score]) -> None:
    lines = [scores["dev"].line(), scores["heldout"].line()]
    report(capsys, lines)
    heldout = scores["heldout"]
    figures = "\n".join(lines)
    assert heldout.true_pos + heldout.false_neg > 0 and heldout.false_pos + heldout.true_neg > 0, figures
    assert heldout.precision >= FLOOR, f"held-out precision below {FLOOR}:\n{figures}"
    assert heldout.recall >= FLOOR, f"held-out recall below {FLOOR}:\n{figures}"


def test_both_halves_are_scored_in_full(scores: dict[str, Score]) -> None:
    """Every labelled item is scored once: a skipped file or item would flatter the figures."""
    items = len((LABELLED / "items.jsonl").read_text(encoding="utf-8").splitlines())
    scored = sum(s.true_pos + s.false_pos + s.false_neg + s.true_neg for s in scores.values())
    assert scored == items


HARD_NEGATIVES = [
    ("en", "Antique china auction in Lviv draws record bids",
     "A Meissen dinner service sold for 1.2 million hryvnias; part of the proceeds goes to a charity for "
     "veterans of the war with Russia."),
    ("en", "China and Ukraine draw 1–1 in Under-21 friendly",
     "Ukraine equalised in stoppage time in the match played in Antalya."),
    ("en", "Russian drone strike on Orlovshchina injures two",
     "The governor of Dnipropetrovsk region said a house was damaged in the overnight attack."),
    ("en", "China sends warships around Taiwan in largest drills this year",
     "Taipei scrambled jets as the PLA practised a blockade; analysts compared the threat with Russia's "
     "invasion of Ukraine."),
    ("en", "US and China extend tariff truce in trade war",
     "Washington and Beijing agreed to keep duties on each other's goods at current levels for 90 days."),
    ("en", "India's Russian oil imports hit record high in June",
     "Indian refiners bought more than 2 million barrels a day of discounted Russian crude despite the price cap."),
    ("uk", "Індія наростила закупівлю російської нафти до рекорду",
     "Індійські НПЗ купували понад 2 млн барелів на добу завдяки знижкам."),
    ("ru", "Станцию метро «Китай-город» закроют на ремонт",
     "Пересадку между линиями ограничат на три месяца, сообщил Дептранс."),
    ("uk", "Китайський Новий рік у Києві: ходу призупинили через повітряну тривогу",
     "Свято організували китайські студенти; російські дрони атакували область вночі."),
]


@pytest.mark.parametrize(("lang", "title", "summary"), HARD_NEGATIVES, ids=[t[1][:40] for t in HARD_NEGATIVES])
def test_hard_negative_is_not_flagged(matcher: Matcher, lang: str, title: str, summary: str) -> None:
    matches = matcher.match(title=title, summary=summary, language=lang)
    assert matches == [], [(m.rule, m.snippet) for m in matches]


# (language, title, summary, the inflected word form that must be among the hits)
INFLECTED_POSITIVES = [
    ("uk", "Китай постачає Росії компоненти для дронів",
     "За даними розвідки, партії мікросхем і двигунів ідуть через посередників.", "Росії"),
    ("uk", "Пекін передав Москві супутникові знімки українських аеродромів",
     "Знімки китайських комерційних супутників допомагають готувати удари, заявили в ГУР.", "Москві"),
    ("uk", "Китаю вигідна війна: Зеленський про роль Пекіна",
     "Президент заявив, що Піднебесна заробляє на дешевій російській нафті.", "Китаю"),
    ("uk", "ЄС запровадив санкції проти компаній у Гонконзі та КНР",
     "До списку потрапили фірми, які постачали верстати російським оборонним заводам.", "Гонконзі"),
    ("uk", "Зеленський закликав Сі Цзіньпіна вплинути на Путіна",
     "Президент наголосив, що Китай має достатньо важелів, аби зупинити війну.", "Цзіньпіна"),
    ("ru", "Пекин ограничил экспорт комплектующих для беспилотников",
     "Под контроль попали двигатели и тепловизоры для дронов.", "беспилотников"),
    ("ru", "Граждане КНР, воевавшие за Россию, попали в плен под Покровском",
     "Зеленский сообщил о задержании двух китайцев.", "китайцев"),
    ("ru", "Товарооборот с Китаем сократился из-за санкций",
     "Российские импортеры жалуются на задержки платежей в китайских банках.", "Китаем"),
]


@pytest.mark.parametrize(("lang", "title", "summary", "form"), INFLECTED_POSITIVES,
                         ids=[t[1][:40] for t in INFLECTED_POSITIVES])
def test_inflected_positive_is_flagged(matcher: Matcher, lang: str, title: str, summary: str, form: str) -> None:
    matches = matcher.match(title=title, summary=summary, language=lang)
    assert matches, f"no rule matched {title!r}"
    texts = {"title": title, "summary": summary}
    found = {texts[hit.field][hit.start:hit.end] for match in matches for hit in match.hits}
    assert any(form in text for text in found), f"{form!r} not among the hits {sorted(found)}"


def test_every_rule_is_documented_and_every_list_is_used() -> None:
    """A hand-edited file drifts: a rule without tags cannot be routed, an unused group misleads."""
    watch = load_watch(WATCH)
    assert watch.rules
    for rule in watch.rules:
        assert rule.description and rule.tags and rule.min_score > 0, rule.name
    queries = " ".join(rule.query for rule in watch.rules)
    for name in watch.entities:
        assert f"@{name}" in queries, f"entity {name} is not used by any rule"
    for name in watch.groups:
        assert f"#{name}" in queries, f"group {name} is not used by any rule"
