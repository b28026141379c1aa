"""Masked losses, training end to end on a tiny BERT, determinism, no text in logs."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

from models.architecture import IGNORE, TaggerNet, Targets, add_lora, load_encoder, masked_losses
from models.artifact import CARD_FILE, METRICS_FILE, WEIGHTS_FILE
from models.labels import load_label_schema
from models.train import plan_batches, train_model

CANARY = "zqxcanary"  # the same marker conftest puts in the tiny gold data


def _net(tiny_base: Path, lora: bool = True) -> TaggerNet:
    torch.manual_seed(0)
    encoder = load_encoder(tiny_base)
    if lora:
        encoder = add_lora(encoder, 4, 8, 0.0, ["query", "value"])
    return TaggerNet(encoder, 32, load_label_schema(), head_dropout=0.0)


def _batch(n: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.randint(5, 40, (n, 7))
    return ids, torch.ones_like(ids)


def test_emotions_only_examples_give_no_stance_or_affect_gradient(tiny_base: Path) -> None:
    net = _net(tiny_base)
    ids, mask = _batch()
    targets = Targets(
        stance=torch.full((4,), IGNORE),
        emotions=torch.tensor([[0, 0, 1, 0, 0, 0]] * 4, dtype=torch.float32),
        emotions_mask=torch.ones(4, dtype=torch.bool),
        affect_focus=torch.zeros(4),
        affect_focus_mask=torch.zeros(4, dtype=torch.bool),
    )
    losses = masked_losses(net(ids, mask), targets)
    assert set(losses) == {"emotions"}
    sum(losses.values()).backward()  # type: ignore[union-attr]
    assert net.heads["stance"].weight.grad is None
    assert net.heads["affect_focus"].weight.grad is None
    assert net.heads["emotions"].weight.grad.abs().sum() > 0
    lora_grads = [p.grad for n, p in net.named_parameters() if "lora_B" in n]
    assert lora_grads and all(g is not None for g in lora_grads)  # the encoder is being tuned


def test_masked_stance_loss_uses_only_rows_that_carry_stance(tiny_base: Path) -> None:
    net = _net(tiny_base)
    ids, mask = _batch()
    logits = net(ids, mask)
    stance = torch.tensor([0, IGNORE, 2, IGNORE])
    targets = Targets(stance=stance, emotions=torch.zeros(4, 6), emotions_mask=torch.zeros(4, dtype=torch.bool),
                      affect_focus=torch.zeros(4), affect_focus_mask=torch.zeros(4, dtype=torch.bool))
    losses = masked_losses(logits, targets)
    expected = torch.nn.functional.cross_entropy(logits["stance"][[0, 2]], torch.tensor([0, 2]))
    assert set(losses) == {"stance"}
    assert torch.allclose(losses["stance"], expected)


def test_full_finetuning_updates_encoder_but_not_frozen_word_embeddings(make_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from models.train import _build_net

    config = make_config(model={"finetune": "full"})
    net, _, _ = _build_net(config, Path(config.base.model), load_label_schema())
    trainable = {n for n, p in net.named_parameters() if p.requires_grad}
    assert any("encoder.layer.0.attention" in n for n in trainable)
    assert not any("word_embeddings" in n for n in trainable)


def test_plan_batches_mixes_sources_at_the_configured_share() -> None:
    import random

    indomain, other = list(range(10)), list(range(10, 110))
    lengths = [i % 13 for i in range(110)]
    gen = plan_batches((indomain, other), lengths, batch_size=10, share=0.3, window=5, rng=random.Random(0))
    batches = [next(gen) for _ in range(50)]
    flat = [i for b in batches for i in b]
    assert all(len(b) == 10 for b in batches)
    assert sum(i < 10 for i in flat) == 150  # exactly 30% of every window
    again = plan_batches((indomain, other), lengths, batch_size=10, share=0.3, window=5, rng=random.Random(0))
    assert [next(again) for _ in range(50)] == batches


def test_training_writes_a_complete_model_directory(trained_model: Path) -> None:
    names = {p.relative_to(trained_model).as_posix() for p in trained_model.rglob("*") if p.is_file()}
    for required in (WEIGHTS_FILE, "tagger.json", "label_schema.toml", "train_config.toml", METRICS_FILE,
                     CARD_FILE, "manifest.json", "tokenizer/tokenizer_config.json"):
        assert required in names
    assert not any(n.endswith((".bin", ".pt", ".pkl")) for n in names)
    metrics = json.loads((trained_model / METRICS_FILE).read_text())
    assert {"dev", "test", "calibration", "training"} <= set(metrics)
    assert metrics["test"]["indomain"]["stance"]["n"] == 18
    assert "macro_f1_7" in metrics["test"]["goemotions"]["emotions"]
    assert "by_speaker" in metrics["test"]["indomain"]
    card = (trained_model / CARD_FILE).read_text()
    assert "**not** for clinical decisions" in card
    assert "Intended use" in card and "Limitations" in card


def test_same_seed_gives_identical_weights_and_metrics(make_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = make_config(evaluate_test=False)
    a = train_model(config, tmp_path / "a")
    b = train_model(config, tmp_path / "b")
    assert (a / WEIGHTS_FILE).read_bytes() == (b / WEIGHTS_FILE).read_bytes()
    assert (a / METRICS_FILE).read_bytes() == (b / METRICS_FILE).read_bytes()
    assert (a / "int8_calibration.safetensors").read_bytes() == (b / "int8_calibration.safetensors").read_bytes()
    c = train_model(make_config(evaluate_test=False, seed=8), tmp_path / "c")
    assert (a / WEIGHTS_FILE).read_bytes() != (c / WEIGHTS_FILE).read_bytes()


def test_no_sentence_text_in_logs_metrics_or_card(make_config, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    out = train_model(make_config(), tmp_path / "m")
    assert caplog.records  # progress is logged
    assert CANARY not in caplog.text
    for path in out.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".md", ".toml"):
            assert CANARY not in path.read_text()


def test_refuses_to_overwrite_an_existing_model(make_config, trained_model: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FileExistsError):
        train_model(make_config(), trained_model)


def test_training_run_records_the_device_it_trained_on(trained_model: Path) -> None:
    assert json.loads((trained_model / "training_run.json").read_text())["device"] == "cpu"


@pytest.mark.parametrize("device", ["tpu", "cuda:99", "not a device"])
def test_refuses_a_device_it_cannot_train_on_before_writing_anything(
    make_config, tmp_path: Path, device: str  # type: ignore[no-untyped-def]
) -> None:
    with pytest.raises(ValueError, match="device"):
        train_model(make_config(evaluate_test=False), tmp_path / "m", device=device)
    assert not (tmp_path / "m").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message where torch sees no GPU")
def test_asking_for_a_gpu_where_there_is_none_says_so(make_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="no CUDA GPU"):
        train_model(make_config(evaluate_test=False), tmp_path / "m", device="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_training_on_a_gpu_writes_a_model_the_cpu_loads_and_scores(make_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from models.artifact import load_model_dir
    from models.tagger import TransformerTagger

    out = train_model(make_config(), tmp_path / "gpu", device="cuda")
    run = json.loads((out / "training_run.json").read_text())
    assert run["device"].startswith("cuda")
    metrics = json.loads((out / METRICS_FILE).read_text())
    assert metrics["test"]["indomain"]["stance"]["n"] == 18
    tagger = TransformerTagger(load_model_dir(out))
    assert len(tagger.predict(["one sentence", "another one"])) == 2


def test_lora_can_be_limited_to_upper_layers(tiny_base: Path) -> None:
    encoder = add_lora(load_encoder(tiny_base), 4, 8, 0.0, ["query", "value"], layers_from=1)
    names = [n for n, p in encoder.named_parameters() if p.requires_grad]
    assert names and all(".layer.1." in n for n in names)


def test_partial_full_finetune_stored_in_float16_reproduces_its_reported_metrics(  # type: ignore[no-untyped-def]
    make_config, tiny_data, tmp_path: Path
) -> None:
    from safetensors import safe_open

    from models.commands import evaluate

    config = make_config(model={"finetune": "full", "train_layers_from": 1, "store_dtype": "float16"})
    out = train_model(config, tmp_path / "full")
    with safe_open(str(out / WEIGHTS_FILE), "pt") as f:
        keys = list(f.keys())
        assert all(f.get_tensor(k).dtype == torch.float16 for k in keys)
    assert any(".layer.1." in k for k in keys) and not any(".layer.0." in k or "embeddings" in k for k in keys)
    reported = json.loads((out / METRICS_FILE).read_text())["test"]["indomain"]
    again = evaluate(str(out), "indomain-test", gold_path=tiny_data["gold"], show=False)
    assert again["stance"] == reported["stance"] and again["affect_focus"] == reported["affect_focus"]


def test_every_training_config_in_the_repository_validates() -> None:
    from models.config import PROJECT_ROOT, load_train_config

    configs = sorted((PROJECT_ROOT / "configs" / "train").glob("*.toml"))
    assert configs
    for path in configs:
        config = load_train_config(path)
        assert config.resolve(config.data.gold).is_file(), path


def test_the_default_config_still_records_as_the_shipped_model_recorded_it() -> None:
    """Options added since 1.2.0 leave its fingerprint and written config alone until set,
    so that `make train-default` gives metrics.json and train_config.toml byte for byte."""
    from models.config import PROJECT_ROOT, load_train_config

    config = load_train_config(PROJECT_ROOT / "configs" / "train" / "default.toml")
    shipped = PROJECT_ROOT / "models" / "registry" / config.model_id / config.version
    recorded = json.loads((shipped / METRICS_FILE).read_text())["train_config_fingerprint"]
    assert config.fingerprint == recorded
    assert config.to_toml() == (shipped / "train_config.toml").read_text()
    averaged = config.model_copy(update={"optim": config.optim.model_copy(update={"ema_decay": 0.999})})
    assert averaged.fingerprint != recorded and "ema_decay = 0.999" in averaged.to_toml()


def test_head_init_seed_starts_the_heads_alike_and_leaves_the_run_random_stream(  # type: ignore[no-untyped-def]
    make_config, tiny_base: Path
) -> None:
    from models.train import _build_net, _set_seed

    schema = load_label_schema()

    def heads_and_next_draw(seed: int, head_init_seed: int | None) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        config = make_config(seed=seed, model={"head_init_seed": head_init_seed})
        _set_seed(seed)
        net, _, _ = _build_net(config, tiny_base, schema)
        return {k: v.detach().clone() for k, v in net.heads.state_dict().items()}, torch.rand(4)

    a, draw_a = heads_and_next_draw(7, 3)
    b, draw_b = heads_and_next_draw(8, 3)
    plain, draw_plain = heads_and_next_draw(7, None)
    assert all(torch.equal(a[k], b[k]) for k in a)  # other run seeds, the same heads
    assert any(not torch.equal(a[k], plain[k]) for k in a)
    assert torch.equal(draw_a, draw_plain)  # the run's own stream is where it would be without it
    assert not torch.equal(draw_a, draw_b)
