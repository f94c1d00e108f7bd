"""Command line: python -m rag build | add | remove | list | ask | eval | calibrate | info."""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
from pathlib import Path

from .settings import Settings


def _settings(args) -> Settings:
    return Settings().with_(
        docs_dir=getattr(args, "docs", None), index_dir=getattr(args, "index", None), model=getattr(args, "model", None)
    )


def _print_dense_status(index) -> None:
    info = index.info()
    if not info.dense:
        print(f"⚠ 语义检索未开启：{info.dense_reason}。当前仅使用关键词检索（jieba + BM25）。", file=sys.stderr)


def cmd_build(args) -> int:
    from .index import build_index

    index = build_index(settings=_settings(args), wait_dense=args.wait_dense)
    if args.wait_dense:
        index.fill_dense(progress=True)  # the vector graphs of large parts (RAG_ANN_INDEX=hnsw), if any
    print(index.info().summary())
    print(f"索引位置：{index.folder}")
    _print_dense_status(index)
    if index.dense_progress is not None:
        print("语义向量将由下一个打开索引的进程补全（python app.py 在后台进行）；要在这里等待，请加 --wait-dense", file=sys.stderr)
    return 0


def cmd_info(args) -> int:
    from .index import load_index

    index = load_index(settings=_settings(args))
    info = index.info()
    print(info.summary())
    print(f"索引位置：{index.folder}；第 {info.generation} 代，更新于 {info.built_at}")
    if info.dense_note:
        print(f"说明：{info.dense_note}")
    return 0


def _print_changes(changes) -> int:
    marks = {"added": "+", "replaced": "~", "removed": "-", "unchanged": "=", "skipped": "!", "refused": "✗"}
    for c in changes:
        print(f"{marks.get(c.status, '?')} {c.source}：{c.message}")
    return 1 if any(c.status == "refused" for c in changes) else 0


def cmd_add(args) -> int:
    from .index import open_index

    index = open_index(_settings(args))
    code = _print_changes(index.add(args.files))
    index.maintain()
    return code


def cmd_remove(args) -> int:
    from .index import open_index

    index = open_index(_settings(args))
    code = _print_changes(index.remove(args.names))
    index.maintain()
    return code


def cmd_list(args) -> int:
    from .index import load_index

    index = load_index(settings=_settings(args))
    docs = index.documents()
    print(f"{'文档':<40}{'类型':<10}{'页':>4}{'文章':>6}{'文本块':>7}  {'来源':<6}{'添加时间':<26}状态")
    for d in docs:
        origin = "目录" if d.origin == "folder" else "上传"
        status = "正常" if d.status == "ok" else f"跳过：{d.reason}"
        if d.duplicates:
            status += f"（{d.duplicates} 篇与已有文章相同）"
        print(f"{d.source:<40}{d.kind:<10}{d.pages:>4}{d.articles:>6}{d.chunks:>7}  {origin:<6}{d.added_at:<26}{status}")
    print(f"共 {sum(d.status == 'ok' for d in docs)} 篇文档，{index.info().chunks} 个文本块")
    return 0


def cmd_ask(args) -> int:
    from .index import open_index

    index = open_index(_settings(args))
    _print_dense_status(index)
    if args.answer:
        from .answer import answer

        result = answer(index, args.question, k=args.k, mode=args.mode)
        print(result.text)
        if result.notice:  # e.g. 把握不大…: part of what the answer says
            print(result.notice)
        print()
        passages = [c.passage for c in result.citations] or result.passages
    else:
        passages = index.retrieve(args.question, k=args.k, mode=args.mode)
        if passages.notice:
            print(passages.notice, file=sys.stderr)
    if not passages:
        print("资料中没有找到相关内容。")
    for n, p in enumerate(passages, 1):
        ranks = f"关键词排名 {p.lexical_rank or '-'}，语义排名 {p.dense_rank or '-'}"
        print(f"[{n}] {p.display_title}")
        print(f"    来源：{p.source}  {p.byline}  得分 {p.score:.4f}（{ranks}）")
        print("    " + p.text.replace("\n", "\n    "))
        print()
    return 0


