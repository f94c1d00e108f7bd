"""Files -> documents: the reader interface every file format implements.

A reader turns a file's bytes into plain text. Pages are separated by a form feed ("\f"), so
the article splitter can tell on which page each article starts (`第2版` in a citation).
The kind of a file is decided by its content (`sniff`), never by its name alone.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, NamedTuple

if TYPE_CHECKING:
    from ..settings import IngestLimits

from ..errors import Unreadable  # noqa: F401 - raised by every reader, defined with the others

PAGE_BREAK = "\f"


@dataclass(frozen=True)
class Document:
    source: str  # the document's name in the library: a path relative to the docs folder, or an upload's name
    text: str  # pages separated by PAGE_BREAK
    sha256: str  # of the file's bytes
    kind: str = "text"  # the reader's kind: text, markdown, pdf, scan, image, docx, html
    pages: int = 1
    printed: tuple[int | None, ...] = ()  # the page number printed on each page (第3版), None where none was found

    @property
    def is_markdown(self) -> bool:
        return self.kind == "markdown" or any(line.startswith("## ") for line in self.text.splitlines()[:50])


class Pages(NamedTuple):
    """What a reader of a paged format returns: its text, the page count and the printed page numbers."""

    text: str
    n_pages: int  # not `count`: that is tuple.count
    printed: tuple[int | None, ...] = ()
    kind: str | None = None  # overrides the reader's kind: a PDF read wholly by OCR is a "scan"


class Reader(abc.ABC):
    """One file format. Subclasses are registered in `rag.ingest.READERS`, most specific first."""

    kind: ClassVar[str]
    suffixes: ClassVar[tuple[str, ...]]  # what the upload dialog and the folder scan offer
    # A binary format's name on text content is a saved error page or a broken download, not a document.
    binary: ClassVar[bool] = False

    @abc.abstractmethod
    def sniff(self, head: bytes, suffix: str) -> bool:
        """True when the first bytes of a file (up to 8 KiB) are this format. `suffix` only breaks ties."""

    @abc.abstractmethod
    def read(self, data: bytes, name: str, limits: IngestLimits | None = None) -> Pages | tuple[str, int]:
        """(text with pages separated by PAGE_BREAK, number of pages), or `Pages` when the reader also
        finds the numbers printed on the pages; raises Unreadable with the reason. `limits` are the
        caller's (`Settings.ingest`): pages, sizes, pixels, and whether OCR may run."""
