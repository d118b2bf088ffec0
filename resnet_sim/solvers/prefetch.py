"""A software prefetch for Numba kernels: ``prefetch(a, i)`` asks the CPU to bring the cache line holding
a[i] (a 1-D array) towards L1 and returns nothing; ``prefetch_row(a, start, length)`` does so for every
64-byte line of a[start:start + length] (a row of a C-order (n, B) array seen flat). It is a hint (LLVM's ``llvm.prefetch``, read, high
locality): it never faults, so i may point past the end of a, and it changes no result, only timing.

Its code is inlined into the kernels that call it (cd's, cached on disk by Numba): Numba's cache does
not notice a change to this file, so after editing it delete resnet_sim/solvers/__pycache__."""

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def prefetch(typingctx, array, index):
    """Prefetch the line of array[index] (1-D array, integer index; no bounds check, no effect on values)."""
    if not (isinstance(array, types.Array) and array.ndim == 1 and isinstance(index, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        byte_ptr = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        hint = ir.FunctionType(ir.VoidType(), [byte_ptr, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, hint, "llvm.prefetch.p0")
        # read (0), high temporal locality (3), data cache (1)
        builder.call(fn, [builder.bitcast(builder.gep(data, [args[1]]), byte_ptr), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(array, index), codegen


@njit(cache=True, inline="always")
def prefetch_row(array, start, length):
    """Prefetch a[start:start + length] of a 1-D array of 8-byte elements (float64, int64): one hint per 8
    elements (a 64-byte line) and one for the last element, so a row that straddles a line boundary is
    covered."""
    for offset in range(0, length, 8):
        prefetch(array, start + offset)
    prefetch(array, start + length - 1)
