"""Story alerts and digests: subject, plain text, HTML and Markdown, from the (user's) templates.

The escaping below is done by monitor.alert.formats; feed-health and test
messages are monitor.alert.notices.

Everything a story alert shows comes from a feed, so none of it is trusted.
Every value is cleaned first, the same way for every format: control and
invisible format characters (bidi overrides such as U+202E, zero-width
spaces, BOMs, lone surrogates) are removed and any run of whitespace,
newlines included, becomes one space, so a value can never start a new line,
a header or a Markdown block. Then each value is escaped for its format:

- text: nothing more (plain text has no syntax to neutralise);
- HTML: ``html.escape(quote=True)``; a link becomes an ``<a href>`` only when
  it is http(s), anything else (``javascript:``, ``data:``) is shown as text;
- Markdown: a backslash before every character that Markdown, Telegram or
  Discord give a meaning (backslash, backtick, ``* _ [ ] ( ) # + - . ! | < > ~
  { } =``, and ``&`` that would start an entity), and a zero-width space after
  ``@`` so a headline cannot ping ``@everyone``; links are written ``<url>``
  with spaces, quotes, angle brackets and parentheses percent-encoded.

The matcher marks hits in a snippet ``[[like this]]``; they stay ``[[like
this]]`` in text (a marker that is no quotation mark, so it never clashes with
the « » and “ ” of Ukrainian, Russian or English text; the console shows them
in colour on a terminal), bold on a yellow background in HTML and ``**like
this**`` in Markdown.

Users override the built-in templates (``monitor/alert/templates/``) with
files of the same names in ``<config>/templates/``: subject.txt, alert.txt,
alert.html, alert.md. They are ``string.Template`` texts: ``$title`` or
``${title}``, ``$$`` for a dollar sign; the variables are in
`TEMPLATE_VARIABLES`, and each value arrives already escaped for the
template's format. A template line whose variables all come out empty is left
out, which is how optional lines ("Also reported by: ...") disappear. One
alert is one story: `$rules` lists every rule it matched for the destination,
one per line, most severe first, each with its hits; `$rule` and the other
single-rule variables are the top rule's. A digest shows each story once, with
the same body templates, under the heading of its top rule.
"""

from __future__ import annotations

import dataclasses
import re
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from functools import cache
from importlib import resources
from pathlib import Path

from monitor.alert.formats import (
    BODY_FORMATS,
    HTML,
    HTML_FONT,
    MARKDOWN,
    TEXT,
    Format,
    Link,
    clean,
    escape_html,
    escape_markdown,
    highlight,
    joined,
    truncate,
    when,
)
from monitor.errors import ConfigError
from monitor.models import AlertView, Message, RuleHit
from monitor.stories import story_keys

SUBJECT_TITLE_LIMIT = 120  # characters of the headline kept in a subject

TEMPLATE_VARIABLES: dict[str, str] = {
    "rule": "name of the top rule that matched (the most severe, then the best score)",
    "more_rules": "' +2' when the story matched 2 more rules, else empty",
    "rules": "every matched rule, one per line, most severe first, each with its severity, "
             "score and matched terms; a rule new in an update is marked 'new'",
    "new_rules": "the rules an updated story newly matches, comma separated (empty otherwise)",
    "description": "the top rule's description (empty when it has none)",
    "severity": "the top rule's severity: info, warning or critical",
    "score": "the top rule's match score, e.g. 4.5",
    "title": "the story's headline, '(no title)' when empty; in subject.txt cut to 120 characters",
    "url": "the story's link ready for a link target (href in HTML, (...) in Markdown); "
           "empty in HTML and Markdown when the link is not http(s)",
    "link": "the story's link ready to show: an <a> element in HTML, <url> in Markdown; "
            "a link that is not http(s) is shown as inert text; empty when the story has none",
    "outlet": "the feed that carried the story",
    "published": "publication time in the configured timezone, e.g. '2026-11-29 14:05 EET', or 'unknown'",
    "snippet": "text around the top rule's matched words, the hits highlighted ([[hit]] in text, "
               "bold in HTML and Markdown)",
    "terms": "the top rule's matched terms, comma separated",
    "also_reported_by": "other outlets that carried the same story, comma separated (empty when none)",
    "update": "'yes' when the story changed and now matches a rule not alerted before, else 'no'",
    "update_prefix": "'Update: ' for an updated story, else empty",
}

