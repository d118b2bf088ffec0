"""Numba kernels that load Numba only when they first run compiled, and run as plain Python inside
``interpreted()``.

Importing Numba and loading a module's cached kernels costs about half a second: more than a small circuit
takes to solve. A function decorated with ``@njit(...)`` here (the options are numba.njit's) becomes a
:class:`Kernel`; calling it compiles it with Numba on first use, as ``numba.njit`` would, unless the call
happens inside ``with interpreted():``, where it runs its Python source instead (same arithmetic, no
``fastmath``). Kernels may call each other, compiled or interpreted alike.
"""

from __future__ import annotations

import contextvars
import functools
from contextlib import contextmanager

_INTERPRETED = contextvars.ContextVar("resnet_sim_interpreted_kernels", default=False)


class Kernel:
    """A function compiled by ``numba.njit(**options)`` on first compiled use; ``py_func`` is the function."""

    def __init__(self, func, options: dict):
        self.py_func = func
        self.options = options
        self._compiled = None
        functools.update_wrapper(self, func)

    @property
    def compiled(self):
        """The Numba dispatcher (imports Numba, loads or compiles the kernel on first access)."""
        if self._compiled is None:
            import numba

            _register_type()
            self._compiled = numba.njit(**self.options)(self.py_func)
        return self._compiled

    def __call__(self, *args):
        if _INTERPRETED.get():
            return self.py_func(*args)
        return self.compiled(*args)


def njit(**options):
    """Decorator: a :class:`Kernel` compiled with ``numba.njit(**options)`` when first run compiled."""
    return lambda func: Kernel(func, options)


@contextmanager
def interpreted(on: bool = True):
    """Within the block (if ``on``), kernels run as plain Python: no Numba import, no compilation."""
    token = _INTERPRETED.set(bool(on))
    try:
        yield
    finally:
        _INTERPRETED.reset(token)


@functools.lru_cache(maxsize=None)
def _register_type() -> None:
    """Let compiled kernels call other Kernels: Numba types a Kernel as its dispatcher."""
    from numba import typeof
    from numba.extending import typeof_impl

    typeof_impl.register(Kernel)(lambda val, c: typeof(val.compiled, c))
