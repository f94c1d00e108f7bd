"""RAG_DEVICE=auto|cpu|cuda: the device, batch size and precision an engine runs with.

No GPU was available where these were written: the CUDA branch of the policy is tested through the
availability probe, and the real engine on the CPU.
"""

import numpy as np
import pytest

from rag import Settings
from rag.encoders import ModelUnavailable, load_encoder
from rag.encoders.device import CPU_BATCH, CUDA_BATCH, check_device, cuda_available, plan_device
from rag.encoders.sentence_transformers import SentenceTransformerEncoder


def test_device_setting_is_checked(monkeypatch):
    monkeypatch.delenv("RAG_DEVICE", raising=False)
    assert Settings().device == "auto"
    assert Settings(device=" CUDA:1 ").device == "cuda:1"
    with pytest.raises(ValueError, match="RAG_DEVICE='gpu' 无效"):
        Settings(device="gpu")
    monkeypatch.setenv("RAG_DEVICE", "tpu")
    with pytest.raises(ValueError, match="auto、cpu、cuda"):
        Settings()
    assert check_device("") == "auto"


def test_batch_size_follows_the_device_unless_set(monkeypatch):
    monkeypatch.delenv("RAG_BATCH_SIZE", raising=False)
    assert Settings().batch_size is None
    monkeypatch.setenv("RAG_BATCH_SIZE", "8")
    assert Settings().batch_size == 8


def test_the_plan_for_each_device():
    gpu = lambda: True  # noqa: E731  (the probe's answer on a machine with a GPU)
    assert plan_device("auto", has_cuda=gpu) == plan_device("cuda", has_cuda=gpu)
    plan = plan_device("cuda:1", has_cuda=gpu)
    assert (plan.device, plan.batch_size, plan.fp16) == ("cuda:1", CUDA_BATCH, True)
    assert plan_device("cuda", batch_size=16, has_cuda=gpu).batch_size == 16
    plan = plan_device("cpu", has_cuda=gpu)
    assert (plan.device, plan.batch_size, plan.fp16) == ("cpu", CPU_BATCH, False)


def test_auto_on_this_machine_and_cuda_without_a_gpu():
    plan = plan_device("auto")
    assert plan.device == ("cuda" if cuda_available() else "cpu") and plan.fp16 == cuda_available()
    if not cuda_available():
        with pytest.raises(ModelUnavailable, match="RAG_DEVICE=cuda"):
            plan_device("cuda")


def test_the_engine_runs_where_it_was_planned(minilm_path):
    auto = SentenceTransformerEncoder(minilm_path, "auto")
    cpu = SentenceTransformerEncoder(minilm_path, "cpu")
    assert (cpu.device, cpu.batch_size, cpu.fp16) == ("cpu", CPU_BATCH, False)
    assert auto.device == plan_device("auto").device
    texts = ["周口市智慧岛核心区签约入驻企业", "许寨社区现有党员81名"]
    tolerance = 2e-2 if auto.fp16 else 1e-6
    assert np.allclose(auto.encode_passages(texts), cpu.encode_passages(texts), atol=tolerance)
    if not cuda_available():
        encoder, why = load_encoder(minilm_path, "cuda")
        assert encoder is None and "RAG_DEVICE=cuda" in why


def test_the_encoder_benchmark_reports_texts_per_second_per_engine_and_device(minilm_path):
    from benchmarks.encoders import measure, seed_texts

    texts = seed_texts(8)
    assert len(texts) == 8 and all(texts)
    row = measure(SentenceTransformerEncoder(minilm_path, "cpu"), texts, queries=2)
    assert (row["engine"], row["device"], row["fp16"], row["texts"]) == ("sentence-transformers", "cpu", False, 8)
    assert row["texts_per_s"] > 0 and row["query_p50_ms"] > 0 and row["model"].endswith("/model")


def test_the_bundled_model_runs_on_the_planned_device():
    pytest.importorskip("torch")
    from rag.encoders.bundled import BundledEncoder, Runner

    cpu = BundledEncoder("cpu")
    assert (cpu.runner, cpu.device, cpu.fp16) == (Runner.TORCH, "cpu", False)
    assert BundledEncoder("cpu", Runner.C).device == "cpu"
    if not cuda_available():
        encoder, why = load_encoder("bundled", "cuda")
        assert encoder is None and "RAG_DEVICE=cuda" in why