# What `eval` and `calibrate` read when no question file is named (those that exist).
DEFAULT_QUESTION_SETS = ("../shared/eval/dev_questions.jsonl", "eval/extra_questions.jsonl",
                         "eval/paraphrase_questions.jsonl", "eval/english_questions.jsonl",
                         "eval/unanswerable_questions.jsonl")
# Held-out sets: `eval` reports them; `calibrate` never fits on them.
HOLDOUT_SETS = ("eval/holdout_questions.jsonl", "eval/unanswerable_holdout.jsonl")
DEFAULT_CMRC = "../shared/eval/cmrc2018_trial.json"


def _eval_modes(index, mode: str) -> list[str]:
    """`all`: the two legs alone and the default hybrid, side by side (lexical only without a dense leg)."""
    if mode != "all":
        return [mode]
    if not index.dense_enabled:
        print(f"（语义检索未开启：{index.dense_reason}；只评测 lexical）", file=sys.stderr)
        return ["lexical"]
    return ["lexical", "dense", "hybrid"]


def _existing(paths) -> list[str]:
    found = [p for p in paths if Path(p).is_file()]
    for p in paths:
        if p not in found:
            print(f"（跳过不存在的问题文件 {p}）", file=sys.stderr)
    return found


def _eval_set(index, name: str, questions, mode: str, args, reports: dict) -> None:
    """hit@k (answerable questions) and the answer-level figures of one set in one mode."""
    from .evaluate import evaluate, evaluate_answers

    answerable = [q for q in questions if q.answerable]
    print(f"# {name}（{len(questions)} 题，模式 {mode}）")
    if answerable:
        report = evaluate(index, answerable, mode=mode)
        reports[f"{name}/{mode}"] = report
        print(report.table(name if name == "cmrc" else ""))
        if report.misses and args.verbose:
            print("\n未在第 1 位命中：")
            for qid, q, rank in report.misses:
                print(f"  {qid} rank={rank}  {q}")
    if not args.no_answers:
        answers = evaluate_answers(index, questions, mode=mode)
        reports[f"{name}/{mode}/answers"] = answers
        print("回答（rag.ask）：correct = 答案串在引用中，first = 在第一句中，refused = 未找到，median = 回答字数中位数，sure-wrong = 答错且未提示“把握不大”")
        print(answers.table(name if name == "cmrc" else ""))
        if answers.misses and args.verbose:
            print("\n第一句未含答案（或不该回答却回答了）：")
            for qid, q, said in answers.misses:
                print(f"  {qid}  {q}  →  {said}")
    print()


def cmd_eval(args) -> int:
    from .evaluate import cmrc_sets, load_questions, write_cmrc_docs
    from .index import open_index

    settings = _settings(args)
    reports: dict = {}
    named = args.questions or args.cmrc
    question_files = args.questions or ([] if named else _existing(DEFAULT_QUESTION_SETS + HOLDOUT_SETS))
    cmrc = args.cmrc or (None if named or not Path(DEFAULT_CMRC).is_file() else DEFAULT_CMRC)
    if question_files:
        index = open_index(settings)
        _print_dense_status(index)
        for path in question_files:
            questions = load_questions(Path(path))
            for mode in _eval_modes(index, args.mode):
                _eval_set(index, Path(path).stem, questions, mode, args, reports)
    if cmrc:
        with tempfile.TemporaryDirectory(prefix="rag-cmrc-") as tmp:
            # --cmrc-index keeps the CMRC index (and its vector cache) between runs: embedding takes minutes.
            root = Path(args.cmrc_index) if args.cmrc_index else Path(tmp)
            # the default run reports every set
            for name, folder, without in cmrc_sets(root, unanswerable=args.cmrc_unanswerable or not named):
                questions = write_cmrc_docs(Path(cmrc), folder / "docs", without_answers=without)
                cache = folder / "index" / "embeddings.sqlite"
                if without and not cache.exists() and (root / "index" / "embeddings.sqlite").is_file():
                    # the paragraphs' other sentences are the same texts: CMRC's vectors serve them
                    cache.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(root / "index" / "embeddings.sqlite", cache)
                index = open_index(settings.with_(docs_dir=folder / "docs", index_dir=folder / "index"), progress=False)
                print(f"# {cmrc}：{index.info().documents} 段落" + ("，去掉了含答案的句子" if without else ""))
                for mode in _eval_modes(index, args.mode):
                    _eval_set(index, name, questions, mode, args, reports)
                index.close()
    if not reports:
        print("请给出 --questions 或 --cmrc", file=sys.stderr)
        return 2
    if args.json:
        Path(args.json).write_text(json.dumps({k: r.as_dict() for k, r in reports.items()}, indent=1))
    return 0


