"""`register_search_attributes` asks for every attribute Hookline uses, each of its kind: the dev
server gets them on its command line, the Temporal server proper (docs/cluster.md) and `hookline
init` only through this call."""

from __future__ import annotations

from typing import Any

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesResponse

from hookline.temporal import SEARCH_ATTRIBUTES, register_search_attributes


class _Operator:
    def __init__(self, existing: dict[str, int]) -> None:
        self.existing = existing
        self.added: list[AddSearchAttributesRequest] = []

    async def list_search_attributes(self, request: Any) -> ListSearchAttributesResponse:
        return ListSearchAttributesResponse(custom_attributes=self.existing)

    async def add_search_attributes(self, request: AddSearchAttributesRequest) -> None:
        self.added.append(request)


class _Client:
    def __init__(self, operator: _Operator) -> None:
        self.operator_service = operator


async def test_every_attribute_is_added_with_its_kind_keyword_list_included() -> None:
    operator = _Operator({})
    await register_search_attributes(_Client(operator), "default")  # type: ignore[arg-type]
    (request,) = operator.added
    assert request.namespace == "default"
    kinds = {name: IndexedValueType.Name(kind) for name, kind in request.search_attributes.items()}
    assert kinds == {
        name: {"Keyword": "INDEXED_VALUE_TYPE_KEYWORD", "KeywordList": "INDEXED_VALUE_TYPE_KEYWORD_LIST"}[kind]
        for name, kind in SEARCH_ATTRIBUTES.items()
    }
    assert "INDEXED_VALUE_TYPE_KEYWORD_LIST" in kinds.values()


async def test_only_the_missing_ones_are_added() -> None:
    keyword = IndexedValueType.Value("INDEXED_VALUE_TYPE_KEYWORD")
    operator = _Operator(dict.fromkeys(SEARCH_ATTRIBUTES, keyword))
    await register_search_attributes(_Client(operator), "default")  # type: ignore[arg-type]
    assert operator.added == []
