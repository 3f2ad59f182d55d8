"""Generation stage: produce every pending unit of a plan, this rank's share, resumably.

Per unit: remove temporary files of dead processes, stream the video into a temporary mp4 (renamed when
complete), hash it, then write the unit's manifest row last. A SIGKILL at any point leaves either a complete,
agreeing (video, row) pair or an incomplete unit that the next run regenerates; nothing else is touched.
Ctrl-C (and SIGTERM) raise ``KeyboardInterrupt``: the writer removes its temporary file and the run stops.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import os
import statistics
import time
from dataclasses import dataclass

from deepforcing.harness.distributed import DistContext
from deepforcing.harness.plan import WorkItem, WorkPlan, pixel_frames
from deepforcing.harness.progress import Progress
from deepforcing.harness.provenance import device_info, git_info, now, versions
from deepforcing.harness.store import RunStore, sha256_file

log = logging.getLogger(__name__)


@dataclass
class GenerateReport:
    """What the generation stage did on this rank.

    Attributes:
        planned: Distinct units in the plan.
        reused: Units already done before this run (counted on rank 0).
        generated: Units this rank generated.
        seconds: Wall time of this rank's generation.
    """

    planned: int = 0
    reused: int = 0
    generated: int = 0
    seconds: float = 0.0


def pending_units(plan: WorkPlan, store: RunStore, dist: DistContext, force: bool) -> tuple[list[WorkItem], int]:
    """Units that still need a video (decided on rank 0, broadcast) and how many are reused."""
    units = plan.units()
    if dist.is_main:
        pending = [u for u in units if force or store.done_record(u.unit) is None]
        payload = ([u.unit.key for u in pending], len(units) - len(pending))
    else:
        payload = None
    keys, reused = dist.broadcast(payload)
    wanted = set(keys)
    return [u for u in units if u.unit.key in wanted], reused


def _dtype(name: str):
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def generate_units(
    plan: WorkPlan,
    store: RunStore,
    dist: DistContext,
    *,
    device: str,
    weights_dir: str | os.PathLike | None = None,
    force: bool = False,
    progress: Progress | None = None,
) -> GenerateReport:
    """Generate this rank's share of the pending units.

    Args:
        plan: The work plan (with resolved weights).
        store: The run store.
        dist: Process group context.
        device: This rank's device.
        weights_dir: Extra weights directory for the registry.
        force: Regenerate units that are already done.
        progress: Progress sink.

    Returns:
        Counts and wall time.
    """
    from deepforcing import methods

    progress = progress or Progress()
    t0 = time.perf_counter()
    pending, reused = pending_units(plan, store, dist, force)
    report = GenerateReport(planned=len(plan.units()), reused=reused)
    mine = dist.shard(pending)
    order = {m: i for i, m in enumerate(plan.suite.methods)}
    mine.sort(key=lambda it: order[it.method])  # stable: one model load per method
    if dist.is_main:
        log.info(
            "generation: %d units planned, %d already done, %d to generate%s",
            report.planned,
            reused,
            len(pending),
            f" ({len(mine)} on rank 0 of {dist.world_size})" if dist.world_size > 1 else "",
        )
    progress.stage("generating", len(mine))
    generator = None
    current = None
    try:
        for item in mine:
            if item.method != current:
                generator = _load_generator(plan, item.method, device, weights_dir, generator)
                current = item.method
            method = methods.get(item.method)
            num_chunks = item.unit.num_latent_frames // method.sampler_config.chunk_frames
            progress.unit(f"{item.method} {item.prompt.prompt_id} s{item.seed}", num_chunks)
            _generate_one(plan, store, dist, generator, item, device, progress)
            report.generated += 1
            progress.advance()
    except KeyboardInterrupt:
        log.warning(
            "interrupted: %d of this rank's %d units were finished; re-run the same command to resume",
            report.generated,
            len(mine),
        )
        raise
    report.seconds = time.perf_counter() - t0
    return report


def _load_generator(plan: WorkPlan, method: str, device: str, weights_dir, previous):
    """A VideoGenerator for ``method``, reusing the text encoder and VAE of the previous one."""
    from deepforcing.pipeline import create_generator

    generator = create_generator(
        plan.suite.model, method, device=device, dtype=_dtype(plan.dtype), weights_dir=weights_dir, share_from=previous
    )
    del previous
    gc.collect()
    return generator


def _generate_one(plan, store: RunStore, dist: DistContext, generator, item: WorkItem, device: str, progress) -> None:
    key = item.unit.key
    store.clean_stale_tmp(key)
    try:
        store.record_path(key).unlink()  # --force, or a row that did not agree with its video
    except FileNotFoundError:
        pass
    video = store.video_path(key)
    started = now()
    t0 = time.perf_counter()
    result = generator.generate(
        item.prompt.text if item.prompt.schedule is None else "",
        num_latent_frames=item.unit.num_latent_frames,
        seed=item.seed,
        prompt_id=item.prompt.prompt_id,
        output=video,
        on_chunk=lambda i, n: progress.chunk(i + 1, n),
        schedule=item.prompt.schedule,
    )
    wall = time.perf_counter() - t0
    chunks = result.chunk_seconds
    steady = chunks[1:] or chunks
    row = {
        "unit_key": key,
        "unit": dataclasses.asdict(item.unit),
        "method": item.method,
        "method_config": {"config_hash": generator.method.config_hash, **generator.method.to_dict()},
        "weights": plan.weights[item.method].files if plan.weights else {},
        "prompt": {"prompt_id": item.prompt.prompt_id, "text": item.prompt.text, "origin": item.prompt.origin},
        "segments": (result.prompts or {}).get("segments", []),
        "switch_frames": (result.prompts or {}).get("switch_frames", []),
        "video": "video.mp4",
        "video_sha256": sha256_file(video),
        "video_bytes": video.stat().st_size,
        "num_latent_frames": item.unit.num_latent_frames,
        "num_pixel_frames": pixel_frames(item.unit.num_latent_frames, plan.suite.model),
        "timings": {
            "fps": result.fps,
            "sampling_seconds": result.sampling_seconds,
            "decode_seconds": result.decode_seconds,
            "wall_seconds": wall,
            "chunk_seconds": chunks,
            "chunk_latency_ms_mean": 1000 * statistics.fmean(steady),
            "chunk_latency_ms_min": 1000 * min(steady),
            "chunk_latency_ms_max": 1000 * max(steady),
            "peak_memory_bytes": result.peak_memory_bytes,
            "kv_cache_bytes": result.kv_cache_bytes,
        },
        "attended_frames": result.attended_frames,
        "device": device_info(device),
        "dtype": plan.dtype,
        "rank": dist.rank,
        "world_size": dist.world_size,
        "started_at": started,
        "finished_at": now(),
        "git": git_info(),
        "versions": versions(),
    }
    store.write_record(key, row)
    log.debug("unit %s done: %s %s seed %d (%.1f s)", key, item.method, item.prompt.prompt_id, item.seed, wall)
