"""Where the Milvus backend stores the library, and talking to it with errors a person can act on.

`RAG_BACKEND` names the target:

    milvus:///abs/path/archive.db          Milvus Lite, in this process (a folder; one process at a time)
    milvus:relative/archive.db             the same, relative to the working directory
    milvus://host:19530[/database]         a Milvus server or cluster over plain gRPC
    milvus+https://host[:443][/database]   the same over TLS (Zilliz Cloud, a cluster behind a gateway)

Query parameters: `prefix` (collection name prefix, default `rag`), `lexical` (`auto`, `sparse`, `tokens`,
`jieba`; see lexical.py). The credential comes from `RAG_MILVUS_TOKEN` ("user:password" or an API key),
never from the URI, so it stays out of logs, manifests and error messages; it and `RAG_MILVUS_TIMEOUT`
reach `connect` as the backend's `Settings.milvus`.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from ...settings import MilvusSettings
from ..base import BackendUnavailable, IndexCorrupt

log = logging.getLogger(__name__)

TOKEN_ENV = "RAG_MILVUS_TOKEN"
LEXICAL_CHOICES = ("auto", "sparse", "tokens", "jieba")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,31}$")


def redact(uri: str) -> str:
    """The URI without any user:password@ part."""
    return re.sub(r"//[^/@]*@", "//***@", uri)


@dataclass(frozen=True)
class Target:
    uri: str  # as written (redacted), for messages
    address: str  # what MilvusClient gets: a Lite folder path, or http(s)://host:port
    lite: bool
    db_name: str = ""
    prefix: str = "rag"
    lexical: str = "auto"

    @property
    def lite_path(self) -> Path:
        return Path(self.address)


def parse(uri: str) -> Target:
    """A `Target` from `RAG_BACKEND`; ValueError (Chinese first) for anything malformed."""
    shown = redact(uri.strip())
    parts = urlsplit(uri.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("milvus", "milvus+http", "milvus+https"):
        raise ValueError(f"RAG_BACKEND={shown!r} 不是 Milvus 地址（应以 milvus:// 或 milvus+https:// 开头）")
    if parts.username or parts.password:
        raise ValueError(f"RAG_BACKEND={shown!r} 中不要写账号密码；请用环境变量 {TOKEN_ENV}（user:password 或 API key）")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    unknown = set(query) - {"prefix", "lexical"}
    if unknown:
        raise ValueError(f"RAG_BACKEND={shown!r} 含有未知参数 {sorted(unknown)}（可用：prefix、lexical）")
    prefix = query.get("prefix", "rag")
    if not _NAME.match(prefix):
        raise ValueError(f"集合前缀 prefix={prefix!r} 无效：只能用字母、数字和下划线，且不以数字开头")
    lexical = query.get("lexical", "auto")
    if lexical not in LEXICAL_CHOICES:
        raise ValueError(f"lexical={lexical!r} 无效（可选：{'、'.join(LEXICAL_CHOICES)}）")
    if not parts.netloc:  # milvus:///abs/path.db or milvus:rel/path.db
        path = parts.path
        if not path:
            raise ValueError(f"RAG_BACKEND={shown!r} 缺少 Milvus Lite 数据库路径，例如 milvus:///srv/rag/archive.db")
        return Target(shown, str(Path(path).expanduser().resolve()), True, "", prefix, lexical)
    if scheme == "milvus" and parts.netloc in (".", ".."):  # milvus://./archive.db, a common slip
        return Target(shown, str(Path(parts.netloc + parts.path).resolve()), True, "", prefix, lexical)
    host = parts.hostname or ""
    if not host:
        raise ValueError(f"RAG_BACKEND={shown!r} 缺少服务器地址")
    try:
        port = parts.port or (443 if scheme == "milvus+https" else 19530)
    except ValueError:
        raise ValueError(f"RAG_BACKEND={shown!r} 的端口无效") from None
    http = "https" if scheme == "milvus+https" else "http"
    host_part = f"[{host}]" if ":" in host else host
    db_name = parts.path.strip("/")
    if db_name and not _NAME.match(db_name):
        raise ValueError(f"数据库名 {db_name!r} 无效：只能用字母、数字和下划线")
    return Target(shown, f"{http}://{host_part}:{port}", False, db_name, prefix, lexical)


def _lite_holder(path: Path) -> str | None:
    """Whether another process has the Lite folder open (Milvus Lite allows one); its PID if known."""
    lock = path / "LOCK"
    if not lock.exists():
        return None
    try:
        fd = os.open(lock, os.O_RDWR)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    except OSError as exc:
        if exc.errno not in (errno.EAGAIN, errno.EACCES):
            return None
        return _pid_holding(lock) or "?"
    finally:
        os.close(fd)


def _pid_holding(path: Path) -> str:
    """The PID holding a flock on `path`, from /proc/locks (Linux); "" when unknown."""
    try:
        inode = path.stat().st_ino
        for line in Path("/proc/locks").read_text().splitlines():
            fields = line.split()
            if len(fields) > 5 and "FLOCK" in fields and fields[5].endswith(f":{inode}"):
                return fields[4]
    except OSError:
        pass
    return ""


def connect(target: Target, opened_here: bool = False, milvus: MilvusSettings | None = None):
    """A MilvusClient for `target`, or BackendUnavailable saying what is wrong and what to do.

    `opened_here`: this process already has the Lite database open (its lock is ours, not a rival's).
    `milvus`: the token and timeout (the backend's `Settings.milvus`; by default the environment now).
    """
    milvus = milvus or MilvusSettings()
    try:
        from pymilvus import MilvusClient
    except ImportError:
        raise BackendUnavailable(
            "未安装 Milvus 客户端：pip install 'rag[milvus]'（pymilvus 与 milvus-lite）"
            "（the Milvus backend needs pymilvus）"
        ) from None
    timeout = milvus.timeout
    if target.lite:
        holder = None if opened_here else _lite_holder(target.lite_path)
        if holder:
            raise BackendUnavailable(
                f"Milvus Lite 数据库 {target.lite_path} 正被另一个进程（PID {holder}）使用；Milvus Lite 同一时间只允许一个进程打开，"
                f"多个进程共用请改用 Milvus 服务器（milvus://主机:19530）"
                f"（Milvus Lite database is open in another process）"
            )
        target.lite_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            import milvus_lite  # noqa: F401
        except ImportError:
            raise BackendUnavailable("未安装 Milvus Lite：pip install 'rag[milvus]'（the milvus-lite package is missing）") from None
    token = milvus.token
    with errors(target, "连接"):
        client = MilvusClient(uri=target.address, token=token, db_name=target.db_name, timeout=timeout)
        client.get_server_version()  # a server that refuses the token says so here, not on the first query
    return client


def server_version(client, lite: bool) -> tuple[str, tuple[int, int]]:
    """("milvus_lite-3.2.2" or "v2.5.4", (major, minor)) of the Milvus API the target speaks.

    The pip package `milvus` 2.3.5 is a real standalone server that calls itself "v2.3.5-lite": only
    the target (a file, not a host) says Milvus Lite.
    """
    text = str(client.get_server_version())
    if lite:
        return text, (9, 9)  # Milvus Lite 3 implements the 2.5+ API it is shipped with (BM25, sparse)
    m = re.search(r"(\d+)\.(\d+)", text)
    return text, ((int(m.group(1)), int(m.group(2))) if m else (0, 0))


def _kind(exc: Exception) -> str:
    text = f"{type(exc).__name__} {getattr(exc, 'code', '')} {exc}".lower()
    if any(w in text for w in ("auth", "unauthenticated", "credential", "password", "token", "permission denied",
                               "privilege", "1800")):
        return "auth"
    if any(w in text for w in ("fail connecting", "unavailable", "connection refused", "deadline", "timed out",
                               "failed to connect", "connectionconfig", "failed to start", "dns")):
        return "down"
    if any(w in text for w in ("collection not found", "can't find collection", "collectionnotexist",
                               "not exist", "not found")):
        return "missing"
    if "dim" in text and ("mismatch" in text or "not match" in text):
        return "dimension"
    return ""


@contextlib.contextmanager
def errors(target: Target, doing: str):
    """Translate what pymilvus raises into BackendUnavailable / IndexCorrupt naming the URI."""
    try:
        yield
    except (BackendUnavailable, IndexCorrupt):
        raise
    except Exception as exc:
        if not _is_milvus_error(exc):
            raise
        kind = _kind(exc)
        where = target.uri
        if kind == "auth":
            raise BackendUnavailable(
                f"Milvus 拒绝了凭据（{where}）：请检查环境变量 {TOKEN_ENV}（user:password 或 API key）"
                f"（authentication failed）：{_short(exc)}"
            ) from None
        if kind == "down":
            raise BackendUnavailable(
                f"无法连接 Milvus（{where}）：服务器未启动、地址有误或网络不通；{doing}失败"
                f"（Milvus unreachable）：{_short(exc)}"
            ) from None
        if kind in ("missing", "dimension"):
            raise IndexCorrupt(f"Milvus（{where}）中的索引不完整或与配置不符（{doing}）：{_short(exc)}；请运行 python -m rag build 重建") from None
        raise BackendUnavailable(f"Milvus（{where}）{doing}出错：{_short(exc)}") from None


def _is_milvus_error(exc: Exception) -> bool:
    mod = type(exc).__module__ or ""
    return mod.startswith(("pymilvus", "grpc", "milvus_lite")) or isinstance(exc, (ConnectionError, TimeoutError))


def _short(exc: Exception) -> str:
    text = getattr(exc, "message", "") or str(exc) or type(exc).__name__
    return re.sub(r"\s+", " ", str(text))[:300]
