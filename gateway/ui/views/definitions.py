"""Definitions: the list; a definition's page (its YAML, triggers, schedules, versions, lanes);
the diff of two versions; the editor, whose errors show at their lines; delete; start a run from
a form made of the definition's `inputs` schema.

The editor sends the YAML's document to the API as JSON (the API reads JSON only) and places the
API's errors at their lines (`gateway.ui.yaml_lines`); text that is not YAML is reported at its
mark without asking the API.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web

from gateway.ui.api import ApiError, ConsoleApi
from gateway.ui.console import Done, Form, action, page, render, seg, session_of
from gateway.ui.input_form import Field, fields_of, place_errors, read_input
from gateway.ui.yaml_lines import YamlProblem, annotate, dump, locate, parse, side_by_side, unified
from schemas.validation import SchemaError

__all__ = [
    "create_definition",
    "definition_page",
    "definitions_page",
    "delete_definition",
    "delete_page",
    "diff_page",
    "edit_page",
    "new_page",
    "save_definition",
    "start_definition",
    "start_page",
]

FLOW_CONTROL = ("concurrency", "throttle", "debounce", "batch")
NEW_TEXT = """\
name: My workflow
description: What it does, in one line
trigger:
  type: manual
steps:
  - name: first step
    agent: my-agent
