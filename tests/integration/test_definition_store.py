"""Versioned definition storage on a real compacted Kafka topic: every version addressable,
deletions remembered, read-your-writes, and the same view after every process restarts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest

from hookline.definitions import DefinitionExists, DefinitionStore, StaleVersion
from hookline.kafka import create_producer, ensure_topics
from hookline.settings import KafkaSettings
from schemas.validation import SchemaError
from schemas.workflow import DefinitionError, WorkflowDefinition
from tests.conftest import read_topic
from tests.eventually import eventually

OpenStore = Callable[..., Awaitable[DefinitionStore]]


def document(definition_id: str = "deploy", agent: str = "builder", **extra: Any) -> dict[str, Any]:
    return {"id": definition_id, "name": "Deploy", "steps": [{"name": "build", "agent": agent}], **extra}


@pytest.fixture
async def open_store(kafka_settings: KafkaSettings) -> AsyncIterator[OpenStore]:
    """Started stores on this test's topic (another process each), stopped after the test."""
    stores: list[DefinitionStore] = []

    async def open_(settings: KafkaSettings = kafka_settings, **options: Any) -> DefinitionStore:
        store = DefinitionStore(settings, **options)
        await store.start()
        stores.append(store)
        return store

    yield open_
    for store in stores:
        await store.stop()


async def produce(settings: KafkaSettings, records: list[tuple[str, bytes | None]]) -> None:
    producer = create_producer(settings)
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(settings.workflows_topic, value, key=key.encode())
    finally:
        await producer.stop()


async def compacted_copy(settings: KafkaSettings, unique: str) -> KafkaSettings:
    """A new topic holding what full compaction leaves of `settings`' definitions topic: the last
    record of each key, without tombstones (deleted once `delete.retention.ms` has passed)."""
    latest: dict[bytes, Any] = {}
    for record in await read_topic(settings, settings.workflows_topic):
        latest.pop(record.key, None)
        latest[record.key] = record
    copy = KafkaSettings(bootstrap_servers=settings.bootstrap_servers, topic_prefix=f"{unique}-compacted")
    await ensure_topics(copy)
    await produce(copy, [(r.key.decode(), r.value) for r in latest.values() if r.value is not None])
    return copy


async def test_new_version_is_addressable_and_the_old_one_still_is(open_store: OpenStore) -> None:
    store = await open_store()
    first = await store.put(document(agent="builder"))
    second = await store.put(document(agent="packer"))

    assert (first.version, second.version) == (1, 2)
    assert store.versions("deploy") == [1, 2]
    assert store.get("deploy") == second
    old = store.get_version("deploy", 1)
    assert old is not None and old.definition.steps[0].agent == "builder"
    assert old.created_at.endswith("Z") and old.created_at <= second.created_at


async def test_unchanged_document_keeps_its_version(open_store: OpenStore) -> None:
    store = await open_store()
    first = await store.put(document())
    generation = store.generation

    again = await store.put(document())

    assert again == first
    assert store.versions("deploy") == [1]
    assert store.generation == generation


async def test_delete_hides_the_head_but_keeps_versions_and_reports_the_last_one(open_store: OpenStore) -> None:
    store = await open_store()
    await store.put(document(agent="builder"))
    current = await store.put(document(agent="packer"))

    deleted = await store.delete("deploy")

    assert deleted == current
    assert store.get("deploy") is None
    assert store.all() == []
    assert store.deleted("deploy") == 2
    assert store.versions("deploy") == [1, 2]
    assert store.get_version("deploy", 2) == current


async def test_delete_of_an_unknown_id_returns_none_and_writes_nothing(open_store: OpenStore) -> None:
    store = await open_store()
    generation = store.generation

    assert await store.delete("nothing-here") is None
    assert store.deleted("nothing-here") is None
    assert store.generation == generation


