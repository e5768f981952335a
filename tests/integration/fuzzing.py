"""How the fuzz tests make their inputs, cheaply (no tests here).

A Hypothesis draw costs about 0.1 ms, and a request or definition drawn whole through strategies
took 70 to 120 of them: generating the 10,000 requests of `test_fuzz_ingress` took ~100 s, more
than everything else in the test. So Hypothesis draws little, once per batch: a seed, and pools
of leaf values (text, integers, floats, bytes, datetimes) where its generators find what a table
would not (odd code points, edges of ranges). The shape of each input — which source, which
field to corrupt, which signature to get wrong, which encoding to mangle — is picked from tables
by a `random.Random` seeded with the drawn seed, about 1 µs a pick; leaves come from the pools.
Run derandomized, so one Hypothesis version makes the same inputs on every run.

A `Gen[T]` makes one T from a batch's `Draw`: `draw(TEXT)`. The combinators below read like the
Hypothesis strategies they replace (`pick` for `sampled_from`, `weighted`, `rarely`, `one_of`).

JSON text is written by `dump`, not `json.dumps`, so that it can hold what a careless or hostile
sender writes and Python would not: duplicated keys (`Obj`), tokens that are not JSON or are at
its edges (`Raw`: `NaN`, `1e99999`, lone surrogate escapes, 30-digit integers) and nesting far
deeper than Python's recursion limit (`Deep`).
"""

from __future__ import annotations

import json
import math
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

T = TypeVar("T")

#: Values of each pool drawn per batch: each is used a few times in a batch, in other places.
POOL = 16


@dataclass(frozen=True)
class Leaves:
    """Values Hypothesis drew for one batch."""

    texts: list[str]  # any code point but surrogates, up to 6
    header_texts: list[str]  # any code point but surrogates, CR and LF, up to 8
    int64s: list[int]
    integers: list[int]  # unbounded
    floats: list[float]  # finite
    binaries: list[bytes]  # up to 64 bytes
    datetimes: list[str]  # ISO 8601, some of them odd (year 1, microseconds, no zone)


