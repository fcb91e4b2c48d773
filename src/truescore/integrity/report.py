"""The transparency report: what the integrity engine caught and discounted, by topic and by month.

:func:`report_tables` computes its figures from the current reviews, their stored ``suspicion`` and the
rings, and :func:`render_report` renders them as one self-contained HTML page (inline CSS and SVG
charts; no script, no web font, no CDN),
like the public trust-and-safety reports of the large review sites: totals, flagged reviews per month
and per topic (counts and shares, with charts), the rings (members, targets, window, evidence) and the
items with the most flagged reviews, each with its evidence grade (:mod:`.summary`).
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from truescore.integrity.summary import evidence_grade

__all__ = ["ReportTables", "render_report", "report_tables"]

_CSS = """
body{font:15px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1000px;
color:#1d232b;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #dde2e8}
.muted{color:#5b6673}table{border-collapse:collapse;width:100%;margin:.6rem 0}th,td{padding:.3rem .5rem;
border-bottom:1px solid #eceff3;text-align:right}th:first-child,td:first-child{text-align:left}
.cards{display:flex;gap:1rem;flex-wrap:wrap}.card{border:1px solid #dde2e8;border-radius:8px;padding:.7rem 1rem;
min-width:150px}.card b{display:block;font-size:1.4rem}svg{max-width:100%;height:auto}.bar{fill:#8aa4c8}
.flag{fill:#c0392b}
"""


@dataclass(frozen=True, slots=True)
class ReportTables:
    """The figures of the transparency report (also for tests and other front ends).

    Attributes
    ----------
    threshold : float
        A review is flagged when its suspicion is at least this (``integrity.flag_threshold``).
    n_reviews, n_scored, n_flagged : int
        Current reviews, those with a stored suspicion, those flagged.
    n_accounts, n_accounts_flagged_reviews : int
        Accounts with a current review, and those with at least one flagged review.
    by_month, by_topic : DataFrame
        ``month`` / ``topic``, ``reviews``, ``flagged``, ``share``.
    items : DataFrame
        The 20 items with the most flagged reviews: ``item_id, reviews, flagged, share, grade``.
    rings : list of dict
        The stored rings (as :func:`truescore.store.integrity_io.read_rings` gives them).
    """

    threshold: float
    n_reviews: int
    n_scored: int
    n_flagged: int
    n_accounts: int
    n_accounts_flagged_reviews: int
    by_month: pd.DataFrame
    by_topic: pd.DataFrame
    items: pd.DataFrame
    rings: list[dict[str, Any]]
    #: what moderators' verdicts added (the ``moderation`` entry of the integrity run's details,
    #: :meth:`truescore.integrity.moderation.ModerationOutcome.details`); None: the store holds no verdicts
    moderation: dict[str, Any] | None = None


def report_tables(reviews: pd.DataFrame, suspicion: pd.DataFrame, rings: list[dict[str, Any]], threshold: float,
                  moderation: dict[str, Any] | None = None) -> ReportTables:
    """The report's figures from the current reviews (``id, item_id, user_id, created_at, topic``), their
    stored suspicion (``review_id, suspicion``), the stored rings and what verdicts added (``moderation``)."""
    if len(reviews) == 0:
        raise ValueError("the store has no reviews: nothing to report")
    df = reviews[["id", "item_id", "user_id", "created_at", "topic"]].merge(
        suspicion, how="left", left_on="id", right_on="review_id")
    if df["suspicion"].isna().all():
        raise ValueError("no review has a suspicion yet: run `truescore score` first")
    df["flagged"] = df["suspicion"].fillna(0.0) >= threshold
    df["month"] = pd.to_datetime(df["created_at"], unit="s", utc=True).dt.strftime("%Y-%m")
    by_month = df.groupby("month").agg(reviews=("id", "size"), flagged=("flagged", "sum")).reset_index()
    by_topic = df.groupby("topic").agg(reviews=("id", "size"), flagged=("flagged", "sum")).reset_index()
    for frame in (by_month, by_topic):
        frame["share"] = frame["flagged"] / frame["reviews"]
    by_topic = by_topic.sort_values(["flagged", "topic"], ascending=[False, True])
    items = df.groupby("item_id").agg(reviews=("id", "size"), flagged=("flagged", "sum")).reset_index()
    items["share"] = items["flagged"] / items["reviews"]
    items["grade"] = [evidence_grade(int(n - f), float(s)) for n, f, s in
                      zip(items["reviews"], items["flagged"], items["share"], strict=True)]
    items = items[items["flagged"] > 0].sort_values(["flagged", "item_id"], ascending=[False, True]).head(20)
    acc = df.groupby("user_id")["flagged"].any()
    return ReportTables(threshold=threshold, n_reviews=len(df), n_scored=int(df["suspicion"].notna().sum()),
                        n_flagged=int(df["flagged"].sum()), n_accounts=int(acc.size),
                        n_accounts_flagged_reviews=int(acc.sum()), by_month=by_month, by_topic=by_topic,
                        items=items, rings=rings, moderation=moderation)


def _bars(labels: list[str], total: list[float], flagged: list[float], *, width: int = 940, height: int = 220) -> str:
    """An inline SVG bar chart: total per label (light) with the flagged part (red) over it."""
    n = max(len(labels), 1)
    top = max(max(total, default=1.0), 1.0)
    bw = (width - 60) / n
    parts = [f'<svg viewBox="0 0 {width} {height + 40}" role="img" xmlns="http://www.w3.org/2000/svg">']
    for k, (lab, t, f) in enumerate(zip(labels, total, flagged, strict=True)):
        x = 50 + k * bw
        h_t, h_f = height * t / top, height * f / top
        parts.append(f'<rect class="bar" x="{x:.1f}" y="{height - h_t:.1f}" width="{max(bw - 2, 1):.1f}" '
                     f'height="{h_t:.1f}"><title>{html.escape(lab)}: {int(t)} reviews, {int(f)} flagged</title></rect>')
        parts.append(f'<rect class="flag" x="{x:.1f}" y="{height - h_f:.1f}" width="{max(bw - 2, 1):.1f}" '
                     f'height="{h_f:.1f}"/>')
        if n <= 24 or k % max(1, n // 12) == 0:
            parts.append(f'<text x="{x:.1f}" y="{height + 14}" font-size="10">{html.escape(lab[:12])}</text>')
    parts.append(f'<text x="0" y="12" font-size="10">{int(top)}</text><text x="0" y="{height}" font-size="10">0</text>')
    parts.append("</svg>")
    return "".join(parts)


def _table(columns: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _date(t: float | None) -> str:
    return "" if t is None or not np.isfinite(t) else datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d")


def render_report(t: ReportTables, *, title: str = "Transparency report") -> str:
    """The transparency report as one self-contained HTML document."""
    bm, bt = t.by_month, t.by_topic
    share = t.n_flagged / max(t.n_reviews, 1)
    cards = [("reviews", f"{t.n_reviews:,}"), ("flagged and discounted", f"{t.n_flagged:,} ({share:.1%})"),
             ("accounts with a flagged review", f"{t.n_accounts_flagged_reviews:,} of {t.n_accounts:,}"),
             ("rings", f"{len(t.rings):,}")]
    out = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
           f"<style>{_CSS}</style></head><body>", f"<h1>{html.escape(title)}</h1>",
           f"<p class='muted'>Generated {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} by truescore from "
           f"{t.n_scored:,} scored reviews. A review is flagged when its suspicion is at least "
           f"{t.threshold:.2f}; flagged reviews stay visible but count less (or, for a ring, at most a bounded "
           f"share) in the ratings shown.</p>",
           "<div class='cards'>" + "".join(f"<div class='card'>{html.escape(k)}<b>{html.escape(v)}</b></div>"
                                         for k, v in cards) + "</div>",
           "<h2>By month</h2>", _bars(bm["month"].tolist(), bm["reviews"].tolist(), bm["flagged"].tolist()),
           _table(["month", "reviews", "flagged", "share"],
                  [[m, f"{r:,}", f"{f:,}", f"{s:.1%}"] for m, r, f, s in bm.itertuples(index=False)][-24:]),
           "<h2>By topic</h2>", _bars(bt["topic"].str.replace("reviews.public.", "", regex=False).tolist(),
                                      bt["reviews"].tolist(), bt["flagged"].tolist()),
           _table(["topic", "reviews", "flagged", "share"],
                  [[tp, f"{r:,}", f"{f:,}", f"{s:.1%}"] for tp, r, f, s in bt.itertuples(index=False)]),
           "<h2>Rings</h2>"]
    if t.rings:
        out.append(_table(["ring", "direction", "accounts", "items", "window", "strength", "evidence"],
                          [[r["ring_id"], r["direction"], r["n_members"], r["n_targets"],
                            f"{_date(r['window_start'])} .. {_date(r['window_end'])}", f"{r['strength']:.2f}",
                            r["evidence"].get("description", "")] for r in t.rings[:50]]))
    else:
        out.append("<p>No ring was detected.</p>")
    out.append("<h2>Items with the most flagged reviews</h2>")
    out.append(_table(["item", "reviews", "flagged", "share", "evidence grade"],
                      [[i, f"{r:,}", f"{f:,}", f"{s:.1%}", g] for i, r, f, s, g in
                       t.items.itertuples(index=False)]) if len(t.items) else "<p>None.</p>")
    if t.moderation is not None:
        out.extend(moderation_section(t.moderation))
    out.append(f"<p class='muted'>Method: docs/integrity.md. Report time {time.strftime('%Y-%m-%d')}.</p>")
    out.append("</body></html>")
    return "\n".join(out)


def _auc_text(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.3f}"


def moderation_lines(m: dict[str, Any]) -> list[str]:
    """What the verdicts added, as plain sentences (the report's section, the CLI's ``score`` output)."""
    lines = [f"{m['verdicts']:,} verdicts ({m['fake_verdicts']:,} fake, {m['genuine_verdicts']:,} genuine; "
             f"{m['review_verdicts']:,} on reviews, {m['account_verdicts']:,} on accounts)"]
    for level in ("reviews", "accounts"):
        d = m[level]
        if d["applied"]:
            lines.append(f"{level}: {d['reason']}; out-of-fold AUC on the labelled {level}: unsupervised "
                         f"{_auc_text(d['auc_unsupervised_oof'])}, learned {_auc_text(d['auc_learned_oof'])}; "
                         f"{d['newly_flagged']:,} newly flagged, {d['unflagged']:,} no longer flagged")
        else:
            lines.append(f"{level}: {d['reason']}; the suspicion is the unsupervised one")
    return lines


def moderation_section(m: dict[str, Any]) -> list[str]:
    """The report's "Learning from moderation" section (HTML)."""
    rows = []
    for level in ("reviews", "accounts"):
        d = m[level]
        rows.append([level, "yes" if d["applied"] else "no", f"{d['labels_fake']:,}", f"{d['labels_genuine']:,}",
                     _auc_text(d["auc_unsupervised_oof"]), _auc_text(d["auc_learned_oof"]),
                     f"{d['newly_flagged']:,}", f"{d['unflagged']:,}"])
    return ["<h2>Learning from moderation</h2>",
            f"<p>{html.escape(moderation_lines(m)[0])}. Where a level has enough labels, its suspicion is the "
            "calibrated probability, learned from the verdicts, that the review or account is fake; a labelled "
            "row is always scored by a model trained without it (cross-fitting), so the AUCs below are "
            "out-of-fold. Reviews inherit their author's account verdict for training; an account with a fake "
            "review verdict counts as fake.</p>",
            _table(["level", "learned", "fake labels", "genuine labels", "AUC unsupervised (labelled rows)",
                    "AUC learned (out-of-fold)", "newly flagged", "no longer flagged"], rows),
            *(f"<p class='muted'>{html.escape(line)}</p>" for line in moderation_lines(m)[1:])]
