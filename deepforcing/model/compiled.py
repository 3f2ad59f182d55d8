"""The optional compiled DiT path (``generate --compile``): ``torch.compile`` of every block's dense regions.

A block runs in three parts (``CausalWanBlock.forward``): the dense region before attention (modulation,
LayerNorm, q/k/v projections, RMS norms), RoPE plus the KV-cache write (eager: complex arithmetic and the
policies' Python bookkeeping), and the dense region after it (self-attention, output projection, gated residual,
text cross-attention, FFN). The two dense regions are compiled with static shapes; self-attention then reads the
cache as whole preallocated buffers ``[B, S, H, D]`` with a bool slot mask, so its shapes never change while the
cache fills, rolls or is compressed (one graph per chunk layout, shared by all blocks). On CUDA the regions run as
CUDA graphs (``mode="reduce-overhead"``), with the cache buffers marked as static addresses. Calls without a cache
(training, teacher passes) stay eager.

Numerics: inductor fuses the elementwise work and may reorder float operations (LayerNorm, RMS norm, GELU), and
masked attention over the whole buffer sums in a different order; the parity fixtures stay within 1e-4
(``tests/test_compiled.py``). RoPE, the cache and the samplers are the eager code, unchanged.

Requirements: on CPU a C++ compiler and the Python headers for inductor's kernels (they are C++ with Python
bindings): on a fresh Debian/Ubuntu machine ``apt-get install g++ python3-dev`` (pyenv/conda Pythons ship their own
headers; another compiler via ``CXX``). On CUDA, Triton (bundled with PyTorch's CUDA wheels). Where compilation is
unavailable, :func:`compile_model` logs one line and the model stays eager (the same results as without
``--compile``); a compilation that fails later, at a new shape, falls back the same way.
"""

from __future__ import annotations

import logging

import torch

from deepforcing.model.wan import CausalWanModel

log = logging.getLogger(__name__)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")


def unavailable_reason(device: torch.device | str) -> str | None:
    """Why compiled code cannot run on ``device`` (one line), or None: compiles and runs a tiny function."""
    if not hasattr(torch, "compile"):
        return f"torch {torch.__version__} has no torch.compile"
    try:
        fn = torch.compile(lambda x: torch.sin(x) * 2 + 1, dynamic=False, fullgraph=True)
        x = torch.linspace(0, 1, 8, device=device)
        if not torch.allclose(fn(x), torch.sin(x) * 2 + 1):
            return "a compiled test function gave wrong numbers"
    except Exception as err:  # no C++ compiler / Triton, unsupported platform, …
        return _first_line(err)
    return None


class _State:
    """Shared by every region of one model: whether compiled code is still in use."""

    def __init__(self) -> None:
        self.enabled = True


class _Region:
    """A compiled function that falls back to its eager twin (for good, with one log line) if compiling fails."""

    def __init__(self, eager, compiled, state: _State, static_inputs: tuple[int, ...] = ()):
        self.eager = eager
        self.compiled = compiled
        self.state = state
        self.static_inputs = static_inputs  # argument positions whose tensors are marked as static addresses
        self._marked: set[int] = set()

    def __call__(self, *args):
        if self.state.enabled:
            for i in self.static_inputs:
                if args[i].data_ptr() not in self._marked:
                    torch._dynamo.mark_static_address(args[i])
                    self._marked.add(args[i].data_ptr())
            try:
                return self.compiled(*args)
            except Exception as err:
                if not type(err).__module__.startswith(("torch._dynamo", "torch._inductor", "triton")):
                    raise
                self.state.enabled = False
                log.warning("compiled DiT unavailable (%s): running eager from here on", _first_line(err))
        return self.eager(*args)


def compile_model(model: CausalWanModel, cuda_graphs: bool | None = None) -> bool:
    """Switch every block of ``model`` to its compiled regions (in place).

    Args:
        model: The DiT, already on its device and dtype.
        cuda_graphs: Run the regions as CUDA graphs; default: on CUDA devices.

    Returns:
        Whether the compiled path is in use (False: unavailable, logged once, the model stays eager).
    """
    reason = unavailable_reason(model.device)
    if reason is not None:
        log.warning("--compile: compiled DiT unavailable on %s (%s); running eager", model.device, reason)
        return False
    if cuda_graphs is None:
        cuda_graphs = model.device.type == "cuda"
    mode = "reduce-overhead" if cuda_graphs else None
    # One graph per region and chunk layout, shared by all blocks; rolling windows bring a few layouts each.
    torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
    state = _State()
    for block in model.blocks:
        pre = torch.compile(block.pre_attention, dynamic=False, fullgraph=True, mode=mode)
        post = torch.compile(block.post_attention, dynamic=False, fullgraph=True, mode=mode)
        # post_attention(x, q, k, v, mask, …): the cache buffers k (2) and v (3) keep their addresses
        block.compiled = (
            _Region(block.pre_attention, pre, state),
            _Region(block.post_attention, post, state, static_inputs=(2, 3) if cuda_graphs else ()),
        )
    if cuda_graphs:
        eager_forward = model.forward

        def forward(*args, **kwargs):
            torch.compiler.cudagraph_mark_step_begin()  # a new DiT call: earlier graph outputs may be reused
            return eager_forward(*args, **kwargs)

        model.forward = forward
    log.info("compiled DiT: %d blocks, %s", len(model.blocks), "CUDA graphs" if cuda_graphs else "inductor")
    return True


def uncompile_model(model: CausalWanModel) -> None:
    """Back to the eager blocks (and forward)."""
    for block in model.blocks:
        block.compiled = None
    model.__dict__.pop("forward", None)
