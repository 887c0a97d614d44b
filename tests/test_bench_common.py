"""The benchmark line format: every target is checkable mechanically."""

from __future__ import annotations

import pytest

from bench.common import check_target, figure, percentile


def test_percentile_nearest_rank() -> None:
    values = list(range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile([7.0], 95) == 7.0


def test_figure_ratio_and_target() -> None:
    line = figure("x_ms", 3.0, floor=1.0, target="ratio<=3", n=10)
    assert line["ratio"] == 3.0
    assert check_target(line) is True
    assert check_target(figure("x_ms", 3.1, floor=1.0, target="ratio<=3")) is False
    assert check_target(figure("rate_per_s", 1400, target="value>=1500")) is False
    assert check_target(figure("plain", 1.0)) is None


def test_bad_target_is_an_error() -> None:
    with pytest.raises(ValueError):
        check_target({"name": "x", "value": 1, "target": "value ~ 3"})
