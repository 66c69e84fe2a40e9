"""The feeds as HTML pages, on the one-tap pages' environment and base (public/pages.py):
autoescaped, no JavaScript, no outside assets, readable on a phone. Unlike the one-tap
pages they are meant to be found: no `noindex`."""

from __future__ import annotations

from typing import Any

from feedback_api.public import pages

_STYLE = """{% block style %}
main{display:block}
.feed{list-style:none;margin:0;padding:0}
.item{border-top:1px solid #ddd;padding:1rem 0}
.meta{display:flex;flex-wrap:wrap;gap:.25rem .75rem;margin:0;color:#555;font-size:.875rem}
.score{color:#222;font-weight:600}
.text{margin:.4rem 0 0;overflow-wrap:anywhere;white-space:pre-line}
.reply{margin:.75rem 0 0 .75rem;padding:.5rem .75rem;border-left:3px solid #1a5fb4;
background:#f4f7fb}
.reply .who{margin:0;font-size:.875rem;color:#555}
h2{font-size:1.125rem;line-height:1.35;margin:0;overflow-wrap:anywhere}
.numbers{display:grid;grid-template-columns:repeat(auto-fit,minmax(6.5rem,1fr));gap:.5rem;
margin:.75rem 0 0;padding:0}
.numbers div{border:1px solid #ddd;border-radius:.4rem;padding:.4rem .6rem;min-width:0}
.numbers dt{font-size:.8rem;color:#555}.numbers dd{margin:0;font-weight:600}
.numbers small{display:block;font-weight:400;color:#555}
.pager{margin:1.5rem 0 0}
.pager a{display:inline-block;min-height:2.75rem;padding:.6rem 1.25rem;border:1px solid #1a5fb4;
border-radius:.4rem;color:#1a5fb4;text-decoration:none;font-weight:600}
{% endblock %}"""

_HEAD = """{% block robots %}{% endblock %}{% block title %}{{ heading }}{% endblock %}"""

_REVIEWS = (
    """{% extends "base" %}"""
    + _HEAD
    + _STYLE
    + """{% block body %}<main>
<h1>{{ heading }}</h1>
{% if feed.items %}<ol class="feed">
{%- for r in feed.items %}<li class="item" id="r-{{ r.id }}">
<p class="meta"><span class="score">{{ t.score }} {{ r.score }} / {{ r.scale.max }}</span>
<span>{{ r.kind.value | upper }}</span>
{%- if r.touchpoint %}<span>{{ r.touchpoint }}</span>{% endif %}
<time datetime="{{ r.date.isoformat() }}">{{ r.date.isoformat() }}</time></p>
{% if r.comment %}<p class="text">{{ r.comment }}</p>{% endif %}
{% if r.reply %}<div class="reply"><p class="who">{{ reply_from }}
<time datetime="{{ r.reply.date.isoformat() }}">{{ r.reply.date.isoformat() }}</time></p>
<p class="text">{{ r.reply.body }}</p></div>{% endif %}
</li>{% endfor %}</ol>
{% else %}<p class="note">{{ t.no_reviews }}</p>{% endif %}
{% if next_url %}<p class="pager"><a rel="next" href="{{ next_url }}">{{ t.older }} →</a></p>
{% endif %}</main>{% endblock %}"""
)

_IMPROVEMENTS = (
    """{% extends "base" %}"""
    + _HEAD
    + _STYLE
    + """{% block body %}<main>
<h1>{{ heading }}</h1>
{% if feed.items %}<ol class="feed">
{%- for a in feed.items %}<li class="item" id="i-{{ a.id }}">
<h2>{{ a.title }}</h2>
<p class="meta"><span class="score">{{ t[a.status.value] }}</span>
{%- if a.completed_on %}<span>{{ t.completed.format(date=a.completed_on.isoformat()) }}</span>
{%- endif %}</p>
{% if a.summary %}<p class="text">{{ a.summary }}</p>{% endif %}
{% if a.customers_said.mentions is not none and a.theme %}<p class="text">
{{- t.said.format(n=a.customers_said.mentions, theme=a.theme.label or a.theme.key) }}</p>
{% endif %}
<p class="meta">{{ t.said_total.format(n=a.customers_said.responses,
start=a.customers_said.period_from.isoformat(), end=a.customers_said.period_to.isoformat()) }}</p>
<dl class="numbers"><div><dt>{{ t["metric_" + a.metric.value] }}: {{ t.before }}</dt>
<dd>{{ fmt(a.baseline.value) }}<small>{{ t.n.format(n=a.baseline.n) }}</small></dd></div>
<div><dt>{{ t.target }}</dt><dd>{{ fmt(a.target) }}</dd></div>
{% if a.result %}<div><dt>{{ t.now }}</dt><dd>{{ fmt(a.result.after.value) }}
<small>{{ t.n.format(n=a.result.after.n) }}</small></dd></div>{% endif %}</dl>
{% if a.result %}<p class="meta">{{ t[a.result.verdict.value] }}</p>{% endif %}
</li>{% endfor %}</ol>
{% else %}<p class="note">{{ t.no_improvements }}</p>{% endif %}
{% if next_url %}<p class="pager"><a rel="next" href="{{ next_url }}">{{ t.older }} →</a></p>
{% endif %}</main>{% endblock %}"""
)

_MESSAGE = (
    """{% extends "base" %}{% block robots %}<meta name="robots" content="noindex">"""
    """{% endblock %}{% block body %}<h1>{{ heading }}</h1>{% endblock %}"""
)

pages.register(
    {"feed_reviews": _REVIEWS, "feed_improvements": _IMPROVEMENTS, "feed_message": _MESSAGE}
)


def number(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.1f}".rstrip("0").rstrip(".") if value % 1 else f"{value:.0f}"


def render(template: str, lang: str, **values: Any) -> str:
    return pages.render(template, lang, fmt=number, **values)


def strings(lang: str) -> dict[str, str]:
    return pages.strings(lang)[1]


def languages() -> frozenset[str]:
    return frozenset(pages.STRINGS)