"""


def _api_path(definition_id: str, tail: str = "") -> str:
    return f"/workflows/{urllib.parse.quote(definition_id, safe='')}{tail}"


def _ui_path(definition_id: str, tail: str = "") -> str:
    return f"/ui/definitions/{seg(definition_id)}{tail}"


def _need(api: ConsoleApi, scope: str) -> None:
    """A page only a token with `scope` can use is refused to others as the API would refuse it."""
    if scope not in api.principal.scopes:
        raise ApiError(403, f'token "{api.principal.name}" has no "{scope}" scope, which this page needs')


def _version(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name, "")
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise ApiError(400, f'"{name}" must be a version number, got "{raw[:20]}"')
    return int(raw)


def _text(form: Form, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _triggers(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    trigger = document.get("trigger")
    listed = [trigger] if isinstance(trigger, dict) else trigger if isinstance(trigger, list) else []
    return [t for t in listed if isinstance(t, dict)] or [{"type": "manual"}]


@page("definitions.html")
async def definitions_page(request: web.Request, api: ConsoleApi) -> Mapping[str, Any]:
    cursor = request.query.get("cursor")
    listing = await api.get("/workflows", {"cursor": cursor, "limit": 50})
    return {"title": "Definitions", "items": listing["items"], "next_cursor": listing["next_cursor"], "cursor": cursor}


@page("definition.html")
async def definition_page(request: web.Request, api: ConsoleApi) -> Mapping[str, Any]:
    definition_id = request.match_info["definition_id"]
    version = _version(request, "version")
    workflow = await api.get(_api_path(definition_id), {"version": version} if version else None)
    document = workflow["definition"]
    triggers = _triggers(document)
    lanes: Any = None
    if any(part in t for t in triggers for part in FLOW_CONTROL):
        try:
            lanes = (await api.get(_api_path(workflow["id"], "/lanes")))["items"]
        except ApiError as exc:
            lanes = {"problem": f"{exc.status}: {exc.detail}"}
    latest: int | None = workflow["version"]
    if version is not None:  # a former version, or one of a deleted definition
        try:
            latest = (await api.get(_api_path(workflow["id"])))["version"]
        except ApiError as exc:
            if exc.status != 404:
                raise
            latest = None
    return {
        "title": f"Definition {workflow['name']}",
        "w": workflow,
        "shown": workflow["version"],
        "latest": latest,
        "lines": annotate(dump(document)),
        "triggers": triggers,
        "flow_control": FLOW_CONTROL,
        "lanes": lanes,
        "runs_href": "/ui/runs?" + urllib.parse.urlencode({"definition": workflow["id"]}),
    }


@page("definition_diff.html")
async def diff_page(request: web.Request, api: ConsoleApi) -> Mapping[str, Any]:
    definition_id = request.match_info["definition_id"]
    b = _version(request, "b")
    newer = await api.get(_api_path(definition_id), {"version": b} if b else None)
    a = _version(request, "a") or max([v for v in newer["versions"] if v < newer["version"]], default=newer["version"])
    older = await api.get(_api_path(definition_id), {"version": a})
    split = request.query.get("view") == "split"
    old_text, new_text = dump(older["definition"]), dump(newer["definition"])
    rows = side_by_side(old_text, new_text) if split else unified(old_text, new_text)
    return {
        "title": f"Diff of {newer['name']}",
        "w": newer,
        "a": a,
        "b": newer["version"],
        "split": split,
        "rows": rows,
    }


# --- the editor ---------------------------------------------------------------------------------


def _editor(
    definition_id: str | None,
    base: int | None,
    text: str,
    located: list[tuple[SchemaError, int]] | None = None,
    **outcome: Any,
) -> dict[str, Any]:
    """The editor's page: the text, and what validating or saving it said (errors at their lines,
    a problem without a place, `stale` after a concurrent save, `valid`)."""
    lines = annotate(text, located or [])
    return {
        "title": f"Edit {definition_id}" if definition_id else "New definition",
        "definition_id": definition_id,
        "action": _ui_path(definition_id, "/edit") if definition_id else "/ui/definitions/new",
        "base": base,
        "text": text,
        "errors": [(error, min(number, len(lines))) for error, number in located or []],
        "lines": lines if located else None,
        "problem": None,
        "stale": None,
        "valid": None,
        **outcome,
    }


@page("definition_edit.html")
async def edit_page(request: web.Request, api: ConsoleApi) -> Mapping[str, Any]:
    _need(api, "write")
    definition_id = request.match_info["definition_id"]
    current = await api.get(_api_path(definition_id))
    start_from = _version(request, "version")  # a former version's text, to save as the next one
    shown = await api.get(_api_path(definition_id), {"version": start_from}) if start_from else current
    return _editor(current["id"], current["version"], dump(shown["definition"]))


@page("definition_edit.html")
async def new_page(request: web.Request, api: ConsoleApi) -> Mapping[str, Any]:
    _need(api, "write")
    return _editor(None, None, NEW_TEXT)


def _as_errors(raw: Any) -> list[SchemaError]:
    return [SchemaError(str(e.get("location", "")), str(e.get("message", ""))) for e in raw or []]


async def _submit(request: web.Request, api: ConsoleApi, form: Form, definition_id: str | None) -> Done | web.Response:
    text = _text(form, "yaml").replace("\r\n", "\n")  # a browser sends a textarea's lines with CRLF
    base = int(_text(form, "base")) if _text(form, "base").isdigit() else None

    def again(status: int, located: list[tuple[SchemaError, int]] | None = None, **outcome: Any) -> web.Response:
        context = _editor(definition_id, base, text, located, **outcome)
        return render(request, "definition_edit.html", context, session_of(request), status=status)

    try:
        parsed = parse(text)
        body = orjson.dumps(parsed.document)
    except YamlProblem as problem:
        return again(422, [(problem.error(), problem.line)])
    except orjson.JSONEncodeError as exc:  # a YAML value JSON has no form for (binary, a non-text key)
        return again(422, problem=f"The YAML holds a value JSON cannot carry ({exc}); quote it as a string.")
    try:
        if form.get("op") == "validate":
            result = await api.call("POST", "/workflows/validate", raw_body=body)
            errors = _as_errors(result["errors"])
            if not errors:
                return again(200, valid=f'Valid: it would be saved as "{result["id"]}".')
        elif definition_id is None:
            saved = await api.call("POST", "/workflows", raw_body=body)
            return Done(_ui_path(saved["id"]), f"Created {saved['id']}, version {saved['version']}.")
        else:
            headers = {"If-Match": f'"{base}"'} if base else None
            saved = await api.call("PUT", _api_path(definition_id), raw_body=body, headers=headers)
            return Done(_ui_path(saved["id"]), f"Saved version {saved['version']} of {saved['id']}.")
    except ApiError as exc:
        if exc.status == 412 and definition_id is not None:
            return again(412, stale=await _stale(api, definition_id, base))
        if not exc.errors:
            return again(exc.status, problem=f"{exc.status}: {exc.detail}")
        errors = exc.errors
    return again(422, locate(errors, parsed.root))


async def _stale(api: ConsoleApi, definition_id: str, base: int | None) -> dict[str, Any]:
    """What a save refused by its If-Match shows: the version edited, the one saved since."""
    try:
        now = (await api.get(_api_path(definition_id)))["version"]
    except ApiError:
        now = None
    diff = _ui_path(definition_id, f"/diff?a={base}&b={now}") if base and now else None
    return {"base": base, "now": now, "diff": diff, "edit": _ui_path(definition_id, "/edit")}


@action
async def save_definition(request: web.Request, api: ConsoleApi, form: Form) -> Done | web.Response:
    return await _submit(request, api, form, request.match_info["definition_id"])


@action
async def create_definition(request: web.Request, api: ConsoleApi, form: Form) -> Done | web.Response:
    return await _submit(request, api, form, None)


# --- delete -------------------------------------------------------------------------------------


@page("definition_delete.html")
async def delete_page(request: web.Request, api: ConsoleApi) -> Mapping[str, Any]:
    _need(api, "write")
    workflow = await api.get(_api_path(request.match_info["definition_id"]))
    return {"title": f"Delete {workflow['id']}", "w": workflow}


@action
async def delete_definition(request: web.Request, api: ConsoleApi, form: Form) -> Done:
    definition_id = request.match_info["definition_id"]
    version = _text(form, "version")
    headers = {"If-Match": f'"{version}"'} if version.isdigit() else None
    try:
        deleted = await api.call("DELETE", _api_path(definition_id), headers=headers)
    except ApiError as exc:
        if exc.status != 412:
            raise
        message = f"Not deleted: version {version} is no longer current; look at the latest one first."
        return Done(_ui_path(definition_id), message, error=True)
    return Done("/ui/definitions", f"Deleted {deleted['id']} (version {deleted['version']} stays readable).")


# --- start a run --------------------------------------------------------------------------------


def _starter(workflow: Mapping[str, Any], fields: list[Field], **outcome: Any) -> dict[str, Any]:
    return {
        "title": f"Start {workflow['name']}",
        "w": workflow,
        "fields": fields,
        "problems": [],
        "stale": None,
        **outcome,
    }


@page("definition_start.html")
async def start_page(request: web.Request, api: ConsoleApi) -> Mapping[str, Any]:
    _need(api, "execute")
    workflow = await api.get(_api_path(request.match_info["definition_id"]))
    return _starter(workflow, fields_of(workflow["definition"].get("inputs")))


@action
async def start_definition(request: web.Request, api: ConsoleApi, form: Form) -> Done | web.Response:
    """The run's input read from the form, then `POST /workflows/{id}/start` for the version the
    form was made for; the API's errors shown at their fields."""
    workflow = await api.get(_api_path(request.match_info["definition_id"]))
    fields = fields_of(workflow["definition"].get("inputs"))
    run_input, errors = read_input(fields, form)
    version = _text(form, "version")

    def again(status: int, **outcome: Any) -> web.Response:
        context = _starter(workflow, fields, problems=place_errors(fields, errors), **outcome)
        return render(request, "definition_start.html", context, session_of(request), status=status)

    if errors:
        return again(422)
    headers = {"If-Match": f'"{version}"'} if version.isdigit() else None
    try:
        started = await api.call(
            "POST", _api_path(workflow["id"], "/start"), body={"input": run_input}, headers=headers
        )
    except ApiError as exc:
        if exc.status == 412:  # the form was made for an older version: show the current one's
            return again(412, stale={"base": version, "now": workflow["version"]})
        errors = exc.errors or [SchemaError("", f"{exc.status}: {exc.detail}")]
        return again(exc.status)
    run = started["execution_id"]
    return Done(f"/ui/runs/{seg(run)}", f"Started run {run} of {workflow['id']}.")
