"""Start the assistant: python app.py [--host 127.0.0.1] [--port 7860] [--auth user:password] [--read-only].

Builds or loads the index over RAG_DOCS_DIR (seeds/), then serves the UI at / and the JSON API at
/api/v1 (docs at /api/docs) with uvicorn.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="周口新闻问答助手（界面 + JSON 接口）")
    p.add_argument("--host", default=os.environ.get("RAG_HOST", "127.0.0.1"), help="监听地址（默认 127.0.0.1，环境变量 RAG_HOST）")
    p.add_argument("--port", type=int, default=int(os.environ.get("RAG_PORT", "7860")), help="端口（默认 7860，RAG_PORT）")
    p.add_argument("--auth", default=os.environ.get("RAG_AUTH"), help="登录账号，格式 user:password；界面和接口共用（RAG_AUTH）")
    p.add_argument("--docs", help="文档目录（RAG_DOCS_DIR，默认 seeds/）")
    p.add_argument("--index", help="索引目录（RAG_INDEX_DIR，默认 index/）")
    p.add_argument("--model", help="向量模型名称或本地目录，bundled 为内置模型，none 关闭语义检索（RAG_MODEL）")
    p.add_argument("--concurrency", type=int, default=int(os.environ.get("RAG_CONCURRENCY", "4")), help="同时处理的提问数（默认 4）")
    p.add_argument("--read-only", action="store_true", default=None,
                   help="只读：隐藏上传和删除，接口拒绝修改资料库（RAG_READ_ONLY=1）")
    p.add_argument("--watch-seconds", type=float, help="每隔多少秒检查文档目录的变化，0 为只在启动时（RAG_WATCH_SECONDS，默认 30）")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    from rag.auth import parse_auth

    try:
        auth = parse_auth(args.auth)
    except ValueError as exc:
        print(f"错误：{exc}", file=sys.stderr)
        return 2

    from rag.index import open_index
    from rag.settings import Settings

    try:  # a bad RAG_* value is named here, before anything is opened
        settings = Settings().with_(docs_dir=args.docs, index_dir=args.index, model=args.model,
                                    read_only=args.read_only, watch_seconds=args.watch_seconds)
    except ValueError as exc:
        print(f"错误：{exc}", file=sys.stderr)
        return 2
    index = open_index(settings, background_dense=True)  # keywords at once; semantic search joins when embedded
    print(index.info().summary(), file=sys.stderr)

    import uvicorn

    from rag.server import UVICORN_OPTIONS, create_app

    app = create_app(index, settings, auth=auth, concurrency=args.concurrency)
    mode = "，只读" if settings.read_only else ""
    print(f"* 界面：http://{args.host}:{args.port}/  接口文档：http://{args.host}:{args.port}/api/docs{mode}", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, timeout_graceful_shutdown=5, **UVICORN_OPTIONS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
