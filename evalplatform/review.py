"""The review queue for people: walk flagged or failed production traces, label them, promote genuine failures.

`evalplatform review --suite S` walks the open queue in the terminal (rich prompts: show the trace, label
pass/fail, pick or add a failure category, write a note); `--id ID --label fail --category C --note N`
does the same for one item from a script. A failure labelled here is appended to the suite's regression
set (evalplatform.traces.promote) unless promotion is turned off, and the time from the trace being flagged
to its case entering the set is recorded (freshness).
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import re
from dataclasses import dataclass
from typing import Any, TextIO

from evalplatform.errors import InputError
from evalplatform.history import HistoryStore
from evalplatform.history.monitoring import LABELS, MonitoringStore
from evalplatform.project import Project
from evalplatform.traces.pipeline import TraceSetup, setup_for

_CATEGORY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
SEVERITIES = ("low", "medium", "high", "critical")


def reviewer_name(explicit: str | None = None) -> str:
    """Who is reviewing: --reviewer, else $EVALPLATFORM_REVIEWER, else the login name."""
    if explicit:
        return explicit
    env = os.environ.get("EVALPLATFORM_REVIEWER")
    if env:
        return env
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def parse_fields(pairs: list[str] | None) -> dict[str, Any]:
    """--field NAME=VALUE (repeatable): VALUE is JSON when it parses (lists, numbers), else plain text."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        name, sep, raw = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise InputError(None, "--field", f"{pair!r} is not NAME=VALUE", "e.g. --field must_contain='[\"$20.00\"]'")
        try:
            out[name] = json.loads(raw)
        except ValueError:
            out[name] = raw
    return out


def known_categories(setup: TraceSetup, mstore: MonitoringStore) -> list[str]:
    """The failure taxonomy: categories added in review plus those the regression set already uses."""
    from evalplatform.traces.coverage import regression_categories

    names = {c["category"] for c in mstore.categories(setup.name)}
    names |= set(regression_categories(setup))
    return sorted(n for n in names if n)


def check_category(category: str) -> str:
    category = category.strip().lower()
    if not _CATEGORY.match(category):
        raise InputError(None, "--category", f"{category!r} is not a category name",
                         "lower-case letters, digits, - and _ (e.g. date-format)")
    return category


@dataclass
class LabelResult:
    item_id: str
    label: str
    category: str | None
    case_id: str | None = None
    regression_file: str | None = None
    already_promoted: bool = False
    freshness_s: float | None = None

    def line(self) -> str:
        text = f"{self.item_id}: labelled {self.label}" + (f" ({self.category})" if self.category else "")
        if self.case_id:
            verb = "was already in" if self.already_promoted else "appended to"
            text += f"; case {self.case_id} {verb} {self.regression_file}"
            if self.freshness_s is not None:
                text += f" ({self.freshness_s / 3600:.1f} h after the trace was flagged)"
        return text


def _item(mstore: MonitoringStore, setup: TraceSetup, item_id: str) -> dict[str, Any]:
    item = mstore.item(item_id) or mstore.item(f"{setup.name}:{item_id}")
    if item is None or item["suite"] != setup.name:
        raise InputError(None, "--id", f"no review item {item_id!r} in suite {setup.name!r}",
                         f"list them with `evalplatform review --suite {setup.name} --list`")
    return item


def apply_label(project: Project, suite: str, item_id: str, label: str, *, category: str | None = None,
                note: str | None = None, reviewer: str | None = None, fields: dict[str, Any] | None = None,
                severity: str | None = None, category_description: str | None = None, promote: bool = True,
                now: dt.datetime | None = None) -> LabelResult:
    """Label one queued trace; a failure (with its category) is appended to the regression set by default.

    Everything is checked before anything is written: an unknown item, a bad label, a failure without a
    category, or a case the suite could not run (a field its scorers need) changes nothing.
    """
    from evalplatform.traces.promote import append_case, build_case

    setup = setup_for(project, suite)
    store = HistoryStore(project.history_path)
    mstore = MonitoringStore(store)
    item = _item(mstore, setup, item_id)
    if label not in LABELS:
        raise InputError(None, "--label", f"unknown label {label!r}", "use pass or fail")
    if severity is not None and severity not in SEVERITIES:
        raise InputError(None, "--severity", f"unknown severity {severity!r}", f"use one of {', '.join(SEVERITIES)}")
    if label == "fail" and not category:
        raise InputError(None, "--category", "a failure needs its failure category",
                         f"pick one of {', '.join(known_categories(setup, mstore)) or '(none yet)'} or name a new one")
    category = check_category(category) if category else None
    who = reviewer_name(reviewer)
    new = None if category is None or category in known_categories(setup, mstore) else (category, category_description)
    row = None
    if label == "fail" and promote:
        trace = mstore.trace(setup.name, item["trace_id"])
        if trace is None:
            raise InputError(None, "--id", f"the trace of {item['item_id']} is no longer stored", "label it without "
                             "promotion (--no-promote)")
        row = build_case(setup, trace, category=category, note=note, reviewer=who, fields=fields, severity=severity,
                         today=(now or dt.datetime.now(dt.timezone.utc)).date())
        from evalplatform.traces.promote import check_case

        check_case(setup, row)  # a case the suite could not run, or a file it cannot be appended to: nothing written
    mstore.record_label(item["item_id"], label, category, note, who, new_category=new)
    result = LabelResult(item["item_id"], label, category)
    if row is not None:
        path, appended = append_case(setup, row)
        promoted_at = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc).replace(tzinfo=None)
        mstore.record_promotion(item["item_id"], row["id"], str(path), promoted_at)
        result.case_id, result.regression_file, result.already_promoted = row["id"], str(path), not appended
        if item.get("flagged_at") is not None:
            result.freshness_s = (promoted_at - item["flagged_at"]).total_seconds()
    return result