async def test_recreate_after_delete_continues_the_version_numbers(open_store: OpenStore) -> None:
    store = await open_store()
    await store.put(document(agent="builder"))
    await store.put(document(agent="packer"))
    await store.delete("deploy")

    recreated = await store.create(document(agent="builder"))

    assert recreated.version == 3
    assert store.get("deploy") == recreated
    assert store.deleted("deploy") is None
    assert store.versions("deploy") == [1, 2, 3]


async def test_writer_reads_its_own_writes_at_once(open_store: OpenStore) -> None:
    store = await open_store()

    stored = await store.put(document())
    assert store.get("deploy") == stored
    assert store.get_version("deploy", 1) == stored

    await store.delete("deploy")
    assert store.get("deploy") is None
    assert store.deleted("deploy") == 1


async def test_another_running_store_follows_the_changes(open_store: OpenStore) -> None:
    writer, follower = await open_store(), await open_store()
    generation = follower.generation

    await writer.put(document())
    await eventually(lambda: follower.get("deploy") is not None, "the follower to read the definition")
    assert follower.generation > generation

    await writer.delete("deploy")
    await eventually(lambda: follower.get("deploy") is None, "the follower to read the deletion")
    assert follower.deleted("deploy") == 1


async def test_a_store_started_later_sees_the_same_heads_versions_and_deletions(open_store: OpenStore) -> None:
    store = await open_store()
    await store.put(document("kept", agent="builder"))
    await store.put(document("kept", agent="packer"))
    await store.put(document("gone"))
    await store.delete("gone")
    await store.stop()

    restarted = await open_store()

    assert [(d.id, d.version) for d in restarted.all()] == [("kept", 2)]
    assert restarted.versions("kept") == [1, 2]
    assert restarted.get_version("kept", 1) == store.get_version("kept", 1)
    assert restarted.deleted("gone") == 1
    assert restarted.get_version("gone", 1) == store.get_version("gone", 1)


async def test_compaction_keeps_every_version_and_deletion(
    open_store: OpenStore, kafka_settings: KafkaSettings, unique: str
) -> None:
    store = await open_store()
    await store.put(document("kept", agent="builder"))
    await store.put(document("kept", agent="packer"))
    await store.put(document("gone"))
    await store.delete("gone")

    compacted = await open_store(await compacted_copy(kafka_settings, unique))

    assert [(d.id, d.version) for d in compacted.all()] == [("kept", 2)]
    assert compacted.versions("kept") == [1, 2]
    assert compacted.deleted("gone") == 1
    assert (await compacted.create(document("gone"))).version == 2


async def test_all_lists_current_definitions_by_id(open_store: OpenStore) -> None:
    store = await open_store()
    for definition_id in ("charlie", "alpha", "bravo"):
        await store.put(document(definition_id))
    await store.delete("bravo")

    assert [d.id for d in store.all()] == ["alpha", "charlie"]


async def test_put_with_an_id_stores_the_document_under_that_id(open_store: OpenStore) -> None:
    store = await open_store()

    stored = await store.put(document("from-body"), definition_id="from-url")

    assert stored.id == "from-url" and stored.document["id"] == "from-url"
    assert store.get("from-url") == stored
    assert store.get("from-body") is None


async def test_create_of_an_existing_id_raises_definition_exists(open_store: OpenStore) -> None:
    store = await open_store()
    await store.create(document(agent="builder"))

    with pytest.raises(DefinitionExists):
        await store.create(document(agent="packer"))
    assert store.versions("deploy") == [1]


async def test_concurrent_creates_of_one_id_store_it_once(open_store: OpenStore) -> None:
    store = await open_store()

    results = await asyncio.gather(
        store.create(document(agent="builder")), store.create(document(agent="packer")), return_exceptions=True
    )

    assert sorted(type(r).__name__ for r in results) == ["DefinitionExists", "StoredDefinition"]
    assert store.versions("deploy") == [1]


