"""When a tuning job stops a running trial: the median rule (TrainingJobEarlyStoppingType AUTO) and Hyperband's
rungs. Both look only at objective series (one value per round, series.py) and decide for one trial at a time.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence

#: Rounds a trial always gets before the median rule may stop it, and the earlier trials it needs to compare with.
WARMUP_ROUNDS = 3
MIN_PEERS = 2
#: Hyperband's reduction factor: at each rung only the best third of the trials that reached it go on.
ETA = 3


def best_so_far(values: Sequence[float], upto: int, minimize: bool) -> float:
    window = values[:upto]
    return min(window) if minimize else max(window)


def median_rule(series: Sequence[float], earlier: Sequence[Sequence[float]], minimize: bool) -> bool:
    """Stop a trial whose best objective by its latest round r is worse than the median of the earlier trials'
    best objectives by round r (counting only earlier trials that reached r)."""
    rounds = len(series)
    if rounds < WARMUP_ROUNDS:
        return False
    peers = [best_so_far(values, rounds, minimize) for values in earlier if len(values) >= rounds]
    if len(peers) < MIN_PEERS:
        return False
    median = statistics.median(peers)
    mine = best_so_far(series, rounds, minimize)
    return mine > median if minimize else mine < median


def rungs(min_resource: int, max_resource: int) -> list[int]:
    """The rounds at which Hyperband compares trials: MinResource, then ×ETA each time, below MaxResource."""
    out, rung = [], max(1, min_resource)
    while rung < max_resource:
        out.append(rung)
        rung *= ETA
    return out


def hyperband_stop(name: str, all_series: Mapping[str, Sequence[float]], checked: set[tuple[str, int]],
                   min_resource: int, max_resource: int, minimize: bool) -> bool:
    """Successive halving, asynchronously: at each rung it reaches, a trial goes on only if its value there is in
    the best 1/ETA of the values of every trial that reached the rung so far; at MaxResource it is done."""
    series = all_series[name]
    if len(series) >= max_resource:
        return True
    for rung in rungs(min_resource, max_resource):
        if len(series) < rung or (name, rung) in checked:
            continue
        checked.add((name, rung))
        at_rung = sorted(values[rung - 1] for values in all_series.values() if len(values) >= rung)
        if not minimize:
            at_rung.reverse()
        keep = max(1, -(-len(at_rung) // ETA))  # ceil: the first trials at a rung always go on
        threshold = at_rung[keep - 1]
        mine = series[rung - 1]
        if (mine > threshold) if minimize else (mine < threshold):
            return True
    return False
