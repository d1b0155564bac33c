"""The estimation rate: the paper's p_est update (docs/formulas.md), and ours on top
of it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from adacompress.runtime.p_est import EstimateRate, next_p_est
from adacompress.runtime.settings import EstimateSettings


def test_p_est_update_matches_a_hand_computed_sequence() -> None:
    s = EstimateSettings(
        p_est_min=0.2, p_est_max=0.95, omega=3.0, window=3, p_est_decay=1.0
    )
    p, window = 0.5, []
    got = []
    for accuracy in [1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0]:
        p, window = next_p_est(p, window, accuracy, s)
        got.append(round(p, 6))
    # means of the last 3: 1, 1, 2/3, 2/3, 1/3, 1/3(0,0... see below)
    # step: acc  window      mean   slope    p
    #  1    1    [1]          1      -       0.5
    #  2    1    [1,1]        1      0       0.5
    #  3    0    [1,1,0]      2/3   -1/3     0.5+1 -> 0.95 (clipped)
    #  4    1    [1,0,1]      2/3    0       0.95
    #  5    0    [0,1,0]      1/3   -1/3     0.95 (clipped)
    #  6    0    [1,0,0]      1/3    0       0.95
    #  7    1    [0,0,1]      1/3    0       0.95
    #  8    1    [0,1,1]      2/3   +1/3     0.95-1 -> 0.2 (clipped)
    assert got == [0.5, 0.5, 0.95, 0.95, 0.95, 0.95, 0.95, 0.2]
    mild = EstimateSettings(
        p_est_min=0.0, p_est_max=1.0, omega=0.3, window=2, p_est_decay=1.0
    )
    p, _ = next_p_est(0.5, [1.0, 1.0], 0.0, mild)  # mean 1 -> 0.5: slope -0.5
    assert p == pytest.approx(0.65)
    # Ours: while the last n estimates are all right, p_est gives back part of its
    # excess; one miss in the window stops that.
    ours = EstimateSettings(p_est_initial=0.05, p_est_decay=0.8, window=2)
    p, _ = next_p_est(0.45, [1.0, 1.0], 1.0, ours)
    assert p == pytest.approx(0.05 + 0.4 * 0.8)
    p, _ = next_p_est(0.45, [0.0, 0.0, 1.0], 0.0, replace(ours, window=3))
    assert p == pytest.approx(0.45)  # window [0, 1, 0]: mean unchanged, not all right
    p, _ = next_p_est(0.45, [0.0, 1.0], 1.0, ours)  # accuracy rising: slope +0.5
    assert p == ours.p_est_min  # 0.45 - 3 * 0.5, clipped


def test_estimate_rate_drops_holds_and_resets() -> None:
    s = EstimateSettings(window=3, retrain_below=0.9, p_est_initial=0.05)
    rate = EstimateRate(0.05)
    assert rate.recent() == 1.0 and not rate.dropped(s)
    for accuracy in (1.0, 0.0):
        rate.add(accuracy, s)
    assert not rate.dropped(s)  # the window is not full yet
    rate.add(1.0, s)
    assert rate.recent() == pytest.approx(2 / 3) and rate.dropped(s)
    rate.hold(0.5)
    assert rate.p_est >= 0.5
    rate.reset(s)
    assert rate == EstimateRate(0.05)
