"""The API's answers against its own OpenAPI document (no tests here): an answer's status must be
one the document gives for its route, and its JSON body must validate against the schema the
document gives for that route and status ($refs resolved within the document).

`record_answers` installs it in a gateway under test: every answer of a documented route is
checked as it leaves, and the breaches fail the test when the gateway stops.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from gateway.api import API_PREFIX
from gateway.api.openapi import SPEC

__all__ = ["ResponseContract", "record_answers"]

_URI = "urn:hookline:openapi"


class ResponseContract:
    """The answers the document allows, per route (`GET`, `/api/v1/workflows/{workflow_id}`)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self._registry: Registry[Any] = Registry().with_resource(_URI, DRAFT202012.create_resource(spec))

    def documented(self, method: str, path: str) -> bool:
        return method.lower() in self.spec["paths"].get(path, {})

    def breaches(self, method: str, path: str, status: int, content_type: str, body: bytes) -> list[str]:
        """What is wrong with the answer `status` `body` to `method` `path` (none: it conforms)."""
        what = f"{method} {path} answered {status}"
        responses = self.spec["paths"][path][method.lower()]["responses"]
        if str(status) not in responses:
            return [f"{what}, which the document does not give for it (it gives {', '.join(responses)})"]
        content = responses[str(status)].get("content")
        if content is None:
            return [f"{what} with a body, where the document gives none"] if body else []
        if content_type not in content:
            return [f"{what} as {content_type}, where the document gives {', '.join(content)}"]
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return [f"{what} with a body that is not JSON: {exc}"]
        pointer = f"#/paths/{_escape(path)}/{method.lower()}/responses/{status}/content/{_escape(content_type)}/schema"
        validator = Draft202012Validator({"$ref": f"{_URI}{pointer}"}, registry=self._registry)
        return [
            f"{what} with a body that breaks its schema at {error.json_path}: {error.message}"
            for error in validator.iter_errors(document)
        ]


def _escape(token: str) -> str:
    """`token` as one segment of a JSON pointer."""
    return token.replace("~", "~0").replace("/", "~1")


def record_answers(app: web.Application) -> list[str]:
    """Check every answer `app` gives to a documented API route; the breaches accumulate in the
    returned list, and a non-empty list fails the app's cleanup (the test's teardown)."""
    contract = ResponseContract(orjson.loads(app[SPEC]))  # the document the gateway serves
    breaches: list[str] = []

    @web.middleware
    async def check(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        response = await handler(request)
        resource = request.match_info.route.resource
        path = resource.canonical if resource is not None else ""
        if path.startswith(API_PREFIX) and contract.documented(request.method, path):
            body = response.body if isinstance(response, web.Response) and isinstance(response.body, bytes) else b""
            content_type = response.content_type if body else ""
            breaches.extend(contract.breaches(request.method, path, response.status, content_type, body))
        return response

    async def fail_on_breaches(app: web.Application) -> None:
        if breaches:
            raise AssertionError("answers that break the OpenAPI document:\n" + "\n".join(breaches))

    app.middlewares.insert(0, check)  # outermost: it sees the problem answers of the error middleware too
    app.on_cleanup.append(fail_on_breaches)
    return breaches