def cmd_calibrate(args) -> int:
    """Fit the answerability model (rag/answerability.py) and show what it answers, set by set.

    Answerable questions whose best sentence quotes the answer should be answered; the rest refused:
    the near-domain unanswerable set, the out-of-domain list, and answerable questions whose best
    sentence does not hold the answer (quoting it would be a confident wrong answer). Held-out sets are
    never read here."""
    from . import answerability
    from .answer import answer
    from .evaluate import Question, load_questions
    from .fusion import query_language
    from .index import open_index

    index = open_index(_settings(args))
    _print_dense_status(index)
    ood_file = Path(args.ood) if args.ood else Path(__file__).parent / "data" / "ood_questions.txt"
    ood = [ln.strip() for ln in ood_file.read_text(encoding="utf-8").splitlines() if ln.strip() and not ln.startswith("#")]
    groups: dict[str, list[tuple[str, Question | None]]] = {}  # group -> [(question, its Question or None)]
    for path in _existing(args.questions or DEFAULT_QUESTION_SETS):
        questions = load_questions(Path(path))
        groups[Path(path).stem.replace("_questions", "")] = [(q.question, q) for q in questions]
    for text in ood:
        groups.setdefault(f"ood-{query_language(text) or 'other'}", []).append((text, None))
    always = answerability.Model(weights=(), bias=0.0, threshold=0.0)  # quotes whatever it would choose
    answerable = {name for name, items in groups.items() if any(q is not None and q.answerable for _, q in items)}

    def labelled(question: str, q, mode: str):
        quoted = answer(index, question, mode=mode, model=always)
        text = "".join(c.sentence for c in quoted.citations)
        if args.labels == "answerable":
            return quoted.signals, bool(q is not None and q.answerable)
        return quoted.signals, bool(q is not None and q.answerable and text and q.in_text(text))

    modes = ["hybrid", "lexical"] if index.dense_enabled else ["lexical"]
    for mode in modes:
        rows: dict[str, list] = {}  # group -> [(signals, or None when refused before the model; should answer)]
        for name, items in groups.items():
            rows[name] = [labelled(text, q, mode) for text, q in items]
        for lang in ("zh", "other"):  # one model per mode and question language (answerability.model_for)
            def mine(sig, lang=lang):
                return sig is None or (sig.english == 0) == (lang == "zh")

            part = {name: [(sig, label) for sig, label in items if mine(sig)] for name, items in rows.items()}
            part = {name: items for name, items in part.items() if items}
            current = answerability.model_for(mode == "hybrid", lang)
            train = [(sig, label) for items in part.values() for sig, label in items if sig is not None]
            if len({label for _, label in train}) < 2:
                continue
            weights, bias = answerability.fit(train)
            fitted = answerability.Model(weights, bias, current.threshold)
            print(f"\n## 模式 {mode}" + (f"，问题语言 {lang}" if lang else "") + f"：拟合的逻辑回归（{len(train)} 题）")
            print("  " + "  ".join(f"{f}={w:.3f}" for f, w in zip(answerability.FEATURES, weights)) + f"  bias={bias:.3f}")
            print(f"  粘贴到 rag/answerability.py：Model(weights={weights}, bias={bias}, threshold=…)")

            def rate(model, items, t, name=""):
                """Answerable sets: the share answered with the answer quoted; the others: the share answered."""
                return sum(sig is not None and model.probability(sig) >= t and (label or name not in answerable)
                           for sig, label in items) / max(len(items), 1)

            names = list(part)
            print("  可回答的集合：答对（引用含答案）的比例，越高越好；unanswerable 与 ood-*：回答率，越低越好")
            print(f"{'':>26}" + "".join(f"{n[:13]:>14}" for n in names))
            print(f"{'n':>26}" + "".join(f"{len(part[n]):>14}" for n in names))
            print(f"{f'current, p >= {current.threshold:.2f}':>26}"
                  + "".join(f"{rate(current, part[n], current.threshold, n):>14.3f}" for n in names))
            for t in (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7):
                print(f"{f'fitted, p >= {t:.2f}':>26}" + "".join(f"{rate(fitted, part[n], t, n):>14.3f}" for n in names))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rag", description="周口本地新闻问答：检索与评测")
    parser.add_argument("-q", "--quiet", action="store_true", help="只输出结果，不输出进度")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p, docs=True, model=True):
        if docs:
            p.add_argument("--docs", help="文档目录（默认 RAG_DOCS_DIR 或 seeds/）")
        p.add_argument("--index", help="索引目录（默认 RAG_INDEX_DIR 或 index/）")
        if model:
            p.add_argument("--model", help="向量模型：hub 名称或本地目录；none 表示不用语义检索（默认 RAG_MODEL）")

    p = sub.add_parser("build", help="构建索引")
    common(p)
    p.add_argument("--wait-dense", action="store_true",
                   help="等语义向量全部完成再退出（默认：关键词索引建好即退出，向量由下一个打开索引的进程补全）")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("info", help="显示索引状态")
    common(p, docs=False, model=False)
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("add", help="向资料库添加文件（PDF、扫描件、图片、Word、HTML、文本），无需完整重建")
    common(p)
    p.add_argument("files", nargs="+", help="要添加的文件")
    p.set_defaults(func=cmd_add)

    p = sub.add_parser("remove", help="从资料库删除文档（按 list 中的名称）")
    common(p)
    p.add_argument("names", nargs="+", help="文档名称")
    p.set_defaults(func=cmd_remove)

    p = sub.add_parser("list", help="列出资料库中的文档")
    common(p, docs=False, model=False)
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("ask", help="提问并列出相关段落")
    common(p)
    p.add_argument("question")
    p.add_argument("-k", type=int, default=5, help="返回段落数（默认 5）")
    p.add_argument("--mode", choices=("hybrid", "lexical", "dense"), default="hybrid")
    p.add_argument("--answer", action="store_true", help="先给出带引用的摘录式回答")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("eval", help="评测检索：hit@1/3/5 与 MRR@10")
    common(p)
    p.add_argument("--questions", action="append",
                   help="问题文件（jsonl），可重复；不给 --questions 与 --cmrc 时评测 eval/ 下的全部集合（含留出集）、dev、CMRC 试验集及其去掉答案句的无答案集")
    p.add_argument("--cmrc", help="CMRC 2018（SQuAD 格式）文件，每个段落作为一篇文档")
    p.add_argument("--cmrc-index", help="保留 CMRC 索引的目录（再次评测时复用，免去重新向量化）")
    p.add_argument("--cmrc-unanswerable", action="store_true",
                   help="另评一个近域无答案集：CMRC 段落去掉含答案的句子后，原问题（约 940 题）应答“没有找到”（不给参数时默认评测）")
    p.add_argument("--mode", choices=("all", "hybrid", "lexical", "dense"), default="all",
                   help="all（默认）：lexical、dense、hybrid 各评一次")
    p.add_argument("--json", help="同时把结果写成 JSON")
    p.add_argument("-v", "--verbose", action="store_true", help="列出未在第 1 位命中的问题与答错的问题")
    p.add_argument("--no-answers", action="store_true", help="只评测检索（hit@k），不评测回答")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("calibrate", help="拟合“是否找到答案”的模型：可回答问题的回答率与无答案问题的拒答率")
    common(p)
    p.add_argument("--questions", action="append",
                   help="问题文件（jsonl），可重复；默认 dev、extra、paraphrase、english 与 unanswerable")
    p.add_argument("--ood", help="领域外问题文件（每行一个；默认 rag/data/ood_questions.txt）")
    p.add_argument("--labels", choices=("quoted", "answerable"), default="quoted",
                   help="quoted（默认）：可回答且首选句含答案才算应回答；answerable：可回答即算应回答（旧做法）")
    p.set_defaults(func=cmd_calibrate)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("已中断；索引保持中断前的状态", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"错误：{exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
