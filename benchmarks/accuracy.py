"""Histogram quantiles against exact ones on 1,000,000 lognormal latencies."""

from __future__ import annotations

import math
import random
import time
from typing import Any

from replyclock.logic.histogram import LatencyHistogram

QUANTILES = (0.5, 0.9, 0.99)


def run(count: int = 1_000_000, seed: int = 42) -> dict[str, Any]:
    rng = random.Random(seed)
    # Median about 18 minutes, a long tail of days: the shape of real first-response times.
    values = [rng.lognormvariate(7.0, 1.5) for _ in range(count)]
    started = time.perf_counter()
    histogram = LatencyHistogram()
    for value in values:
        histogram.add(value)
    build_seconds = time.perf_counter() - started
    ordered = sorted(values)
    rows = []
    for q in QUANTILES:
        exact = ordered[max(1, math.ceil(q * count)) - 1]
        estimate = histogram.quantile(q)
        assert estimate is not None
        rows.append(
            {"quantile": q, "exact": exact, "histogram": estimate, "relative_error": abs(estimate - exact) / exact}
        )
    return {
        "values": count,
        "bins": len(histogram.bins),
        "build_seconds": build_seconds,
        "quantiles": rows,
        "max_relative_error": max(row["relative_error"] for row in rows),
    }


def main(argv: list[str]) -> None:
    result = run()
    for row in result["quantiles"]:
        print(
            f"p{row['quantile'] * 100:g}: exact {row['exact']:.1f}s histogram {row['histogram']:.1f}s "
            f"error {row['relative_error']:.4%}"
        )
    print(f"{result['values']:,} values in {result['bins']} bins")