TEMPLATE_FILES: dict[str, str] = {
    "subject": "subject.txt",
    "text": "alert.txt",
    "html": "alert.html",
    "markdown": "alert.md",
}

_PLACEHOLDER = string.Template.pattern
_EXTRA_BLANK_LINES = re.compile(r"\n{3,}")
_SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}


@dataclass(frozen=True)
class Templates:
    """User overrides of the alert templates; None = the built-in default."""

    subject: str | None = None
    text: str | None = None
    html: str | None = None
    markdown: str | None = None


SHIPPED = Templates()  # the shipped messages: immutable, so one instance serves every default


# --------------------------------------------------------------------------
# templates
# --------------------------------------------------------------------------


def load_templates(config_dir: Path) -> Templates:
    """The templates in <config_dir>/templates/, each checked now so that a typo
    in a variable name fails at start-up, not silently at the first alert."""
    folder = Path(config_dir) / "templates"
    found: dict[str, str] = {}
    for field, name in TEMPLATE_FILES.items():
        path = folder / name
        if path.exists():
            found[field] = _read_template(path)
            check_template(found[field], path)
    return Templates(**found)


def check_template(text: str, path: Path | str) -> None:
    """Raise ConfigError at the first placeholder that is not a known variable."""
    for placeholder in _PLACEHOLDER.finditer(text):
        name = placeholder.group("named") or placeholder.group("braced")
        if placeholder.group("invalid") is not None:
            raise _template_error(text, placeholder.start(), path,
                                  "'$' must start a variable such as $title or ${title}; "
                                  "write $$ for a dollar sign")
        if name is not None and name not in TEMPLATE_VARIABLES:
            known = ", ".join(sorted(TEMPLATE_VARIABLES))
            raise _template_error(text, placeholder.start(), path,
                                  f"unknown template variable ${name} (known: {known})")


