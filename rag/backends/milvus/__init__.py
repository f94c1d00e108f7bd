"""The Milvus backend: the same library in Milvus Lite (a folder, in-process), a standalone server or a
cluster, chosen by `RAG_BACKEND` (see connection.py).

What runs where: the server stores every row and runs every search (dense vectors; the lexical
fields as sparse vectors or with its own BM25); this process tokenizes, fuses the legs, widens
passages and answers, as with the local backend. How commits stay atomic without transactions:
state.py. Module map: connection (URIs, errors), layout (collections), state (generations),
terms (our tokens as sparse vectors), vocab (document frequencies), lexical (the lexical leg),
snapshot (reading), writer (writing), lock (one writer), backend (the seam).
"""

from .backend import MilvusBackend

__all__ = ["MilvusBackend"]
