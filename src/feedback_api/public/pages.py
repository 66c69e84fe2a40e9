"""The one-tap answer pages and the public feeds' pages: small, localised, HTML only (no
JavaScript, no outside assets), rendered with Jinja2's autoescaping so survey texts and
comments cannot inject markup. The feeds register their templates here (`register`), so
that every page shares one environment and one base."""

from __future__ import annotations

from typing import Any

from jinja2 import DictLoader, Environment, select_autoescape

STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Your feedback",
        "low": "Not likely",
        "high": "Very likely",
        "comment": "Anything you would like to add? (optional)",
        "send": "Send",
        "change": "You can change your answer until the survey closes.",
        "thanks": "Thank you for your feedback.",
        "closed": "This survey has closed.",
        "invalid": "This link is not valid.",
        "withdrawn": "This survey is no longer open.",
        "pick": "Please choose a score.",
        "unsubscribe_q": "Stop receiving survey invitations from us?",
        "unsubscribe": "Unsubscribe",
        "unsubscribed": "Done: you will not receive survey invitations any more.",
        "busy": "Too many tries in a short time. Please wait a minute and try again.",
        "publish": "You may show my answer on your public reviews page (never my name).",
        "reviews_title": "Reviews of {name}",
        "improvements_title": "You said, we did: {name}",
        "reply_from": "Reply from {name}",
        "no_reviews": "No reviews yet.",
        "no_improvements": "No improvements published yet.",
        "older": "Older",
        "score": "Score",
        "feed_not_found": "There is no public feed at this address.",
        "feed_invalid": "This page address is not valid.",
        "in_progress": "In progress",
        "done": "Done",
        "said": "What customers said: {n} comments mentioned “{theme}”.",
        "said_total": "Measured on {n} responses from {start} to {end}.",
        "before": "Before",
        "target": "Target",
        "now": "Now",
        "n": "n = {n}",
        "completed": "Completed on {date}",
        "improved": "Improved, beyond what changed elsewhere (95 % confidence).",
        "worse": "Worse than before.",
        "no_detectable_change": "No change we can tell from chance yet.",
        "too_early": "Too early to tell: not enough responses since the change.",
        "metric_nps": "NPS",
        "metric_csat": "CSAT (%)",
        "metric_ces": "Customer effort (1–7)",
        "metric_theme_share": "Share of comments on this (%)",
    },
    "zh": {
        "title": "您的反馈",
        "low": "不太可能",
        "high": "非常可能",
        "comment": "还有什么想告诉我们的吗？（可选）",
        "send": "提交",
        "change": "在调查结束前，您可以修改您的回答。",
        "thanks": "感谢您的反馈。",
        "closed": "本次调查已结束。",
        "invalid": "此链接无效。",
        "withdrawn": "本次调查已不再开放。",
        "pick": "请选择一个分数。",
        "unsubscribe_q": "不再接收我们的调查邀请？",
        "unsubscribe": "退订",
        "unsubscribed": "已退订：您将不再收到调查邀请。",
        "busy": "尝试次数过多，请稍等一分钟后再试。",
        "publish": "可以在公开评价页面展示我的回答（不显示我的姓名）。",
        "reviews_title": "{name} 的用户评价",
        "improvements_title": "您的意见，我们的改进：{name}",
        "reply_from": "{name} 的回复",
        "no_reviews": "暂无评价。",
        "no_improvements": "暂无已公布的改进。",
        "older": "更早",
        "score": "评分",
        "feed_not_found": "此地址没有公开的内容。",
        "feed_invalid": "此页面地址无效。",
        "in_progress": "进行中",
        "done": "已完成",
        "said": "客户的声音：{n} 条评论提到了“{theme}”。",
        "said_total": "基于 {start} 至 {end} 的 {n} 条反馈。",
        "before": "改进前",
        "target": "目标",
        "now": "现在",
        "n": "样本 {n}",
        "completed": "完成于 {date}",
        "improved": "已改善，且超出其他方面的变化（95% 置信度）。",
        "worse": "比之前更差。",
        "no_detectable_change": "目前还看不出超出偶然的变化。",
        "too_early": "为时尚早：改进后的反馈还不够多。",
        "metric_nps": "净推荐值（NPS）",
        "metric_csat": "满意度（%）",
        "metric_ces": "客户费力度（1–7）",
        "metric_theme_share": "提及此问题的评论占比（%）",
    },
    "de": {
        "title": "Ihr Feedback",
        "low": "Unwahrscheinlich",
        "high": "Sehr wahrscheinlich",
        "comment": "Möchten Sie noch etwas hinzufügen? (optional)",
        "send": "Senden",
        "change": "Sie können Ihre Antwort ändern, bis die Umfrage endet.",
        "thanks": "Vielen Dank für Ihr Feedback.",
        "closed": "Diese Umfrage ist beendet.",
        "invalid": "Dieser Link ist ungültig.",
        "withdrawn": "Diese Umfrage ist nicht mehr geöffnet.",
        "pick": "Bitte wählen Sie einen Wert.",
        "unsubscribe_q": "Keine Umfrage-Einladungen mehr von uns erhalten?",
        "unsubscribe": "Abmelden",
        "unsubscribed": "Erledigt: Sie erhalten keine Umfrage-Einladungen mehr.",
        "busy": "Zu viele Versuche in kurzer Zeit. Bitte warten Sie eine Minute.",
        "publish": "Sie dürfen meine Antwort auf Ihrer öffentlichen Bewertungsseite zeigen "
        "(nie meinen Namen).",
        "reviews_title": "Bewertungen von {name}",
        "improvements_title": "Sie sagten, wir handelten: {name}",
        "reply_from": "Antwort von {name}",
        "no_reviews": "Noch keine Bewertungen.",
        "no_improvements": "Noch keine veröffentlichten Verbesserungen.",
        "older": "Ältere",
        "score": "Bewertung",
        "feed_not_found": "Unter dieser Adresse gibt es keine öffentliche Seite.",
        "feed_invalid": "Diese Seitenadresse ist ungültig.",
        "in_progress": "In Arbeit",
        "done": "Erledigt",
        "said": "Was Kundinnen und Kunden sagten: {n} Kommentare nannten „{theme}“.",
        "said_total": "Gemessen an {n} Antworten vom {start} bis {end}.",
        "before": "Vorher",
        "target": "Ziel",
        "now": "Jetzt",
        "n": "n = {n}",
        "completed": "Abgeschlossen am {date}",
        "improved": "Verbessert, über das hinaus, was sich anderswo änderte (95 % Konfidenz).",
        "worse": "Schlechter als vorher.",
        "no_detectable_change": "Noch keine Änderung, die sich vom Zufall abhebt.",
        "too_early": "Zu früh: seit der Änderung noch zu wenige Antworten.",
        "metric_nps": "NPS",
        "metric_csat": "Zufriedenheit (%)",
        "metric_ces": "Kundenaufwand (1–7)",
        "metric_theme_share": "Anteil der Kommentare dazu (%)",
    },
}

