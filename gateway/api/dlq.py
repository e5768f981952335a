"""`GET /dlq` and `POST /dlq/replay`: the dead letters and their replay, as `hookline replay` does.

A dead letter for a definition is its team's; one of a record that failed for itself (it did not
decode) belongs to no team and only an operator sees it. The DLQ is read at each request up to
its end then (`hookline.dlq.read_dead_letters`), bounded in time like the API's Kafka writes.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from aiohttp import web

from gateway.api.auth import Principal
from gateway.api.messages import check_filters, json_response, page_by_id, page_limit, read_model
from gateway.api.models import DeadLetter, DeadLetterList, DlqReplayed, DlqReplayRequest
from gateway.api.state import API, ApiState
from gateway.errors import Unprocessable
from hookline import dlq
from schemas.validation import SchemaError

__all__ = ["list_dlq", "replay_dlq"]

_FILTERS = ("reason", "definition", "topic", "team", "source")


def visible_to(principal: Principal, letter: dlq.DeadLetter) -> bool:
    """Whose a dead letter is: its definition's team's, or (a record that failed for itself, with
    no definition) an operator's alone."""
    return principal.operator or letter.team == principal.team


def _selected(principal: Principal, letters: list[dlq.DeadLetter], filters: Mapping[str, str]) -> list[dlq.DeadLetter]:
    """The dead letters the caller may see that `filters` select, newest first."""
    chosen = [
        letter
        for letter in letters
        if visible_to(principal, letter)
        and filters.get("reason", "") in letter.reason
        and filters.get("definition", letter.definition) == letter.definition
        and filters.get("topic", letter.topic) == letter.topic
        and filters.get("team", letter.team) == letter.team
        and filters.get("source", letter.source) == letter.source
    ]
    return sorted(chosen, key=lambda letter: (letter.last_seen, letter.id), reverse=True)


async def read_dead_letters(state: ApiState) -> list[dlq.DeadLetter]:
    """Every dead letter, read within the API's Kafka timeout (503 otherwise)."""
    letters: list[dlq.DeadLetter] = await state.kafka_call(
        dlq.read_dead_letters(state.settings.kafka), "the DLQ could not be read in time; retry"
    )
    return letters


def _answer(letter: dlq.DeadLetter) -> DeadLetter:
    return DeadLetter(
        id=letter.id,
        reason=letter.reason,
        topic=letter.topic,
        partition=letter.partition,
        offset=letter.offset,
        definition_id=letter.definition,
        version=letter.version,
        team=letter.team,
        event_id=letter.event_id,
        source=letter.source,
        type=letter.type,
        first_seen=letter.first_seen,
        last_seen=letter.last_seen,
        times=letter.times,
    )


async def list_dlq(request: web.Request, principal: Principal) -> web.Response:
    state = request.app[API]
    limit = page_limit(request, state.options.page_size, state.options.max_page_size)
    check_filters(request.query, _FILTERS, principal, "dead letters")
    letters = _selected(principal, await read_dead_letters(state), request.query)
    scope = orjson.dumps([principal.team, sorted((k, v) for k, v in request.query.items() if k in _FILTERS)]).decode()
    page, next_cursor = page_by_id(letters, lambda letter: letter.id, request, scope, limit)
    return json_response(DeadLetterList(items=[_answer(letter) for letter in page], next_cursor=next_cursor))


async def replay_dlq(request: web.Request, principal: Principal) -> web.Response:
    """Re-publish the chosen dead letters (each once) to the topic they came from."""
    state = request.app[API]
    body = await read_model(request, DlqReplayRequest)
    if body.ids is not None and body.filter:
        raise Unprocessable(
            "name dead letters by ids or by filter, not both", errors=[SchemaError("", "ids and filter")]
        )
    check_filters(body.filter, _FILTERS, principal, "dead letters")
    chosen = _selected(principal, await read_dead_letters(state), body.filter)
    if body.ids is not None:
        wanted = set(body.ids)
        chosen = [letter for letter in chosen if letter.id in wanted]
        if missing := sorted(wanted - {letter.id for letter in chosen}):
            raise Unprocessable(
                f"no dead letter {missing[0]!r} that you may see",
                errors=[SchemaError(f"ids[{body.ids.index(m)}]", "unknown") for m in missing],
            )
    chosen = chosen[: state.options.bulk_limit]
    if not body.dry_run:
        # A retry is harmless: a replayed record starts nothing twice (its runs' ids are its own).
        await state.kafka_call(dlq.replay(state.settings.kafka, chosen), "Kafka did not take the replay in time; retry")
    return json_response(
        DlqReplayed(
            matched=len(chosen),
            dry_run=body.dry_run,
            selected=[c.id for c in chosen],
            replayed=[] if body.dry_run else [c.id for c in chosen],
        )
    )
