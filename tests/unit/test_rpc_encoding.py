"""What the ingestion RPCs send: msgspec JSON that Postgres can store."""

from __future__ import annotations

import msgspec
import pytest

from service.repositories import rpc
from service.repositories.rpc import encode_for_postgres


def test_nul_is_removed_everywhere_keys_included() -> None:
    sent = encode_for_postgres({"p_rows": [{"body\x00": "a\x00b", "n": 1, "list": ["\x00x"]}]})

    assert msgspec.json.decode(sent) == {"p_rows": [{"body": "ab", "n": 1, "list": ["x"]}]}


def test_a_literal_backslash_u0000_in_text_is_kept() -> None:
    # Six characters a customer typed, not U+0000: the fast check sees the
    # escape-like bytes, and the slow path must still leave them alone.
    text = "C:\\u0000 ruta"

    assert msgspec.json.decode(encode_for_postgres({"t": text})) == {"t": text}


def test_clean_input_is_encoded_once_as_is(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_slow_path(value: object) -> object:
        raise AssertionError("the U+0000 clean-up ran on clean input")

    monkeypatch.setattr(rpc, "_without_nul", no_slow_path)
    value = {"p_events": [{"body": '{"a":"\\n"}', "id": 3}]}

    assert encode_for_postgres(value) == msgspec.json.encode(value)