_BASE = """<!doctype html>
<html lang="{{ lang }}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{% block robots %}<meta name="robots" content="noindex">{% endblock %}
<title>{% block title %}{{ t.title }}{% endblock %}</title>
<style>
*,::before,::after{box-sizing:border-box}
body{font:1rem/1.5 system-ui,sans-serif;max-width:36rem;margin:0 auto;padding:1.5rem 1rem;
color:#222;overflow-wrap:break-word}
h1{font-size:1.375rem;line-height:1.35;margin:0 0 1.25rem;text-wrap:balance}
.scale{display:grid;grid-template-columns:repeat(var(--cols),1fr);gap:.4rem;margin:0 0 .4rem}
.scale input{position:absolute;opacity:0}
.scale span{display:flex;align-items:center;justify-content:center;min-height:2.75rem;
border:1px solid #767676;border-radius:.4rem;font-size:1.125rem;cursor:pointer}
.scale input:checked+span{background:#1a5fb4;color:#fff;border-color:#1a5fb4;font-weight:600}
.scale input:focus-visible+span,button:focus-visible,textarea:focus-visible{
outline:3px solid #1a5fb4;outline-offset:2px}
.ends{display:flex;justify-content:space-between;gap:1rem;font-size:.875rem;color:#555}
.comment{margin:1.5rem 0 1rem}
textarea{display:block;width:100%;min-height:6rem;margin-top:.4rem;padding:.5rem .6rem;
font:inherit;border:1px solid #767676;border-radius:.4rem}
button{min-height:2.75rem;padding:.6rem 2rem;font:inherit;font-weight:600;color:#fff;
background:#1a5fb4;border:0;border-radius:.4rem;cursor:pointer}
.note{color:#555;font-size:.9rem}.error{color:#a00}
.consent label{display:flex;gap:.6rem;align-items:flex-start}
.consent input{width:1.4rem;height:1.4rem;margin:.1rem 0 0;flex:none}
/* A phone cannot fit eleven 44-pixel targets in a row: two rows, and a full-width Send. */
@media (max-width:37rem){.scale{grid-template-columns:repeat(var(--narrow),1fr)}
button{width:100%}}
{% block style %}{% endblock %}
</style></head><body>{% block body %}{% endblock %}</body></html>"""

