"""The weight average (optim.ema_decay): its arithmetic, the swap, and a training run with it."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from models.artifact import WEIGHTS_FILE
from models.train import train_model
from models.weight_average import WeightAverage


def test_the_average_follows_the_weights_with_warm_up_and_decay() -> None:
    net = torch.nn.Linear(2, 1)
    net.bias.requires_grad_(False)  # a frozen parameter
    with torch.no_grad():
        net.weight.fill_(0.0)
    average = WeightAverage(net, decay=0.9)
    assert set(average.average) == {"weight"}  # only what training changes
    with torch.no_grad():
        net.weight.fill_(1.0)
    average.update(step=1)  # warm-up: decay min(0.9, 2 / 11)
    assert average.average["weight"] == pytest.approx(torch.full((1, 2), 1 - 2 / 11))
    average.update(step=100)  # decay 0.9 from here on
    expected = 0.9 * (1 - 2 / 11) + 0.1 * 1.0
    assert average.average["weight"] == pytest.approx(torch.full((1, 2), expected))


def test_inside_the_swap_the_net_holds_the_average_and_afterwards_its_weights() -> None:
    net = torch.nn.Linear(3, 2)
    average = WeightAverage(net, decay=0.5)
    trained = {name: p.detach().clone() for name, p in net.named_parameters()}
    average.average = {name: torch.zeros_like(t) for name, t in trained.items()}
    with average.swapped_in():
        assert all(torch.equal(p, torch.zeros_like(p)) for p in net.parameters())
    assert all(torch.equal(p, trained[name]) for name, p in net.named_parameters())
    with pytest.raises(RuntimeError), average.swapped_in():
        raise RuntimeError("an evaluation that fails")
    assert all(torch.equal(p, trained[name]) for name, p in net.named_parameters())  # restored anyway


def test_decay_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValueError):
        WeightAverage(torch.nn.Linear(1, 1), decay=1.0)


def test_training_with_the_average_ships_other_weights_reproducibly(make_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    plain = train_model(make_config(evaluate_test=False), tmp_path / "plain")
    averaged = make_config(evaluate_test=False, optim={"ema_decay": 0.5})
    a = train_model(averaged, tmp_path / "a")
    b = train_model(averaged, tmp_path / "b")
    assert (a / WEIGHTS_FILE).read_bytes() == (b / WEIGHTS_FILE).read_bytes()
    shipped, without = load_file(str(a / WEIGHTS_FILE)), load_file(str(plain / WEIGHTS_FILE))
    assert shipped.keys() == without.keys()
    assert any(not torch.equal(shipped[k], without[k]) for k in shipped)
