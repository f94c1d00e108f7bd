"""Start the assistant: python app.py [--host 127.0.0.1] [--port 7860] [--auth user:password].

Builds or loads the default index over RAG_DOCS_DIR (seeds/) and serves the Gradio chat UI.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="周口新闻问答助手（Gradio 界面）")
    p.add_argument("--host", default=os.environ.get("RAG_HOST", "127.0.0.1"), help="监听地址（默认 127.0.0.1，环境变量 RAG_HOST）")
    p.add_argument("--port", type=int, default=int(os.environ.get("RAG_PORT", "7860")), help="端口（默认 7860，RAG_PORT）")
    p.add_argument("--auth", default=os.environ.get("RAG_AUTH"), help="登录账号，格式 user:password（RAG_AUTH）")
    p.add_argument("--docs", help="文档目录（RAG_DOCS_DIR，默认 seeds/）")
    p.add_argument("--index", help="索引目录（RAG_INDEX_DIR，默认 index/）")
    p.add_argument("--model", help="向量模型名称或本地目录（RAG_MODEL）")
    p.add_argument("--concurrency", type=int, default=int(os.environ.get("RAG_CONCURRENCY", "4")), help="同时处理的请求数（默认 4）")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    auth = None
    if args.auth:
        user, sep, password = args.auth.partition(":")
        if not sep or not user or not password:
            print("错误：--auth 的格式应为 user:password", file=sys.stderr)
            return 2
        auth = [(user, password)]

    from rag.index import open_index
    from rag.settings import Settings

    settings = Settings().with_(docs_dir=args.docs, index_dir=args.index, model=args.model)
    index = open_index(settings)
    print(index.info().summary(), file=sys.stderr)

    from rag.ui import CSS, build_demo

    demo = build_demo(index)
    demo.queue(default_concurrency_limit=max(1, args.concurrency))
    demo.launch(
        server_name=args.host,
        server_port=args.port,
        auth=auth,
        share=False,
        ssr_mode=False,
        css=CSS,
        footer_links=["api"],
        max_file_size="20mb",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
