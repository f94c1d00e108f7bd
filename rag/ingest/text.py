"""Plain text and markdown: the encoding is detected from a BOM, else UTF-8, else GB18030."""

from __future__ import annotations

import codecs

from .base import Reader, Unreadable

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE, whose BOM is its prefix
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def bom_encoding(data: bytes) -> tuple[str, int] | None:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return encoding, len(bom)
    return None


def decode(data: bytes) -> str | None:
    """Text of `data`, or None when it is binary, empty or in no encoding we know."""
    bom = bom_encoding(data)
    if bom is not None:
        encoding, skip = bom
        try:
            text = data[skip:].decode(encoding)
        except UnicodeDecodeError:
            return None
        return text if text.strip() and "\x00" not in text else None
    if not data.strip() or b"\x00" in data:
        return None
    for encoding in ("utf-8", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return None


class TextReader(Reader):
    kind = "text"
    suffixes = (".txt", ".text")

    def sniff(self, head: bytes, suffix: str) -> bool:
        if bom_encoding(head) is not None:
            return True
        if b"\x00" in head:
            return False
        # A cut in the middle of a multi-byte character at the end of `head` is fine.
        for encoding in ("utf-8", "gb18030"):
            try:
                head.decode(encoding)
                return True
            except UnicodeDecodeError as exc:
                if exc.start >= len(head) - 3:
                    return True
        return False

    def read(self, data: bytes, name: str, limits=None) -> tuple[str, int]:
        text = decode(data)
        if text is None:
            raise Unreadable("文件为空、是二进制文件，或编码无法识别（支持 UTF-8/UTF-16/GB18030）")
        return text, text.count("\f") + 1


class MarkdownReader(TextReader):
    kind = "markdown"
    suffixes = (".md", ".markdown")

    def sniff(self, head: bytes, suffix: str) -> bool:
        return suffix in self.suffixes and super().sniff(head, suffix)
