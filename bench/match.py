"""Matcher benchmark: entries/s and MB/s for a small and a 1,000-rule watch, same text.

    python bench/match.py                  # 5,000 entries, two passes each
    python bench/match.py --entries 1000   # a quick run
    python bench/match.py --watch config/watch.toml   # add a row for another watch

Text: deterministic synthetic entries of about 400 characters (a headline and
a summary) in English, Ukrainian and Russian (2:1:1), mixing the watch's
vocabulary with neutral words in several inflected forms and, for the long
tail that real news has, one word in twelve made up, so that the word caches
do not hide the cost of lemmatising new words. The first pass over the
entries runs with cold caches, the second with warm ones.

Watches: "small" has 10 rules over ~100 aliases in en/uk/ru; "1000 rules" is
the small watch plus 990 generated rules over 10,000 generated aliases: most
never occur; one in fifty is a made-up "topical" word that the text uses
once in a hundred words, so that rules do get evaluated and match. A
third row is added for --watch, e.g. the shipped config/watch.toml.

Also measured: pymorphy3's load time and memory for each language, and the
peak RSS of the process. One core (the matcher is single-threaded).
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from monitor.match import (  # noqa: E402
    Matcher,
    Watch,
    morph,  # noqa: E402
    parse_watch_text,
)

SMALL_WATCH = """
[entity.china]
aliases = ["China", "Chinese", "Beijing", "=PRC", "Xi Jinping", "Wang Yi", "Li Hui", "Chinese firms",
           "Китай", "китайський", "КНР", "Пекін", "Сі Цзіньпін", "Ван І", "Лі Хуей",
           "Китай", "китайский", "Пекин", "Си Цзиньпин", "Ван И", "Ли Хуэй", "中国"]
exclude = ["Chinese New Year", "fine china", "antique china", "china cabinet"]

[entity.russia]
aliases = ["Russia", "Russian", "Moscow", "Kremlin", "Putin", "Росія", "російський", "Москва", "Кремль",
           "Путін", "Россия", "российский", "Москва", "Путин"]

[entity.ukraine]
aliases = ["Ukraine", "Ukrainian", "Kyiv", "Zelensky", "Україна", "український", "Київ", "Зеленський",
           "Украина", "украинский", "Киев", "Зеленский"]

[group.drone_parts]
terms = ["drone*", "UAV", "engine*", "fibre-optic", "fiber-optic", "battery", "microchip*",
         "дрон*", "безпілотник", "двигун", "акумулятор", "оптоволокно",
         "беспилотник", "двигатель", "аккумулятор", "оптоволокно", "микросхем*"]

[group.sanctions]
terms = ["sanction*", "export control*", "shell compan*", "evasion", "санкці*", "обхід санкцій",
         "санкци*", "обход санкций", "экспортный контроль"]

[group.diplomacy]
terms = ["envoy", "peace plan", "mediation", "talks", "neutrality", "summit",
         "спецпредставник", "мирний план", "переговори", "нейтралітет", "саміт",
         "спецпредставитель", "мирный план", "переговоры", "нейтралитет", "саммит"]

[group.intelligence]
terms = ["satellite*", "intelligence", "imagery", "супутник*", "розвідка", "спутник*", "разведка"]

[group.energy]
terms = ["power grid", "generator*", "transformer*", "енергосистема", "генератор*", "энергосистема"]

[rule.china_drones]
query = '@china NEAR/15 #drone_parts'
severity = "warning"
tags = ["drones"]

[rule.china_sanctions]
query = '@china AND #sanctions AND @russia'
severity = "warning"

[rule.china_diplomacy]
query = '@china NEAR/20 #diplomacy AND (@ukraine OR @russia)'

[rule.china_intel]
query = '@china NEAR/12 #intelligence'
severity = "critical"

[rule.china_energy]
query = '@china AND #energy AND @ukraine'

[rule.china_title]
query = 'title:@china AND (@russia OR @ukraine)'
min_score = 4

[rule.xi_putin]
query = '"Xi Jinping" ONEAR/10 Putin OR "Сі Цзіньпін" ONEAR/10 Путін OR "Си Цзиньпин" ONEAR/10 Путин'

[rule.china_drones_ukraine]
query = '@china NEAR/20 #drone_parts AND @ukraine NOT "Chinese New Year"'

[rule.prc_arms]
query = '=PRC AND (arms OR weapons OR зброя OR оружие)'

