"""Generation stage: produce every pending unit of a plan, this rank's share, resumably.

Per unit: remove temporary files of dead processes, stream the video into a temporary mp4 (renamed when
complete), hash it, then write the unit's manifest row last. A SIGKILL at any point leaves either a complete,
agreeing (video, row) pair or an incomplete unit that the next run regenerates (its temporary files are removed
when the next run starts); nothing else is touched. Ctrl-C and SIGTERM raise ``KeyboardInterrupt``: the writer
removes its temporary file, a video whose row was not written yet is removed, finished units stay, and the run
stops.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import logging
import os
import statistics
import time
from dataclasses import dataclass

from deepforcing.errors import UserError
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
        failed: Units whose generation failed on this rank (recorded in their ``failed.json``; retried next run).
        seconds: Wall time of this rank's generation.
    """

    planned: int = 0
    reused: int = 0
    generated: int = 0
    failed: int = 0
    seconds: float = 0.0


def pending_units(plan: WorkPlan, store: RunStore, dist: DistContext, force: bool) -> tuple[list[WorkItem], int]:
    """Units that still need a video (decided on rank 0, broadcast) and how many are reused."""
    units = plan.units(generated_only=True)  # imported videos are never generated
    if dist.is_main:
        pending = []
        for u in units:
            check = store.inspect(u.unit)
            if check.state == "invalid":  # say why; nothing of another unit is touched
                log.warning("unit %s (%s %s s%d): %s; generating it again", u.unit.key, u.method, u.prompt.prompt_id,
                            u.seed, check.reason)  # fmt: skip
            elif check.state == "failed":
                log.info("unit %s: the last run's %s; trying again", u.unit.key, check.reason)
            if force or check.row is None:
                pending.append(u)
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
    compile: bool = False,
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
        compile: Compile each generator's DiT (:func:`deepforcing.model.compiled.compile_model`; the videos
            match eager ones within the parity bar, so units and their hashes are the same).

    Returns:
        Counts and wall time.
    """
    progress = progress or Progress()
    t0 = time.perf_counter()
    pending, reused = pending_units(plan, store, dist, force)
    report = GenerateReport(planned=len(plan.units(generated_only=True)), reused=reused)
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
    if dist.is_main and store.units_dir.is_dir():  # temporary files of killed runs, also of units not planned now
        for folder in sorted(store.units_dir.iterdir()):
            store.clean_stale_tmp(folder.name)
    progress.stage("generating", len(mine))
    generator = None
    current = None
    try:
        for item in mine:
            if item.method != current:
                generator = _load_generator(plan, item, device, weights_dir, generator)
                if compile:
                    generator.compile()
                current = item.method
            num_chunks = item.unit.num_latent_frames // item.method_config.sampler_config.chunk_frames
            progress.unit(f"{item.method} {item.prompt.prompt_id} s{item.seed}", num_chunks)
            try:
                with _unit_in_flight(store, item.unit.key):
                    _generate_one(plan, store, dist, generator, item, device, progress)
                report.generated += 1
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:  # one unit's failure is counted and shown; the other units go on
                reason = f"{type(exc).__name__}: {exc}" if not isinstance(exc, UserError) else str(exc)
                log.error("unit %s (%s %s s%d) failed: %s", item.unit.key, item.method, item.prompt.prompt_id,
                          item.seed, reason)  # fmt: skip
                log.debug("traceback of unit %s", item.unit.key, exc_info=True)
                store.write_failure(
                    item.unit.key, "generate", reason, method=item.method, prompt_id=item.prompt.prompt_id,
                    seed=item.seed, at=now(),
                )  # fmt: skip
                report.failed += 1
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


@contextlib.contextmanager
def _unit_in_flight(store: RunStore, key: str):
    """On an interrupt or error, remove a video this unit wrote but did not record (a partial unit).

    A video that was there before (``--force`` regenerating it) is kept unless it was replaced.
    """
    video = store.video_path(key)

    def identity():
        try:
            st = video.stat()
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size

    before = identity()
    try:
        yield
    except BaseException:
        after = identity()
        if after is not None and after != before and not store.record_path(key).is_file():
            video.unlink(missing_ok=True)
        raise


def _load_generator(plan: WorkPlan, item: WorkItem, device: str, weights_dir, previous):
    """A VideoGenerator for the item's resolved method, reusing the text encoder and VAE of the previous one.

    Raises:
        RuntimeError: The generator would run another config than the plan's (a model kind whose
            ``resolve_method`` is not idempotent): the unit's hash would not describe its video.
    """
    from deepforcing.pipeline import VideoGenerator

    generator = VideoGenerator(
        plan.suite.model,
        item.method_config,
        device=device,
        dtype=_dtype(plan.dtype),
        weights_dir=weights_dir,
        share_from=previous,
    )
    if generator.method.config_hash != item.unit.method_config_hash:
        raise RuntimeError(
            f"{item.method}: the generator runs config {generator.method.config_hash}, the plan says "
            f"{item.unit.method_config_hash}; {plan.suite.model}'s resolve_method must be idempotent"
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
        "method_config": {"config_hash": item.unit.method_config_hash, **item.method_config.to_dict()},
        "weights": plan.weights[item.method].files if plan.weights else {},
        "prompt": {"prompt_id": item.prompt.prompt_id, "text": item.prompt.text, "origin": item.prompt.origin},
        "segments": (result.prompts or {}).get("segments", []),
        "switch_frames": (result.prompts or {}).get("switch_frames", []),
        "prompt_truncated": result.prompt_truncated,
        "prompt_tokens": result.prompt_tokens.to_dict() if result.prompt_tokens else None,
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
        "compiled": generator.compiled,
        "rank": dist.rank,
        "world_size": dist.world_size,
        "started_at": started,
        "finished_at": now(),
        "git": git_info(),
        "versions": versions(),
    }
    store.write_record(key, row)
    log.debug("unit %s done: %s %s seed %d (%.1f s)", key, item.method, item.prompt.prompt_id, item.seed, wall)
