"""Command-line arguments an operator can get wrong: refused as usage errors, before any call."""

from __future__ import annotations

import pytest

from service.cli import build_parser


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["events", "list", "--limit", "-1"], "argument --limit: -1 is out of range: use 1..1000"),
        (["events", "list", "--limit", "0"], "argument --limit: 0 is out of range: use 1..1000"),
        (["events", "list", "--limit", "5000"], "argument --limit: 5000 is out of range"),
        (["events", "list", "--limit", "ten"], "argument --limit: 'ten' is not a whole number"),
        (["dev-token", "--email", "a@example.com", "--ttl", "-60"], "argument --ttl: -60 is out"),
    ],
)
def test_an_out_of_range_number_is_a_one_line_usage_error(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"error: {says}")


def test_numbers_in_range_are_taken() -> None:
    args = build_parser().parse_args(["events", "list", "--limit", "1000"])
    assert args.limit == 1000
    assert build_parser().parse_args(["events", "list"]).limit == 50