async def test_check_errors_are_raised_as_definition_error_and_nothing_is_stored(open_store: OpenStore) -> None:
    def known_agents(definition: WorkflowDefinition) -> list[SchemaError]:
        return [SchemaError("steps[0].agent", "unknown agent")] if definition.steps[0].agent != "builder" else []

    store = await open_store(check=known_agents)

    with pytest.raises(DefinitionError) as raised:
        await store.put(document(agent="nobody"))
    assert raised.value.errors == [SchemaError("steps[0].agent", "unknown agent")]
    with pytest.raises(DefinitionError):
        await store.create(document(agent="nobody"))
    assert store.versions("deploy") == []
    assert (await store.put(document(agent="builder"))).version == 1


async def test_invalid_document_is_rejected(open_store: OpenStore) -> None:
    store = await open_store()

    with pytest.raises(DefinitionError):
        await store.put({"id": "deploy", "steps": "not a list"})
    assert store.get("deploy") is None


async def test_garbage_records_are_skipped_and_the_store_keeps_following(
    open_store: OpenStore, kafka_settings: KafkaSettings
) -> None:
    follower = await open_store()
    garbage: list[tuple[str, bytes | None]] = [
        ("deploy", b"\xff not json"),
        ("deploy@v1", orjson.dumps({"id": "deploy", "version": 1, "digest": "x", "definition": {"steps": 3}})),
        ("deploy@v2", orjson.dumps({"id": "deploy", "version": 7, "digest": "x", "definition": document()})),
        ("deploy@deleted", b"[]"),
        ("deploy@whatever", orjson.dumps(document())),
        ("other", orjson.dumps({"id": "other", "version": 1, "digest": "x", "definition": document()})),
    ]
    await produce(kafka_settings, garbage)

    writer = await open_store()
    stored = await writer.put(document())
    await eventually(lambda: follower.get("deploy") == stored, "the follower to read the new version")

    for store in (follower, writer):
        assert [d.id for d in store.all()] == ["deploy"]
        assert store.versions("deploy") == [1]
        assert store.deleted("deploy") is None


async def test_a_legacy_head_without_archive_loads_as_its_version(
    open_store: OpenStore, kafka_settings: KafkaSettings
) -> None:
    legacy = {"id": "deploy", "version": 3, "digest": "legacy", "definition": document()}
    await produce(kafka_settings, [("deploy", orjson.dumps(legacy))])

    store = await open_store()

    head = store.get("deploy")
    assert head is not None and (head.version, head.created_at) == (3, "")
    assert store.versions("deploy") == [3]
    assert store.get_version("deploy", 3) == head


async def test_a_legacy_version_stays_addressable_after_its_head_is_replaced(
    open_store: OpenStore, kafka_settings: KafkaSettings, unique: str
) -> None:
    legacy = {"id": "deploy", "version": 3, "digest": "legacy", "definition": document()}
    await produce(kafka_settings, [("deploy", orjson.dumps(legacy))])
    store = await open_store()
    assert (await store.put(document(agent="packer"))).version == 4

    compacted = await open_store(await compacted_copy(kafka_settings, unique))

    assert compacted.versions("deploy") == [3, 4]
    old = compacted.get_version("deploy", 3)
    assert old is not None and old.document == document()


async def test_a_deletion_marker_alone_keeps_its_version_number_from_reuse(
    open_store: OpenStore, kafka_settings: KafkaSettings
) -> None:
    # The archived versions purged (tombstoned) by an operator; the marker still counts.
    marker = {"id": "deploy", "version": 5, "deleted_at": "2025-01-01T00:00:00.000Z"}
    await produce(kafka_settings, [("deploy@deleted", orjson.dumps(marker))])
    store = await open_store()
    assert store.deleted("deploy") == 5

    assert (await store.create(document())).version == 6


