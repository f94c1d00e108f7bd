"""The CMRC sets `rag eval` builds: the paragraphs as documents, and the near-domain unanswerable set made
by leaving every answer's sentence out of its paragraph."""

import json

from rag.__main__ import main
from rag.evaluate import UNANSWERABLE, write_cmrc_docs

SQUAD = {"data": [
    {"title": "许寨社区", "paragraphs": [{
        "id": "P1",
        "context": "许寨社区位于太昊路办事处。社区现有党员81名。社区新建便民服务中心一处，增加停车位420个。党员81名全部参加了活动。",
        "qas": [
            {"id": "Q1", "question": "许寨社区有多少名党员？", "answers": [{"text": "81名", "answer_start": 19}]},
            {"id": "Q2", "question": "许寨社区增加了多少个停车位？", "answers": [{"text": "420个", "answer_start": 41}]},
            {"id": "Q3", "question": "许寨社区位于哪个办事处？", "answers": [{"text": "太昊路办事处", "answer_start": 99}]},  # a wrong offset
        ]}]},
    {"title": "智慧岛", "paragraphs": [{
        "id": "P2",
        "context": "智慧岛是开发区的创新平台。岛内入驻企业359家。",
        "qas": [{"id": "Q4", "question": "智慧岛入驻了多少家企业？", "answers": [{"text": "359家", "answer_start": 19}]},
                {"id": "Q5", "question": " ", "answers": [{"text": "智慧岛", "answer_start": 0}]}]}]},
]}


def test_the_answers_sentences_are_left_out_and_what_they_alone_held_is_unanswerable(tmp_path):
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(SQUAD, ensure_ascii=False), encoding="utf-8")

    kept = write_cmrc_docs(path, tmp_path / "full")
    assert [q.id for q in kept] == ["Q1", "Q2", "Q3", "Q4"] and all(q.answerable for q in kept)
    assert (tmp_path / "full" / "P1.txt").read_text(encoding="utf-8") == f"许寨社区\n{SQUAD['data'][0]['paragraphs'][0]['context']}\n"

    without = write_cmrc_docs(path, tmp_path / "without", without_answers=True)
    # Q3's offset is wrong, so its text is found where it first occurs; Q1's 81名 is also in the last sentence,
    # which holds no answer's offset and stays: Q1 is still answerable there, so it is not in the set.
    assert (tmp_path / "without" / "P1.txt").read_text(encoding="utf-8") == "许寨社区\n党员81名全部参加了活动。\n"
    assert (tmp_path / "without" / "P2.txt").read_text(encoding="utf-8") == "智慧岛\n智慧岛是开发区的创新平台。\n"
    assert [(q.id, q.source, q.answers, q.kind) for q in without] == [
        ("Q2", "P1.txt", [], UNANSWERABLE), ("Q3", "P1.txt", [], UNANSWERABLE), ("Q4", "P2.txt", [], UNANSWERABLE)]


def test_rag_eval_reports_the_cmrc_unanswerable_set(tmp_path, monkeypatch, capsys):
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(SQUAD, ensure_ascii=False), encoding="utf-8")
    monkeypatch.setenv("RAG_MODEL", "none")
    out = tmp_path / "report.json"
    assert main(["-q", "eval", "--cmrc", str(path), "--cmrc-index", str(tmp_path / "cmrc"), "--cmrc-unanswerable",
                 "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert set(report) == {"cmrc/lexical", "cmrc/lexical/answers", "cmrc_unanswerable/lexical/answers"}
    unanswerable = report["cmrc_unanswerable/lexical/answers"]
    assert unanswerable["n"] == 3 and unanswerable["answerable"] == 0
    assert 0.0 <= unanswerable["refused"] <= 1.0
    assert "去掉了含答案的句子" in capsys.readouterr().out
