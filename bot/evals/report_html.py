"""report.html: the Summary as one self-contained page (inline CSS and SVG charts, no script, nothing fetched)."""

from __future__ import annotations

from collections import Counter
from html import escape

from bot.evals.report import LABELS, LISTED_SKIPS, Summary, far_note, labels_note, period_name, share

COLOURS = {"negative": "#d7463a", "neutral": "#9aa0a6", "positive": "#3b9a5a"}
STYLE = """
body{font:15px/1.45 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0}td,th{padding:.2rem .7rem;border-bottom:1px solid #eee;text-align:right}
td:first-child,th:first-child{text-align:left}blockquote{margin:.3rem 0 .3rem 1rem;padding-left:.7rem;
border-left:3px solid #d7463a;white-space:pre-wrap}.note{color:#666}.key span{margin-right:1rem}
.key i{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem;vertical-align:-1px}
"""


def html(s: Summary) -> str:
    parts = [f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>What customers say: "
             f"{escape(s.title)}</title><style>{STYLE}</style></head><body>",
             f"<h1>What customers say: {escape(s.title)}</h1>",
             f"<p><b id=\"rows\">{s.rows}</b> comments analysed; <b id=\"skipped\">{len(s.skipped)}</b> rows of the "
             "input could not be read (listed at the end).</p>",
             f"<p class=\"note\">{escape(labels_note(s))}; every number here is counted from rows.csv.</p>",
             "<h2>Sentiment</h2>", _share_chart(s), _key(),
             _table("sentiment", [(label, Counter({label: s.by_sentiment[label]})) for label in LABELS], s.rows,
                    labels=False)]
    for heading, groups in (("intent", s.by_intent), ("language", s.by_language), ("source", s.by_source)):
        if groups:
            parts += [f"<h2>By {heading}</h2>", _table(heading, sorted(groups.items()), s.rows)]
    if s.period:
        parts += [f"<h2>Sentiment by {s.period}</h2>", _time_chart(s), _key(),
                  _table(s.period, [(period_name(d, s.period), c) for d, c in s.by_period.items()], None)]
        if s.undated:
            parts.append(f"<p class=\"note\">{s.undated} rows have a date that could not be read; "
                         "they are not in this chart.</p>")
        if s.far:
            parts.append(f"<p class=\"note\">{far_note(s, 'chart')}</p>")
    parts.append("<h2>Most frequent complaint topics</h2>")
    if not s.topics:
        parts.append("<p>No phrase comes up in enough negative comments to call it a topic.</p>")
    for t in s.topics:
        parts.append(f"<h3>{escape(t.phrase)}: {t.negative} negative comments <span class=\"note\">"
                     f"({share(t.negative, t.mentions)} of the {t.mentions} that mention it)</span></h3>")
        parts += [f"<blockquote>{escape(text)}</blockquote>" for text in t.examples]
    parts.append("<h2>Most negative comments</h2><ol id=\"most-negative\">")
    parts += [f"<li><span class=\"note\">{confidence:.2f}, row {escape(ref)}:</span> {escape(text)}</li>"
              for confidence, ref, text in s.most_negative]
    parts.append("</ol>")
    if s.skipped:
        parts.append(f"<h2>Rows that could not be read ({len(s.skipped)})</h2><table><tr><th>line</th><th>why</th></tr>")
        parts += [f"<tr><td>{escape(ref)}</td><td style=\"text-align:left\">{escape(reason)}</td></tr>"
                  for ref, reason in s.skipped[:LISTED_SKIPS]]
        parts.append("</table>")
        if len(s.skipped) > LISTED_SKIPS:
            parts.append(f"<p>{len(s.skipped) - LISTED_SKIPS} more in skipped.csv.</p>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _table(first: str, groups, whole: int | None, labels: bool = True) -> str:
    head = f"<tr><th>{escape(first)}</th><th>comments</th><th>share</th>"
    head += "".join(f"<th>{label}</th>" for label in LABELS) if labels else ""
    rows = []
    for name, counts in groups:
        total = sum(counts.values())
        cells = "".join(f"<td>{counts[label]} ({share(counts[label], total)})</td>" for label in LABELS)
        rows.append(f"<tr><td>{escape(str(name))}</td><td>{total}</td><td>{share(total, whole) if whole else ''}"
                    f"</td>{cells if labels else ''}</tr>")
    return f"<table>{head}</tr>{''.join(rows)}</table>"


def _key() -> str:
    return "<p class=\"key\">" + "".join(
        f"<span><i style=\"background:{COLOURS[label]}\"></i>{label}</span>" for label in LABELS) + "</p>"


def _share_chart(s: Summary) -> str:
    """One 100% bar split by sentiment."""
    width, height, x = 600, 36, 0.0
    bars = []
    for label in LABELS:
        part = width * s.by_sentiment[label] / s.rows if s.rows else 0.0
        bars.append(f"<rect x=\"{x:.1f}\" y=\"0\" width=\"{part:.1f}\" height=\"{height}\" fill=\"{COLOURS[label]}\">"
                    f"<title>{label}: {s.by_sentiment[label]} ({share(s.by_sentiment[label], s.rows)})</title></rect>")
        x += part
    return (f"<svg id=\"sentiment-chart\" role=\"img\" aria-label=\"sentiment shares\" width=\"{width}\" "
            f"height=\"{height}\" viewBox=\"0 0 {width} {height}\" xmlns=\"http://www.w3.org/2000/svg\">"
            + "".join(bars) + "</svg>")


def _time_chart(s: Summary) -> str:
    """Comments per period, stacked by sentiment (negative at the bottom), oldest left."""
    width, height, left, bottom, top = 720, 260, 44, 24, 10
    periods = list(s.by_period.items())
    peak = max(sum(c.values()) for _, c in periods) or 1
    slot = (width - left) / len(periods)
    scale = (height - bottom - top) / peak
    shapes = [f"<line x1=\"{left}\" y1=\"{height - bottom}\" x2=\"{width}\" y2=\"{height - bottom}\" stroke=\"#555\"/>",
              f"<text x=\"{left - 6}\" y=\"{top + 10}\" text-anchor=\"end\" font-size=\"11\">{peak}</text>",
              f"<text x=\"{left - 6}\" y=\"{height - bottom}\" text-anchor=\"end\" font-size=\"11\">0</text>"]
    for i, (start, counts) in enumerate(periods):
        x, y = left + i * slot + slot * 0.1, height - bottom
        for label in LABELS:
            h = counts[label] * scale
            y -= h
            shapes.append(f"<rect x=\"{x:.1f}\" y=\"{y:.1f}\" width=\"{slot * 0.8:.1f}\" height=\"{h:.1f}\" "
                          f"fill=\"{COLOURS[label]}\"><title>{period_name(start, s.period)} {label}: "
                          f"{counts[label]}</title></rect>")
    for i in sorted({0, len(periods) - 1}):
        anchor = "start" if i == 0 else "end"
        x = left if i == 0 else width
        shapes.append(f"<text x=\"{x}\" y=\"{height - 6}\" text-anchor=\"{anchor}\" font-size=\"11\">"
                      f"{period_name(periods[i][0], s.period)}</text>")
    return (f"<svg id=\"time-chart\" role=\"img\" aria-label=\"sentiment by {s.period}\" width=\"{width}\" "
            f"height=\"{height}\" viewBox=\"0 0 {width} {height}\" xmlns=\"http://www.w3.org/2000/svg\">"
            + "".join(shapes) + "</svg>")
