"""Any change to a sealed envelope is refused with an EnvelopeError, never another exception."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.security.envelope import open_envelope, parse_envelope
from gateway.security.errors import EnvelopeError

from .conftest import World

mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(min_value=0), st.integers(min_value=1, max_value=255)),
    st.tuples(st.just("cut"), st.integers(min_value=0), st.just(0)),
    st.tuples(st.just("insert"), st.integers(min_value=0), st.integers(min_value=0, max_value=255)),
    st.tuples(st.just("delete"), st.integers(min_value=0), st.just(0)),
)


def mutate(data: bytes, op: tuple[str, int, int]) -> bytes:
    kind, pos, value = op
    if not data:
        return bytes([value]) if kind == "insert" else data
    pos %= len(data)
    if kind == "flip":
        return data[:pos] + bytes([data[pos] ^ value]) + data[pos + 1 :]
    if kind == "cut":
        return data[:pos]
    if kind == "insert":
        return data[:pos] + bytes([value]) + data[pos:]
    return data[:pos] + data[pos + 1 :]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(mutation, min_size=1, max_size=3))
def test_any_mutation_of_a_sealed_envelope_is_refused_with_an_envelope_error(world: World, ops) -> None:
    original = _sealed(world)
    data = original
    for op in ops:
        data = mutate(data, op)
    if data == original:
        return
    with pytest.raises(EnvelopeError):
        open_envelope(parse_envelope(data), keyring=world.recipient, directory=world.directory)


_cache: dict[str, bytes] = {}


def _sealed(world: World) -> bytes:
    if world.suite_id not in _cache:
        _cache[world.suite_id] = world.seal(b'{"x":1}')
    return _cache[world.suite_id]