def review_list(project: Project, suite: str, status: str | None = "open", limit: int = 20) -> list[dict[str, Any]]:
    setup = setup_for(project, suite)
    return MonitoringStore(HistoryStore(project.history_path)).queue(setup.name, status=status, limit=limit)


def review_next(project: Project, suite: str) -> dict[str, Any] | None:
    """The most suspicious open item, or None when the queue is empty."""
    items = review_list(project, suite, limit=1)
    return items[0] if items else None


def format_list(items: list[dict[str, Any]]) -> str:
    if not items:
        return "the review queue is empty"
    lines = []
    for i in items:
        why = "; ".join(i["reasons"][:3])
        status = i["label"] or i["status"]
        lines.append(f"{i['item_id']}  [{status}]  {str(i.get('input') or '')[:60]!r}  <- {why}")
    return "\n".join(lines)


def format_item(item: dict[str, Any], results: list[dict[str, Any]] | None = None) -> str:
    """A trace as a reviewer needs it: what was asked, what came back, why it is here, what the scorers said."""
    lines = [f"{item['item_id']}   release {item.get('release') or '-'}   {item.get('timestamp') or ''}",
             f"why: {'; '.join(item.get('reasons') or []) or '-'}",
             f"tags: {', '.join(item.get('tags') or []) or '-'}   session: {item.get('session_id') or '-'}",
             "", "user:", f"  {item.get('input') or ''}", "", "reply:",
             "  " + (item["output"] if item.get("output") is not None else f"(no reply: {item.get('trace_error')})")]
    docs = item.get("retrieved_context")
    if docs is not None:
        lines += ["", f"retrieved ({len(docs)}):"] + [f"  - {d[:120]}" for d in docs[:3]]
    for r in results or []:
        if r["outcome"] != "pass":
            lines.append(f"scorer {r['scorer']} ({r['criterion']}): {r['outcome']}"
                         + (f" - {str(r.get('explanation') or r.get('error'))[:120]}" if (r.get("explanation") or
                                                                                      r.get("error")) else ""))
    return "\n".join(lines)


def _example(setup: TraceSetup, name: str) -> str | None:
    """How another case of the suite spells this field (JSON), so the reviewer types the same kind of value."""
    from evalplatform.runner import load_dataset

    cases = load_dataset(setup.suite).cases
    if name not in cases.columns:
        return None
    values = cases[name].drop_nulls()
    if values.len() == 0:
        return None
    value = values[0]
    value = value.to_list() if hasattr(value, "to_list") else value
    return json.dumps(value, ensure_ascii=False)[:60]


def walk(project: Project, suite: str, *, stdin: TextIO, stdout: TextIO, reviewer: str | None = None,
         limit: int = 20, promote: bool = True) -> list[LabelResult]:
    """Walk the open queue with rich prompts on the given streams (a terminal, or scripted input in tests)."""
    from rich.console import Console
    from rich.prompt import Prompt

    from evalplatform.traces.promote import build_case, missing_fields

    console = Console(file=stdout, force_terminal=False, width=110, highlight=False)
    setup = setup_for(project, suite)
    mstore = MonitoringStore(HistoryStore(project.history_path))
    who = reviewer_name(reviewer)
    done: list[LabelResult] = []
    items = mstore.queue(setup.name, limit=limit)
    if not items:
        console.print("the review queue is empty")
        return done

    def ask(question: str, **kw) -> str:
        return Prompt.ask(question, console=console, stream=stdin, **kw)

    for n, item in enumerate(items, 1):
        console.rule(f"{n}/{len(items)}")
        console.print(format_item(item, mstore.trace_results(setup.name, item["trace_id"])), markup=False)
        choice = ask("label", choices=["pass", "fail", "skip", "quit"], default="skip")
        if choice == "quit":
            break
        if choice == "skip":
            continue
        category, fields, new_desc = None, {}, None
        if choice == "fail":
            known = known_categories(setup, mstore)
            if known:
                console.print("categories: " + ", ".join(f"{i}) {c}" for i, c in enumerate(known, 1)), markup=False)
            answer = ask("failure category (number, or a new name)").strip()
            category = known[int(answer) - 1] if answer.isdigit() and 0 < int(answer) <= len(known) else answer
            category = check_category(category)
            if category not in known:
                new_desc = ask("describe the new category", default="") or None
        note = ask("note", default="") or None
        if choice == "fail" and promote:
            trace = mstore.trace(setup.name, item["trace_id"]) or {}
            row = build_case(setup, {**trace, "trace_id": item["trace_id"]}, category=category or "", note=note,
                             reviewer=who)
            for name, readers in sorted(missing_fields(setup, row).items()):
                like = _example(setup, name)
                raw = ask(f"field {name} for the regression case (read by {', '.join(readers)}"
                          + (f"; like {like}" if like else "") + ")")
                fields.update(parse_fields([f"{name}={raw}"]))
        try:
            result = apply_label(project, suite, item["item_id"], choice, category=category, note=note,
                                 reviewer=who, fields=fields, category_description=new_desc, promote=promote)
        except InputError as err:
            console.print(f"not saved: {err}", markup=False)
            continue
        console.print(result.line(), markup=False)
        done.append(result)
    return done
