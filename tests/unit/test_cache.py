"""TtlCache: expiry, negative entries, and the bound."""

from __future__ import annotations

from service.cache import TtlCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_entries_expire_after_the_ttl() -> None:
    clock = Clock()
    cache: TtlCache[str, int | None] = TtlCache(10, clock)
    cache.put("a", 1)
    cache.put("missing", None)

    assert cache.get("a") == (True, 1)
    assert cache.get("missing") == (True, None)  # a cached miss is a hit
    assert cache.get("b") == (False, None)
    clock.now = 10.0
    assert cache.get("a") == (False, None)


def test_forget_and_clear() -> None:
    cache: TtlCache[str, int] = TtlCache(10, Clock())
    cache.put("a", 1)
    cache.put("b", 2)
    cache.forget("a")
    assert cache.get("a") == (False, None)
    cache.clear()
    assert len(cache) == 0


def test_a_full_cache_drops_the_entry_that_expires_first() -> None:
    clock = Clock()
    cache: TtlCache[int, int] = TtlCache(10, clock, max_entries=3)
    cache.put(1, 1)
    clock.now = 5.0
    cache.put(2, 2)
    cache.put(3, 3)
    cache.put(1, 10)  # refreshed: now expires last
    cache.put(4, 4)
    assert len(cache) == 3
    assert cache.get(2) == (False, None)
    assert cache.get(1) == (True, 10)
    assert cache.get(4) == (True, 4)


def test_a_flood_of_distinct_keys_stays_bounded() -> None:
    cache: TtlCache[str, None] = TtlCache(30, Clock(), max_entries=100)
    for n in range(10_000):
        cache.put(f"forged-{n}", None)
    assert len(cache) == 100


def test_content_disposition_drops_control_characters() -> None:
    from service.api.media import content_disposition

    header = content_disposition("a\r\nX-Evil: 1.pdf", inline=True)
    assert "\r" not in header
    assert "\n" not in header
    assert header.startswith('inline; filename="aX-Evil: 1.pdf"')
