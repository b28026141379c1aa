"""Calibration math and metrics."""
from __future__ import annotations

import numpy as np
import pytest

from models.calibration import (
    best_threshold,
    expected_calibration_error,
    f1_at,
    fit_temperature,
    joint_thresholds,
    macro_f1_with_neutral,
    sigmoid,
    softmax,
)


def test_fit_temperature_recovers_an_overconfident_scale() -> None:
    rng = np.random.default_rng(0)
    true_logits = rng.normal(size=(4000, 3)) * 2.0
    p = softmax(true_logits)
    labels = np.array([rng.choice(3, p=row) for row in p])
    assert fit_temperature(true_logits * 3.0, labels) == pytest.approx(3.0, rel=0.1)
    assert fit_temperature(true_logits, labels) == pytest.approx(1.0, rel=0.1)
    assert fit_temperature(np.zeros((0, 3)), np.zeros(0)) == 1.0


def test_best_threshold_maximises_f1_and_breaks_ties_towards_half() -> None:
    probs = np.array([0.1, 0.2, 0.3, 0.35, 0.8, 0.9])
    truth = np.array([0, 0, 1, 1, 1, 1])
    t = best_threshold(probs, truth)
    assert 0.2 < t <= 0.3 and f1_at(probs, truth, t) == 1.0
    assert best_threshold(np.array([0.2, 0.7]), np.array([0, 1])) == 0.5  # many ties: nearest 0.5
    assert best_threshold(probs, np.zeros(6)) == 0.5  # nothing to learn from


def test_ece() -> None:
    assert expected_calibration_error([1.0, 1.0], [1, 1]) == 0.0
    assert expected_calibration_error([0.9] * 10, [1] * 9 + [0]) == pytest.approx(0.0)
    assert expected_calibration_error([0.9] * 10, [1] * 5 + [0] * 5) == pytest.approx(0.4)
    assert expected_calibration_error([], []) == 0.0


def test_sigmoid_is_stable_for_large_logits() -> None:
    out = sigmoid(np.array([-1000.0, 0.0, 1000.0]))
    assert np.all(np.isfinite(out)) and out.tolist() == pytest.approx([0.0, 0.5, 1.0])


def test_macro_f1_with_neutral_and_joint_thresholds() -> None:
    probs = np.array([[0.9, 0.1], [0.6, 0.1], [0.2, 0.7], [0.3, 0.2]])
    truth = np.array([[1, 0], [0, 0], [0, 1], [0, 0]])
    # at 0.5: label0 P=1/2 R=1 -> 2/3; label1 F1 1; neutral gold rows 1,3, predicted row 3 -> 2/3
    assert macro_f1_with_neutral(probs, truth, [0.5, 0.5]) == pytest.approx((2 / 3 + 1 + 2 / 3) / 3)
    tuned = joint_thresholds(probs, truth, start=[0.5, 0.5])
    assert macro_f1_with_neutral(probs, truth, tuned) == pytest.approx(1.0)
    assert 0.6 < tuned[0] <= 0.9 and tuned[1] == 0.5  # only what helps moves
    frozen = joint_thresholds(probs, truth, start=[0.5, 0.5], tune=[False, True])
    assert frozen[0] == 0.5
