"""Arrow string arrays from fixed-width byte matrices: text built a whole column at a time with numpy,
where pyarrow's own kernels go value by value (timestamps to text) or have none (digests to hex)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def from_matrix(text: np.ndarray) -> pa.StringArray:
    """A string array whose row ``i`` is the bytes of ``text[i]`` (an ``(n, width)`` uint8 matrix of ASCII)."""
    n, width = text.shape
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    data = np.ascontiguousarray(text)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
