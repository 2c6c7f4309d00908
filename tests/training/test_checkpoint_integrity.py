"""A truncated or corrupt checkpoint file is named, with the earlier complete checkpoint to use instead."""

from __future__ import annotations

import shutil

import pytest
from transformers import AutoModel

import merc_hf
from merc_hf.hub import CheckpointError, check_checkpoint
from merc_hf.training import MercTrainer

from .test_trainer import make_args, tiny_model


@pytest.fixture(scope="module")
def tiny_data():
    return merc_hf.load_dataset(
        "synthetic", preset="meld-like", n_dialogues=24, seed=1, dims={"text": 12, "audio": 8, "visual": 8}
    )


@pytest.fixture(scope="module")
def trained(tiny_data, tmp_path_factory):
    """An output folder with checkpoint-5 and checkpoint-10 (two epochs of 5 steps)."""
    out = tmp_path_factory.mktemp("trained")
    MercTrainer(
        model=tiny_model(), args=make_args(out, num_train_epochs=2), train_dataset=tiny_data["train"]
    ).train()
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-10", "checkpoint-5"]
    return out


@pytest.fixture
def output_dir(trained, tmp_path):
    return shutil.copytree(trained, tmp_path / "out")


def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def flip_a_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(data)


def test_complete_checkpoints_pass(output_dir):
    check_checkpoint(output_dir / "checkpoint-5")
    check_checkpoint(output_dir / "checkpoint-10")
    assert type(AutoModel.from_pretrained(output_dir / "checkpoint-10")).__name__ == "M3NetModel"


def test_loading_a_truncated_model_names_the_file_and_the_earlier_checkpoint(output_dir):
    broken = output_dir / "checkpoint-10" / "model.safetensors"
    truncate(broken)
    with pytest.raises(CheckpointError) as info:
        AutoModel.from_pretrained(output_dir / "checkpoint-10")
    message = str(info.value)
    assert repr(str(broken)) in message and "SafetensorError" in message
    assert info.value.file == broken and info.value.usable == output_dir / "checkpoint-5"
    assert f"resume_from_checkpoint={str(output_dir / 'checkpoint-5')!r}" in message


@pytest.mark.parametrize("damage", [truncate, flip_a_byte])
def test_resuming_from_a_broken_optimizer_state_names_it(tiny_data, output_dir, damage):
    broken = output_dir / "checkpoint-10" / "optimizer.pt"
    damage(broken)
    trainer = MercTrainer(
        model=tiny_model(), args=make_args(output_dir, num_train_epochs=3), train_dataset=tiny_data["train"]
    )
    for resume in (str(output_dir / "checkpoint-10"), True):  # the folder, or the latest one found
        with pytest.raises(CheckpointError, match="optimizer.pt' is truncated or corrupt") as info:
            trainer.train(resume_from_checkpoint=resume)
        assert info.value.file == broken and info.value.usable == output_dir / "checkpoint-5"
    trainer.train(resume_from_checkpoint=str(info.value.usable))  # the suggested one works
    assert trainer.state.global_step == 15


def test_no_earlier_complete_checkpoint(output_dir):
    truncate(output_dir / "checkpoint-5" / "scheduler.pt")
    (output_dir / "checkpoint-10" / "trainer_state.json").write_text('{"global_step": 1')
    with pytest.raises(CheckpointError, match="trainer_state.json.*no earlier complete checkpoint") as info:
        check_checkpoint(output_dir / "checkpoint-10")
    assert info.value.usable is None
    check_checkpoint(output_dir / "checkpoint-10", weights_only=True)  # what from_pretrained reads is fine
