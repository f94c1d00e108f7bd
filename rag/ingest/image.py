"""Page images (PNG, JPEG, TIFF scans; photos of pages) through OCR.

The pixel count is checked from the header before anything is decoded: a small file can
declare a huge image (a decompression bomb). Multi-page TIFFs become pages.
"""

from __future__ import annotations

import io

from ..settings import IngestLimits
from .base import PAGE_BREAK, Pages, Reader, Unreadable

# Pixels accepted: IngestLimits.max_image_pixels (RAG_MAX_IMAGE_PIXELS, 120 million; an A3 page scanned
# at 600 dpi is about 70 million).
# OCR needs no more than this: larger images are scaled down first.
OCR_PIXELS = 16_000_000
MAX_FRAMES = 200

_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*")


class ImageReader(Reader):
    kind = "image"
    binary = True
    suffixes = (".png", ".jpg", ".jpeg", ".tif", ".tiff")

    def sniff(self, head: bytes, suffix: str) -> bool:
        return head.startswith(_SIGNATURES)

    def read(self, data: bytes, name: str, limits: IngestLimits | None = None) -> Pages:
        from PIL import Image

        from . import ocr

        limits = limits or IngestLimits()
        if not ocr.available(limits):
            raise Unreadable(f"图片中的文字需要 OCR 才能读取：{ocr.INSTALL_HINT}")
        try:
            with Image.open(io.BytesIO(data)) as image:  # reads the header only
                width, height = image.size
                if width * height > limits.max_image_pixels:
                    raise Unreadable(
                        f"图片过大（{width}×{height} 像素，上限 {limits.max_image_pixels // 1_000_000} 百万像素），"
                        "可能是解压炸弹，已跳过"
                    )
                frames = getattr(image, "n_frames", 1)
                if frames > MAX_FRAMES:
                    raise Unreadable(f"图片页数过多（{frames} 页，上限 {MAX_FRAMES} 页）")
                ocr.check_pages(frames, limits.max_ocr_pages)
                pages, printed = [], []
                for frame in range(frames):
                    image.seek(frame)
                    page = image.convert("L")
                    if page.width * page.height > OCR_PIXELS:
                        scale = (OCR_PIXELS / (page.width * page.height)) ** 0.5
                        page = page.resize((int(page.width * scale), int(page.height * scale)))
                    text, folio = ocr.image_page(page)
                    pages.append(text)
                    printed.append(folio)
        except Unreadable:
            raise
        except Image.DecompressionBombError as exc:
            raise Unreadable("图片过大，可能是解压炸弹，已跳过") from exc
        except (OSError, SyntaxError, ValueError) as exc:
            raise Unreadable(f"图片已损坏或不完整，无法解码（{exc}）") from exc
        return Pages(PAGE_BREAK.join(pages), len(pages), tuple(printed))