def _pool(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
    return st.lists(strategy, min_size=POOL, max_size=POOL)


LEAVES = st.builds(
    Leaves,
    texts=_pool(st.text(max_size=6)),
    header_texts=_pool(st.text(st.characters(exclude_characters="\r\n", exclude_categories=["Cs"]), max_size=8)),
    int64s=_pool(st.integers(-(2**63), 2**63 - 1)),
    integers=_pool(st.integers()),
    floats=_pool(st.floats(allow_nan=False, allow_infinity=False)),
    binaries=_pool(st.binary(max_size=64)),
    datetimes=_pool(st.datetimes().map(lambda d: d.isoformat())),
)


class Draw:
    """The choices of one batch: `draw(gen)` makes a value; `pick`, `one_in` and `integer` choose."""

    def __init__(self, seed: int, leaves: Leaves) -> None:
        self.random = random.Random(seed)
        self.leaves = leaves

    def __call__(self, gen: Gen[T]) -> T:
        return gen(self)

    def pick(self, options: Sequence[T]) -> T:
        return options[self.random.randrange(len(options))]

    def one_in(self, n: int) -> bool:
        """True once in `n` draws."""
        return self.random.randrange(n) == 0

    def integer(self, low: int, high: int) -> int:
        """An integer from `low` to `high`, both included."""
        return self.random.randint(low, high)

    def text(self, alphabet: str, min_size: int, max_size: int) -> str:
        return "".join(self.random.choices(alphabet, k=self.random.randint(min_size, max_size)))


Gen = Callable[[Draw], T]


def pick(options: Sequence[T]) -> Gen[T]:
    """One of `options`, each equally often (list one twice to make it twice as likely)."""
    table = tuple(options)
    return lambda draw: draw.pick(table)


def just(value: T) -> Gen[T]:
    return lambda draw: value


def weighted(*choices: tuple[int, Gen[Any]]) -> Gen[Any]:
    """A value of one of the generators, each as often as its weight says."""
    table = tuple(gen for weight, gen in choices for _ in range(weight))
    return lambda draw: draw.pick(table)(draw)


def one_of(*gens: Gen[Any]) -> Gen[Any]:
    """A value of one of the generators, each equally often."""
    return weighted(*((1, gen) for gen in gens))


def rarely(rare: Gen[Any], usual: Gen[Any]) -> Gen[Any]:
    """`usual` nine times in ten, `rare` the tenth."""
    return weighted((9, usual), (1, rare))


def integers(low: int, high: int) -> Gen[int]:
    """An integer from `low` to `high`, each equally often (no leaning towards the ends)."""
    return lambda draw: draw.integer(low, high)


def lists(gen: Gen[T], max_size: int, min_size: int = 0) -> Gen[list[T]]:
    return lambda draw: [gen(draw) for _ in range(draw.integer(min_size, max_size))]


def dicts(keys: Gen[Any], values: Gen[Any], max_size: int) -> Gen[dict[Any, Any]]:
    return lambda draw: {keys(draw): values(draw) for _ in range(draw.integer(0, max_size))}


def tuples(*gens: Gen[Any]) -> Gen[tuple[Any, ...]]:
    return lambda draw: tuple(gen(draw) for gen in gens)


def fixed_dicts(gens: dict[str, Gen[Any]]) -> Gen[dict[str, Any]]:
    return lambda draw: {key: gen(draw) for key, gen in gens.items()}


def optional_dicts(gens: dict[str, Gen[Any]]) -> Gen[dict[str, Any]]:
    """An object with each of the keys or not, as often one as the other."""
    return lambda draw: {key: gen(draw) for key, gen in gens.items() if draw.one_in(2)}


def recursive(scalars: Gen[Any], keys: Gen[str], depth: int = 2) -> Gen[Any]:
    """A scalar, or a list or object of up to three such values, `depth` levels below at most."""

    def make(draw: Draw, depth: int) -> Any:
        if depth == 0 or draw.one_in(3):
            return scalars(draw)
        members = [make(draw, depth - 1) for _ in range(draw.integer(0, 3))]
        return members if draw.one_in(2) else {keys(draw): member for member in members}

    return lambda draw: make(draw, depth)


def uuids(draw: Draw) -> str:
    return str(uuid.UUID(int=draw.random.getrandbits(128), version=4))


def leaf(pool: str) -> Gen[Any]:
    """A value from one of the batch's pools (a field of `Leaves`)."""
    return lambda draw: draw.pick(getattr(draw.leaves, pool))


def generate(make: Callable[[Draw], T], count: int, batch: int = 100) -> list[T]:
    """`count` values of `make` (or a few more: whole batches), `batch` of them per Hypothesis
    example, the same on every run of one Hypothesis version."""
    made: list[T] = []

    @settings(
        max_examples=-(-count // batch),
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],  # nothing to shrink: making inputs cannot fail
        suppress_health_check=list(HealthCheck),
    )
    @given(st.integers(0, 2**64 - 1), LEAVES)
    def examples(seed: int, leaves: Leaves) -> None:
        draw = Draw(seed, leaves)
        made.extend(make(draw) for _ in range(batch))

    examples()
    return made


# --- JSON text that Python's json module would not write -----------------------------------


class Raw(str):
    """A token written verbatim into the JSON text."""


class Obj(list[tuple[str, Any]]):
    """An object as its pairs, in order: a key may appear twice."""


@dataclass(frozen=True)
class Deep:
    """`inner` wrapped in `depth` arrays or single-key objects."""

    depth: int
    inner: Any
    kind: str = "array"


def dump(value: Any) -> str:
    """JSON text of `value` (see the module docstring for Raw, Obj and Deep)."""
    if isinstance(value, Raw):
        return str(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Deep):
        if value.kind == "array":
            return "[" * value.depth + dump(value.inner) + "]" * value.depth
        return '{"d":' * value.depth + dump(value.inner) + "}" * value.depth
    if isinstance(value, Obj):
        return "{" + ",".join(f"{dump(str(k))}:{dump(v)}" for k, v in value) + "}"
    if isinstance(value, dict):
        return "{" + ",".join(f"{dump(str(k))}:{dump(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(dump(v) for v in value) + "]"
    raise TypeError(type(value).__name__)