def _read_template(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise ConfigError(f"template is not UTF-8 text (byte {error.start})", path=path) from None
    except OSError as error:
        raise ConfigError(f"cannot read template: {error.strerror or error}", path=path) from None


def _template_error(text: str, offset: int, path: Path | str, message: str) -> ConfigError:
    line_start = text.rfind("\n", 0, offset) + 1
    line_end = text.find("\n", offset)
    source_line = text[line_start:line_end if line_end >= 0 else len(text)]
    line = text.count("\n", 0, offset) + 1
    column = offset - line_start + 1
    context = f"    {source_line}\n    {' ' * (column - 1)}^"
    return ConfigError(message, path=path, line=line, column=column, context=context)


@cache
def _default_template(field: str) -> str:
    return resources.files(__package__).joinpath("templates", TEMPLATE_FILES[field]).read_text("utf-8")


def _template(templates: Templates, field: str) -> str:
    override: str | None = getattr(templates, field)
    return override if override is not None else _default_template(field)


def _fill(template: str, values: Mapping[str, str]) -> str:
    """Substitute VALUES, leaving out each line whose variables are all empty."""
    kept: list[str] = []
    for line in template.split("\n"):
        names = [p.group("named") or p.group("braced") for p in _PLACEHOLDER.finditer(line)]
        used = [name for name in names if name]
        if used and not any(values[name] for name in used):
            continue
        kept.append(string.Template(line).substitute(values))
    return _tidy("\n".join(kept))


def _tidy(text: str) -> str:
    lines = "\n".join(line.rstrip() for line in text.split("\n"))
    return _EXTRA_BLANK_LINES.sub("\n\n", lines).strip("\n")


# --------------------------------------------------------------------------
# story alerts
# --------------------------------------------------------------------------


def _values(view: AlertView, tz: str, form: Format, title_limit: int | None = None) -> dict[str, str]:
    """Every template variable for VIEW, escaped for FORM."""
    title = clean(view.title) or "(no title)"
    if title_limit is not None:
        title = truncate(title, title_limit)
    link = Link.of(view.url)
    escape = form.escape
    hits = view.all_rules()
    return {
        "rule": escape(clean(view.rule)),
        "more_rules": f" +{len(hits) - 1}" if len(hits) > 1 else "",
        "rules": _RULE_LISTS[form](hits),
        "new_rules": escape(joined([hit.rule for hit in hits if hit.is_new])),
        "description": escape(clean(view.description)),
        "severity": escape(clean(view.severity)),
        "score": escape(f"{view.score:g}"),
        "title": escape(title),
        "url": form.url(link),
        "link": form.link(link),
        "outlet": escape(clean(view.feed)),
        "published": escape(when(view.published, tz)),
        "snippet": highlight(view.snippet, form),
        "terms": escape(joined(view.terms)),
        "also_reported_by": escape(joined(view.also_reported_by)),
        "update": "yes" if view.is_update else "no",
        "update_prefix": "Update: " if view.is_update else "",
    }


def _rule_line(hit: RuleHit) -> str:
    """One rule of a story, in plain words: name, severity, score, new or not, hits, description."""
    new = ", new" if hit.is_new else ""
    terms = joined(hit.terms)
    description = clean(hit.description)
    return (f"{clean(hit.rule)} ({clean(hit.severity)}, score {hit.score:g}{new})"
            + (f": {terms}" if terms else "") + (f" — {description}" if description else ""))


_RULE_LISTS: dict[Format, Callable[[Sequence[RuleHit]], str]] = {
    TEXT: lambda hits: "\n".join(f"- {_rule_line(hit)}" for hit in hits),
    HTML: lambda hits: "<br>\n".join(f"&bull; {escape_html(_rule_line(hit))}" for hit in hits),
    MARKDOWN: lambda hits: "\n".join(f"- {escape_markdown(_rule_line(hit))}" for hit in hits),
}


def _story(view: AlertView, tz: str, templates: Templates, field: str) -> str:
    return _fill(_template(templates, field), _values(view, tz, BODY_FORMATS[field]))


def render_alert(view: AlertView, tz: str, templates: Templates = SHIPPED) -> Message:
    """One story alert in every format; TZ (an IANA name) sets the displayed times."""
    subject_values = _values(view, tz, TEXT, title_limit=SUBJECT_TITLE_LIMIT)
    return Message(subject=clean(_fill(_template(templates, "subject"), subject_values)),
                   text=_story(view, tz, templates, "text"),
                   html=_story(view, tz, templates, "html"),
                   markdown=_story(view, tz, templates, "markdown"))


# --------------------------------------------------------------------------
# digests
# --------------------------------------------------------------------------


def render_digest(views: Sequence[AlertView], tz: str, *, destination: str, period: str,
                  templates: Templates = SHIPPED) -> Message:
    """Many alerts as one message, each story once (with all its rules): a heading per
    top rule, then its stories, newest first; copies of one story from several outlets
    are shown once, the other outlets listed as "also reported by"."""
    groups = _by_rule(views)
    count = sum(len(stories) for _, stories in groups)
    summary = f"{count} {'story' if count == 1 else 'stories'}"
    heading = f"{summary} for {destination} — {period}"
    return Message(subject=clean(f"[monitor] {summary} — {period}"),
                   text=_digest_text(heading, groups, tz, templates),
                   html=_digest_html(heading, groups, tz, templates),
                   markdown=_digest_markdown(heading, groups, tz, templates))


def _by_rule(views: Sequence[AlertView]) -> list[tuple[str, list[AlertView]]]:
    """Stories per top rule, copies merged; the most severe rules first, then by name."""
    copies_by_rule: dict[str, list[list[AlertView]]] = {}
    seen: dict[tuple[str, str], list[AlertView]] = {}
    for view in views:
        keys = [(view.rule, key) for key in story_keys(view.url, view.title, min_title_chars=1)]
        copies = next((seen[key] for key in keys if key in seen), None)
        if copies is None:
            copies = []
            copies_by_rule.setdefault(view.rule, []).append(copies)
        copies.append(view)
        for key in keys:
            seen.setdefault(key, copies)
    groups = [(rule, sorted((_merged(copies) for copies in stories), key=_newest_first))
              for rule, stories in copies_by_rule.items()]
    return sorted(groups, key=lambda group: (min(_severity_rank(v) for v in group[1]), group[0]))


def _merged(copies: list[AlertView]) -> AlertView:
    """The earliest copy, with every other outlet listed as also reporting it."""
    first = min(copies, key=_earliest_first)
    outlets = [copy.feed for copy in copies] + [o for copy in copies for o in copy.also_reported_by]
    others = tuple(dict.fromkeys(o for o in outlets if o != first.feed))
    return dataclasses.replace(first, also_reported_by=others)


def _timestamp(view: AlertView) -> float | None:
    if view.published is None:
        return None
    moment = view.published
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _earliest_first(view: AlertView) -> tuple[bool, float]:
    stamp = _timestamp(view)
    return (stamp is None, stamp or 0.0)


def _newest_first(view: AlertView) -> tuple[bool, float]:
    stamp = _timestamp(view)
    return (stamp is None, -(stamp or 0.0))


def _severity_rank(view: AlertView) -> int:
    return _SEVERITY_ORDER.get(view.severity, len(_SEVERITY_ORDER))


def _rule_heading(rule: str, stories: list[AlertView]) -> str:
    description = clean(stories[0].description)
    about = f" — {description}" if description else ""
    return f"{clean(rule)}{about} ({len(stories)})"


def _digest_text(heading: str, groups: list[tuple[str, list[AlertView]]], tz: str,
                 templates: Templates) -> str:
    parts = [clean(heading)]
    for rule, stories in groups:
        parts.append(f"=== {_rule_heading(rule, stories)} ===")
        parts += [_story(view, tz, templates, "text") for view in stories]
    if not groups:
        parts.append("No matches.")
    return "\n\n".join(parts)


def _digest_html(heading: str, groups: list[tuple[str, list[AlertView]]], tz: str,
                 templates: Templates) -> str:
    lines = [f'<div style="{HTML_FONT}">',
             f'<p style="margin:0 0 12px 0;font-size:16px;font-weight:bold">{escape_html(clean(heading))}</p>']
    for rule, stories in groups:
        lines.append('<h3 style="margin:16px 0 8px 0;font-size:15px;border-bottom:1px solid #cccccc">'
                     f"{escape_html(_rule_heading(rule, stories))}</h3>")
        lines += [f'<div style="margin:0 0 12px 0">{_story(view, tz, templates, "html")}</div>'
                  for view in stories]
    if not groups:
        lines.append("<p>No matches.</p>")
    lines.append("</div>")
    return "\n".join(lines)


def _digest_markdown(heading: str, groups: list[tuple[str, list[AlertView]]], tz: str,
                     templates: Templates) -> str:
    parts = [f"**{escape_markdown(clean(heading))}**"]
    for rule, stories in groups:
        parts.append(f"### {escape_markdown(_rule_heading(rule, stories))}")
        parts += [_story(view, tz, templates, "markdown") for view in stories]
    if not groups:
        parts.append("No matches\\.")
    return "\n\n".join(parts)
