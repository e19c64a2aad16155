"""A minimal ctypes binding to libnftables, speaking nft's JSON.

Why our own: the official Python binding (Debian's python3-nftables) is not on PyPI, so a
virtualenv cannot see it; the C library is all we need. One `Nft` holds one nft context and
runs in the calling process's network namespace. Calls block (a netlink round trip per
batch), so async code runs them in a thread; a lock keeps one call at a time per context.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import threading
from typing import Any

NFT_CTX_DEFAULT = 0
NFT_CTX_OUTPUT_HANDLE = 1 << 3  # libnftables/libnftables.h: nft_ctx_output_flags
NFT_CTX_OUTPUT_JSON = 1 << 4
LIBRARY = "libnftables.so.1"


class NftError(Exception):
    """nft refused a command; the message is nft's own error text."""


_lib: ctypes.CDLL | None = None
_lib_lock = threading.Lock()


def _load() -> ctypes.CDLL:
    global _lib
    with _lib_lock:
        if _lib is not None:
            return _lib
        try:
            lib = ctypes.CDLL(ctypes.util.find_library("nftables") or LIBRARY)
        except OSError as e:
            raise NftError(f"cannot load {LIBRARY} (install libnftables1): {e}") from e
        lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_free.restype = None
        lib.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
        lib.nft_ctx_output_set_flags.restype = None
        lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_buffer_output.restype = ctypes.c_int
        lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_buffer_error.restype = ctypes.c_int
        lib.nft_ctx_get_output_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_output_buffer.restype = ctypes.c_char_p
        lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
        lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
        _lib = lib
        return lib


class Nft:
    """One libnftables context with JSON output and buffered output and errors."""

    def __init__(self) -> None:
        self._lib = _load()
        ctx = self._lib.nft_ctx_new(NFT_CTX_DEFAULT)
        if not ctx:
            raise NftError("nft_ctx_new failed")
        self._ctx: int | None = ctx
        self._lock = threading.Lock()
        # JSON output also makes nft_run_cmd_from_buffer parse its input as JSON (nft 1.0.x)
        self._lib.nft_ctx_output_set_flags(ctx, NFT_CTX_OUTPUT_JSON | NFT_CTX_OUTPUT_HANDLE)
        if self._lib.nft_ctx_buffer_output(ctx) or self._lib.nft_ctx_buffer_error(ctx):
            self.close()
            raise NftError("cannot buffer nft output")

    def json(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Run `{"nftables": [...]}` as one batch (one transaction); return nft's JSON reply."""
        text = self.run(json.dumps(cmd))
        if not text.strip():
            return {}
        try:
            out = json.loads(text)
        except ValueError as e:
            raise NftError(f"nft returned output that is not JSON: {text[:200]!r}") from e
        return out if isinstance(out, dict) else {}

    def run(self, text: str) -> str:
        """Run a command buffer (JSON or nft syntax); return the output buffer."""
        with self._lock:
            if self._ctx is None:
                raise NftError("nft context is closed")
            rc = self._lib.nft_run_cmd_from_buffer(self._ctx, text.encode())
            out = (self._lib.nft_ctx_get_output_buffer(self._ctx) or b"").decode(errors="replace")
            err = (self._lib.nft_ctx_get_error_buffer(self._ctx) or b"").decode(errors="replace")
        if rc != 0:
            raise NftError(_first_error(err) or f"nft failed (rc {rc})")
        return out

    def close(self) -> None:
        with self._lock:
            if self._ctx is not None:
                self._lib.nft_ctx_free(self._ctx)
                self._ctx = None

    def __enter__(self) -> Nft:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _first_error(err: str) -> str:
    """nft's error text without the echo of a (possibly huge) JSON input line."""
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    keep = [ln for ln in lines if not ln.lstrip().startswith(("{", "^"))]
    return "; ".join(keep or lines)[:2000]
