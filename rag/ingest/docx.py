"""Word .docx: paragraphs, tables and text boxes in document order (python-docx, MIT).

A .docx is a zip: its entries' declared sizes and compression ratios are checked before
anything is inflated (a zip bomb declares gigabytes in a few kilobytes; Python's zipfile never
inflates past the declared size). Paragraphs styled as headings come out as `## ` lines, so the
article splitter reads them as headlines, table rows as `| a | b |` lines; an explicit page
break becomes a page break.
"""

from __future__ import annotations

import io
import zipfile

from ..settings import IngestLimits
from .base import PAGE_BREAK, Reader, Unreadable

# All entries together may inflate to IngestLimits.max_docx_mb (RAG_MAX_DOCX_MB, 200).
MAX_RATIO = 200  # deflate reaches ~1000x only on degenerate data; real XML stays under ~50x
MAX_ENTRIES = 10_000

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"


def check_zip(data: bytes, max_inflated: int | None = None) -> zipfile.ZipFile:
    """The zip, once its directory shows it cannot inflate to more than we accept (`max_inflated`
    bytes, all entries together; by default IngestLimits().max_docx_bytes)."""
    if max_inflated is None:
        max_inflated = IngestLimits().max_docx_bytes
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise Unreadable("Word 文档已损坏（不是有效的 zip 压缩包）") from exc
    entries = archive.infolist()
    if len(entries) > MAX_ENTRIES:
        raise Unreadable(f"Word 文档包含的文件过多（{len(entries)} 个），疑似压缩炸弹，已跳过")
    total = 0
    for entry in entries:
        total += entry.file_size
        if entry.file_size > 2**20 and entry.file_size > MAX_RATIO * max(entry.compress_size, 1):
            raise Unreadable(
                f"Word 文档中的 {entry.filename} 压缩比异常（{entry.file_size // max(entry.compress_size, 1)} 倍），"
                "疑似压缩炸弹，已跳过"
            )
    if total > max_inflated:
        raise Unreadable(f"Word 文档解压后过大（{total / 2**20:.0f} MB，上限 {max_inflated // 2**20} MB），疑似压缩炸弹，已跳过")
    return archive


def _owner(el, tags: tuple[str, ...]):
    """The closest ancestor of `el` with one of `tags`, or None; None too when inside an mc:Fallback copy."""
    parent = el.getparent()
    while parent is not None:
        if parent.tag == MC_FALLBACK:
            return None
        if parent.tag in tags:
            return parent
        parent = parent.getparent()
    return None


def paragraph_text(p) -> str:
    """The paragraph's own text: its text boxes are paragraphs of their own, deleted text is not text."""
    out = []
    for el in p.iter(W + "t", W + "tab", W + "br", W + "cr"):
        if _owner(el, (W + "p",)) is not p:
            continue
        if el.tag == W + "t":
            out.append(el.text or "")
        elif el.tag == W + "tab":
            out.append("\t")
        elif el.tag == W + "br" and el.get(W + "type") == "page":
            out.append(PAGE_BREAK)
        else:
            out.append("\n")
    return "".join(out)


class DocxReader(Reader):
    kind = "docx"
    binary = True
    suffixes = (".docx",)

    def sniff(self, head: bytes, suffix: str) -> bool:
        return head.startswith(b"PK\x03\x04") and (b"word/" in head or suffix == ".docx")

    def read(self, data: bytes, name: str, limits: IngestLimits | None = None) -> tuple[str, int]:
        from docx import Document as open_docx
        from docx.opc.exceptions import PackageNotFoundError

        check_zip(data, (limits or IngestLimits()).max_docx_bytes)
        try:
            document = open_docx(io.BytesIO(data))
            headings = {
                style.style_id
                for style in document.styles
                if (style.name or "").lower().startswith(("heading", "title", "标题"))
            }
            lines = list(self._blocks(document.element.body, headings))
        except Unreadable:
            raise
        except (PackageNotFoundError, KeyError, ValueError, zipfile.BadZipFile, OSError) as exc:
            raise Unreadable("Word 文档已损坏或不是 .docx 格式（旧版 .doc 请先另存为 .docx）") from exc
        except Exception as exc:  # lxml.etree.XMLSyntaxError and other parse errors of a damaged part
            raise Unreadable(f"Word 文档已损坏，无法解析（{type(exc).__name__}）") from exc
        text = "\n".join(lines)
        return text, text.count(PAGE_BREAK) + 1

    def _blocks(self, parent, headings: set[str]):
        for child in parent:
            if child.tag == W + "p":
                text = paragraph_text(child).strip(" \t")
                style = child.find(f"{W}pPr/{W}pStyle")
                heading = style is not None and style.get(W + "val") in headings
                heading = heading or child.find(f"{W}pPr/{W}outlineLvl") is not None
                if text.strip():
                    yield f"## {text.strip()}" if heading and PAGE_BREAK not in text else text
                elif PAGE_BREAK in text:
                    yield PAGE_BREAK
                for box in child.iter(W + "txbxContent"):
                    if _owner(box, (W + "p",)) is child:
                        yield from self._blocks(box, headings)
            elif child.tag == W + "tbl":
                for row in child.iter(W + "tr"):
                    if _owner(row, (W + "tbl",)) is not child:
                        continue
                    cells = [
                        " ".join(t for t in (paragraph_text(p).strip() for p in cell.iter(W + "p")) if t)
                        for cell in row.iter(W + "tc")
                        if _owner(cell, (W + "tr",)) is row
                    ]
                    if any(cells):
                        yield "| " + " | ".join(cells) + " |"  # a markdown table row
            elif child.tag in (W + "sdt", W + "sdtContent", W + "customXml", W + "smartTag"):
                yield from self._blocks(child, headings)