[rule.china_only_title]
query = 'title:(@china ONEAR/3 #drone_parts)'
severity = "critical"
"""

NEUTRAL = {
    "en": ("the a of in on for with after says said officials minister government report week year city "
           "region forces attack attacks strike strikes missile missiles air defence energy "
           "market prices oil gas trade deal talks meeting president prime country countries people "
           "police court law new first last two three million billion percent according data show "
           "company companies plant factory supply supplies exports imports budget election vote "
           "parliament spokesman statement visit agreement support military army border troops "
           "front line shelling village villages residents killed injured damaged building buildings "
           "school hospital power outage weather storm football match team season championship "
           "festival film music museum exhibition antique china auction war peace European Union "
           "United States Washington Brussels London India Iran Turkey Taiwan Hong Kong").split(),
    "uk": ("у в на з за після та і що як заявив заявила повідомив міністр уряд звіт тиждень рік місто "
           "область сили атака атаки удар удари ракета ракети ракетами протиповітряна оборона енергетика "
           "ринок ціни нафта газ торгівля угода переговорах зустріч президент прем'єр країна країни люди "
           "поліція суд закон новий перший останній два три мільйонів мільярдів відсотків даними "
           "компанія компанії завод постачання експорт імпорт бюджет вибори голосування парламент "
           "речник заява візит угоди підтримка армія кордон війська фронт обстріл села жителі загинули "
           "поранені пошкоджено будинок школа лікарня знеструмлення футбол матч команда сезон "
           "фестиваль фільм музей виставка Європейський Союз Сполучені Штати Вашингтон Індія Іран "
           "Туреччина Тайвань").split(),
    "ru": ("в на с за после и что как заявил заявила сообщил министр правительство отчёт неделя год город "
           "область силы атака атаки удар удары ракета ракеты ракетами противовоздушная оборона "
           "энергетика рынок цены нефть газ торговля сделка переговорах встреча президент премьер страна "
           "страны люди полиция суд закон новый первый последний два три миллионов миллиардов "
           "процентов данным компания компании завод поставки экспорт импорт бюджет выборы "
           "голосование парламент представитель заявление визит соглашение поддержка армия граница "
           "войска фронт обстрел сёла жители погибли ранены повреждён дом школа больница футбол матч "
           "команда сезон фестиваль фильм музей выставка Евросоюз США Вашингтон Индия Иран Турция "
           "Тайвань").split(),
}
WATCHED = {
    "en": ("China Chinese Beijing China's Beijing's PRC Xi Jinping Wang Yi Russia Russia's Russian Moscow "
           "Kremlin Putin Ukraine Ukrainian Kyiv Zelensky drones drone UAVs engines batteries fibre-optic "
           "microchips sanctions export controls evasion envoy peace plan neutrality summit satellite "
           "imagery intelligence generators transformers power grid weapons arms").split(),
    "uk": ("Китай Китаю Китаєм Китаї Китаю китайські китайських КНР Пекін Пекіна Пекіні Сі Цзіньпін "
           "Росія Росії Росією Москва Москви Кремль Путін Україна України Україною Київ Києва Зеленський "
           "дрони дронів безпілотники безпілотників двигуни акумулятори оптоволокно санкції санкцій "
           "обхід спецпредставник мирний план переговори нейтралітет супутникові розвідка генератори "
           "енергосистема зброя").split(),
    "ru": ("Китай Китая Китаю Китаем Китае китайские китайских КНР Пекин Пекина Пекине Си Цзиньпин "
           "Россия России Россией Москва Москвы Кремль Путин Украина Украины Украиной Киев Киева "
           "Зеленский дроны дронов беспилотники беспилотников двигатели аккумуляторы оптоволокно "
           "санкции санкций обход спецпредставитель мирный план переговоры нейтралитет спутниковые "
           "разведка генераторы энергосистема оружие").split(),
}
# Made-up words of the text's long tail, and of the generated aliases: different
# syllables, so that an alias occurs only where the text means it to (topical words).
SYLLABLES = {
    "en": "ka ro mi ten sul bar vex lo qua nid por tre zan gel fu".split(),
    "uk": "ка ро мі тен сул бар вех ло ква нід пор тре зан гель фу ї є".split(),
    "ru": "ка ро ми тен сул бар вех ло ква нид пор тре зан гель фу ы э".split(),
}
ALIAS_SYLLABLES = {
    "en": "dra po wix sen hal mur tog ib yel cor nav bup".split(),
    "uk": "дра по вікс сен хал мур тог іб єл кор нав буп".split(),
    "ru": "дра по викс сен хал мур тог иб ел кор нав буп".split(),
}
NOVEL_WORD_RATE = 1 / 12
WATCHED_WORD_RATE = 0.06
TOPICAL_WORD_RATE = 0.01  # words that only the generated 1,000-rule watch looks for


def made_up_word(rng: random.Random, lang: str, syllables: dict[str, list[str]] = SYLLABLES) -> str:
    return "".join(rng.choice(syllables[lang]) for _ in range(rng.randint(2, 4)))


def made_up_alias(rng: random.Random, lang: str) -> str:
    return made_up_word(rng, lang, ALIAS_SYLLABLES)


def topical_words() -> dict[str, list[str]]:
    rng = random.Random(7)
    return {lang: [made_up_alias(rng, lang) for _ in range(300)] for lang in SYLLABLES}


TOPICAL = topical_words()


def sentence(rng: random.Random, lang: str, length: int) -> str:
    words = []
    for _ in range(length):
        roll = rng.random()
        if roll < NOVEL_WORD_RATE:
            words.append(made_up_word(rng, lang))
        elif roll < NOVEL_WORD_RATE + WATCHED_WORD_RATE:
            words.append(rng.choice(WATCHED[lang]))
        elif roll < NOVEL_WORD_RATE + WATCHED_WORD_RATE + TOPICAL_WORD_RATE:
            words.append(rng.choice(TOPICAL[lang]))
        else:
            words.append(rng.choice(NEUTRAL[lang]))
    text = " ".join(words)
    return text[0].upper() + text[1:]


def make_entries(count: int, seed: int = 3) -> list[tuple[str, str, str]]:
    """(language, headline, summary) of about 400 characters in all."""
    rng = random.Random(seed)
    entries = []
    for _ in range(count):
        lang = rng.choice(("en", "en", "uk", "ru"))
        title = sentence(rng, lang, rng.randint(8, 12))
        summary = ". ".join(sentence(rng, lang, rng.randint(14, 20)) for _ in range(3)) + "."
        while len(title) + len(summary) > 420:
            summary = summary[:summary.rfind(" ")]
        entries.append((lang, title, summary))
    return entries


def big_watch_text(rule_count: int = 990, alias_count: int = 10_000, seed: int = 5) -> str:
    """The small watch plus generated entities (10 aliases each) and rules over them."""
    rng = random.Random(seed)
    lines = [SMALL_WATCH]
    entity_count = alias_count // 10
    for index in range(entity_count):
        aliases = []
        for _ in range(10):
            lang = rng.choice(("en", "uk", "ru"))
            roll = rng.random()
            if roll < 0.02:
                aliases.append(rng.choice(TOPICAL[lang]))
            elif roll < 0.22:
                aliases.append(f"{made_up_alias(rng, lang)} {made_up_alias(rng, lang)}")
            elif roll < 0.32:
                aliases.append(made_up_alias(rng, lang) + "*")
            else:
                aliases.append(made_up_alias(rng, lang))
        quoted = ", ".join(f'"{alias}"' for alias in aliases)
        lines.append(f"[entity.e{index}]\naliases = [{quoted}]\n")
    shapes = ["@{a} NEAR/10 @{b}", "@{a} AND (@{b} OR @china)", "title:@{a} AND NOT @{b}",
              "@{a} ONEAR/5 #drone_parts", "(@{a} OR @{b}) AND @russia"]
    for index in range(rule_count):
        a, b = rng.sample(range(entity_count), 2)
        query = rng.choice(shapes).format(a=f"e{a}", b=f"e{b}")
        lines.append(f"[rule.generated_{index}]\nquery = '{query}'\n")
    return "\n".join(lines)


def rss_mb() -> float:
    """Current resident set size (Linux /proc), for before/after deltas."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_language_data() -> list[tuple[str, float, float]]:
    rows = []
    for lang in morph.LANGUAGES:
        before = rss_mb()
        morph.lemmas("тест", lang)
        rows.append((lang, morph.loaded()[lang], rss_mb() - before))
    return rows