_ANSWER = """{% extends "base" %}{% block body %}
<form method="post">
<h1 id="question">{{ question }}</h1>
{% if error %}<p class="error">{{ error }}</p>{% endif %}
{% set n = scores|length %}<div class="scale" role="radiogroup" aria-labelledby="question"
style="--cols:{{ n }};--narrow:{{ n if n <= 7 else (n + 1) // 2 }}">
{%- for s in scores %}<label><input type="radio" name="score" value="{{ s }}"
{% if s == chosen %}checked{% endif %}><span>{{ s }}</span></label>{% endfor %}</div>
{% if nps %}<div class="ends"><span>{{ t.low }}</span><span>{{ t.high }}</span></div>{% endif %}
<p class="comment"><label>{{ follow_up or t.comment }}<textarea name="comment" maxlength="5000">
{{- comment or "" }}</textarea></label></p>
{% if asks_publish %}<p class="consent"><label><input type="checkbox" name="publish" value="yes">
{{ t.publish }}</label></p>{% endif %}
<button type="submit">{{ t.send }}</button>
{% if answered %}<p class="note">{{ t.change }}</p>{% endif %}
</form>{% endblock %}"""

_MESSAGE = """{% extends "base" %}{% block body %}<h1>{{ heading }}</h1>
{% if note %}<p class="note">{{ note }}</p>{% endif %}{% endblock %}"""

_UNSUBSCRIBE = """{% extends "base" %}{% block body %}<form method="post">
<h1>{{ t.unsubscribe_q }}</h1><button type="submit">{{ t.unsubscribe }}</button>
</form>{% endblock %}"""

_TEMPLATES = {"base": _BASE, "answer": _ANSWER, "message": _MESSAGE, "unsubscribe": _UNSUBSCRIBE}
_env = Environment(
    loader=DictLoader(_TEMPLATES),
    autoescape=select_autoescape(default=True, default_for_string=True),
)


def register(templates: dict[str, str]) -> None:
    """Add templates (which extend "base") to the pages' environment, at import time."""
    taken = _TEMPLATES.keys() & templates.keys()
    if taken:
        raise ValueError(f"templates already registered: {sorted(taken)}")
    _TEMPLATES.update(templates)


def strings(locale: str | None) -> tuple[str, dict[str, str]]:
    language = (locale or "en").split("-")[0].lower()
    if language not in STRINGS:
        language = "en"
    return language, STRINGS[language]


def render(template: str, locale: str | None, **values: Any) -> str:
    lang, t = strings(locale)
    return _env.get_template(template).render(lang=lang, t=t, **values)
