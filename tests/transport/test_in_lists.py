"""IN lists are padded to a power of two so that a statement has a few texts (gateway/adapters/sql/in_lists.py)."""

from gateway.adapters.sql.in_lists import padded, padded_sorted


def test_a_list_is_padded_to_the_next_power_of_two_with_its_last_value() -> None:
    assert padded([]) == []
    assert padded(["a"]) == ["a"]
    assert padded(["a", "b", "c"]) == ["a", "b", "c", "c"]
    assert [len(padded(range(n))) for n in (2, 4, 5, 8, 9, 100, 128, 129)] == [2, 4, 8, 8, 16, 128, 128, 256]


def test_padding_keeps_exactly_the_values_asked_for() -> None:
    for n in range(1, 70):
        values = [f"id{i}" for i in range(n)]
        assert set(padded(values)) == set(values)


def test_the_same_set_in_any_order_gives_the_same_list() -> None:
    assert padded_sorted(["c", "a", "b", "a"]) == padded_sorted(["b", "c", "a"]) == ["a", "b", "c", "c"]