def run(name: str, watch: Watch, entries: list[tuple[str, str, str]]) -> list[str]:
    started = time.perf_counter()
    matcher = Matcher.compile(watch)
    compile_seconds = time.perf_counter() - started
    megabytes = sum(len((title + summary).encode()) for _, title, summary in entries) / 2**20
    aliases = sum(len(e.aliases) for e in watch.entities.values()) + sum(len(g.terms) for g in watch.groups.values())
    # each watch starts cold: a new matcher has an empty word cache (analysers loaded, measured apart)
    rows = []
    for label in ("cold", "warm"):
        matches = 0
        evaluations_before = matcher.evaluations
        started = time.perf_counter()
        for lang, title, summary in entries:
            matches += len(matcher.match(title=title, summary=summary, language=lang))
        seconds = time.perf_counter() - started
        evaluated = (matcher.evaluations - evaluations_before) / len(entries)
        rows.append(f"| {name} | {len(matcher.rules)} | {aliases} | {compile_seconds:.2f} | {label} "
                    f"| {len(entries) / seconds:,.0f} | {megabytes / seconds:.2f} | {evaluated:.1f} "
                    f"| {matches / len(entries):.2f} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=5000)
    parser.add_argument("--watch", type=Path, help="an extra watch.toml to measure")
    args = parser.parse_args()

    entries = make_entries(args.entries)
    average = sum(len(t) + len(s) for _, t, s in entries) / len(entries)
    print(f"{len(entries)} entries, {average:.0f} characters on average, Python {sys.version.split()[0]}\n")

    print("| pymorphy3 dictionary | load time (s) | RSS added (MB) |\n|---|---|---|")
    for lang, seconds, megabytes in measure_language_data():
        print(f"| {lang} | {seconds:.2f} | {megabytes:.1f} |")

    watches = [("small", parse_watch_text(SMALL_WATCH, Path("small.toml"))),
               ("1000 rules", parse_watch_text(big_watch_text(), Path("big.toml")))]
    if args.watch:
        watches.append((args.watch.name, parse_watch_text(args.watch.read_text(encoding="utf-8"), args.watch)))
    print("\n| watch | rules | aliases+terms | compile (s) | caches | entries/s | MB/s "
          "| rules evaluated/entry | matches/entry |\n|---|---|---|---|---|---|---|---|---|")
    for name, watch in watches:
        for row in run(name, watch, entries):
            print(row)
    print(f"\npeak RSS: {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