async def test_records_on_the_topic_follow_the_documented_key_layout(
    open_store: OpenStore, kafka_settings: KafkaSettings
) -> None:
    store = await open_store()
    await store.put(document(agent="builder"))
    await store.put(document(agent="packer"))
    await store.delete("deploy")
    await store.create(document())

    records = await read_topic(kafka_settings, kafka_settings.workflows_topic, expect=13)

    layout = [(r.key.decode(), None if r.value is None else orjson.loads(r.value).get("version")) for r in records]
    assert layout == [
        ("deploy@claim", 1),
        ("deploy@v1", 1),
        ("deploy", 1),
        ("deploy@claim", 2),
        ("deploy@v2", 2),
        ("deploy", 2),
        ("deploy@claim", None),  # a deletion claims no version number
        ("deploy@deleted", 2),
        ("deploy", None),
        ("deploy@claim", 3),
        ("deploy@v3", 3),
        ("deploy", 3),
        ("deploy@deleted", None),
    ]


async def test_a_stored_definition_naming_a_topic_its_team_may_not_read_is_kept_but_not_in_force(
    open_store: OpenStore, kafka_settings: KafkaSettings
) -> None:
    # Saved under a wider policy (or before there was one); the policy now allows no topic.
    wider = await open_store(kafka_settings.model_copy(update={"trigger_topics": {"*": ["*"]}}))
    await wider.put(document("reader", trigger={"type": "kafka", "topic": "orders"}))
    await wider.put(document("deploy"))
    now = await open_store(kafka_settings)
    assert [d.id for d in now.all()] == ["deploy"]  # what the triggers and the ticker act on
    assert [d.id for d in now.all(refused=True)] == ["deploy", "reader"]  # what its team can read and fix
    assert now.get("reader") is not None
    assert [e.location for e in now.refusal("reader")] == ["trigger.topic"]


# --- concurrent writers (issue 10, class 6) ---------------------------------------------------


async def test_two_processes_writing_one_definition_at_once_each_land_their_own_version(
    open_store: OpenStore,
) -> None:
    first, second = await open_store(), await open_store()
    await first.create(document())
    await eventually(lambda: second.get("deploy") is not None, "the second store to read the definition")

    written = await asyncio.gather(
        *(
            store.put(document(description=f"{name}-{n}"))
            for n in range(8)
            for name, store in [("a", first), ("b", second)]
        )
    )

    versions = [s.version for s in written]
    assert len(set(versions)) == len(versions) == 16
    fresh = await open_store()
    for stored in written:
        kept = fresh.get_version("deploy", stored.version)
        assert kept is not None and kept.document == stored.document


async def test_a_write_expecting_a_version_that_is_no_longer_current_is_refused(open_store: OpenStore) -> None:
    first, second = await open_store(), await open_store()
    await first.create(document())
    await second.put(document(description="by the second"), expected=1)

    with pytest.raises(StaleVersion) as refused:
        await first.put(document(description="by the first, from version 1"), expected=1)

    assert (refused.value.expected, refused.value.current) == (1, 2)
    current = first.get("deploy")
    assert current is not None and current.document["description"] == "by the second"


async def test_of_two_processes_deleting_and_updating_from_one_version_only_one_succeeds(
    open_store: OpenStore,
) -> None:
    first, second = await open_store(), await open_store()
    await first.create(document())
    await eventually(lambda: second.get("deploy") is not None, "the second store to read the definition")

    outcomes = await asyncio.gather(
        first.delete("deploy", expected=1),
        second.put(document(description="updated"), expected=1),
        return_exceptions=True,
    )

    assert sum(isinstance(o, StaleVersion) for o in outcomes) == 1, outcomes


async def test_two_processes_creating_one_id_at_once_create_it_once(open_store: OpenStore) -> None:
    first, second = await open_store(), await open_store()

    outcomes = await asyncio.gather(
        first.create(document(description="a")), second.create(document(description="b")), return_exceptions=True
    )

    assert sorted(type(o).__name__ for o in outcomes) == ["DefinitionExists", "StoredDefinition"]
