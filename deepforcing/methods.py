"""Named methods: sampler + cache policy + checkpoint + hyper-parameters, read from ``baselines/methods``.

A resolved method is a frozen dataclass that serialises to JSON and hashes to a short id; that id is part of
every generation unit's key.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from deepforcing import policies, samplers
from deepforcing.configs import config_hash, to_dict
from deepforcing.errors import UserError
from deepforcing.paths import baselines_dir


@dataclass(frozen=True)
class MethodConfig:
    """One way of generating a long video with the shared engine.

    Attributes:
        name: Registry name.
        sampler: ``chunkwise`` (Self-Forcing loop) or ``rolling`` (Rolling Forcing windows).
        sampler_config: The sampler's settings.
        policy: Cache policy registry name.
        policy_config: The policy's frozen config.
        checkpoint: Weights-registry key of the generator checkpoint for the real model.
        description: One line for listings.
        source: Where the settings come from (paper section / released config).
        switch: Default prompt-switch mode of a multi-prompt video (``deepforcing.samplers.switching``); not part
            of the config hash (a unit records the mode it ran with). ``<name>+<mode>`` names the same method with
            another mode (``infinity-rope+cut``).
    """

    name: str
    sampler: str
    sampler_config: Any
    policy: str
    policy_config: Any
    checkpoint: str
    description: str = ""
    source: str = ""
    switch: str = "keep"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the policy config is tagged with its policy name)."""
        return to_dict(self)

    @property
    def config_hash(self) -> str:
        """Short content hash of everything that can change the generated latents."""
        return config_hash(
            _HashView(self.sampler, self.sampler_config, policies.hash_name(self.policy), self.policy_config)
        )

    def with_overrides(self, knobs: dict[str, Any] | None = None, /, **kwargs: Any) -> MethodConfig:
        """A derived method with some settings changed; its name shows the change, its hash follows the config.

        ``get("deep-forcing-ds").with_overrides(sink_frames=14)`` is ``deep-forcing-ds+sink_frames=14``. A knob
        is a field of the sampler or policy config (it must name exactly one of them), a dotted path
        (``policy_config.sink_frames``, ``sampler_config.denoising_steps``) or ``checkpoint``.

        Raises:
            UserError: An unknown or ambiguous knob, or a value the config rejects.
        """
        knobs = {**(knobs or {}), **kwargs}
        if not knobs:
            return self
        sampler_cfg, policy_cfg, checkpoint = {}, {}, self.checkpoint
        sampler_fields = {f.name for f in dataclasses.fields(self.sampler_config)}
        policy_fields = {f.name for f in dataclasses.fields(self.policy_config)}
        for knob, value in knobs.items():
            head, _, field = knob.rpartition(".")
            in_sampler, in_policy = field in sampler_fields, field in policy_fields
            value = tuple(value) if isinstance(value, list) else value
            if knob == "checkpoint":
                checkpoint = value
            elif in_sampler and (head == "sampler_config" or (head == "" and not in_policy)):
                sampler_cfg[field] = value
            elif in_policy and (head == "policy_config" or (head == "" and not in_sampler)):
                policy_cfg[field] = value
            else:
                what = (
                    "is in both the sampler and the policy config: prefix it"
                    if head == "" and in_sampler and in_policy
                    else "is not a setting of this method"
                )
                raise UserError(
                    f"method {self.name}: knob '{knob}' {what}",
                    f"sampler_config: {', '.join(sorted(sampler_fields))}; "
                    f"policy_config: {', '.join(sorted(policy_fields))}; or checkpoint",
                )
        try:
            derived = dataclasses.replace(
                self,
                sampler_config=dataclasses.replace(self.sampler_config, **sampler_cfg),
                policy_config=dataclasses.replace(self.policy_config, **policy_cfg),
                checkpoint=checkpoint,
            )
        except (TypeError, ValueError) as exc:
            raise UserError(f"method {self.name}: invalid override ({exc})") from exc
        suffix = "".join(f"+{k}={_show(v)}" for k, v in knobs.items())
        return dataclasses.replace(
            derived,
            name=self.name + suffix,
            description=f"{self.name} with {', '.join(f'{k}={_show(v)}' for k, v in knobs.items())}",
        )


def _show(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ",".join(map(str, value))
    return str(value)


@dataclass(frozen=True)
class _HashView:
    sampler: str
    sampler_config: Any
    policy: str
    policy_config: Any


def _set(data: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """Copy of ``data`` with ``a.b`` set to value."""
    head, _, rest = dotted.partition(".")
    out = dict(data)
    out[head] = _set(dict(data.get(head) or {}), rest, value) if rest else value
    return out


def _build(data: dict[str, Any], origin: str) -> MethodConfig:
    """A MethodConfig from a preset dict; errors name the file and the bad field."""
    known = {
        "name",
        "description",
        "source",
        "checkpoint",
        "sampler",
        "sampler_config",
        "policy",
        "policy_config",
        "switch",
    }
    unknown = set(data) - known
    if unknown:
        raise UserError(f"{origin}: unknown field(s) {sorted(unknown)}", f"valid fields: {sorted(known)}")
    sampler = data.get("sampler", "chunkwise")
    if sampler not in samplers.available():
        raise UserError(f"{origin}: unknown sampler '{sampler}'", f"choose one of: {', '.join(samplers.available())}")
    moved = policies.MOVED.get(data.get("policy"))
    if moved and set(data.get("policy_config") or {}) & moved[1]:
        raise UserError(
            f"{origin}: policy '{data['policy']}' is another method now; these settings are those of "
            f"'{moved[0]}' (Rolling Forcing's sink, renamed when Rolling Sink arrived)",
            f"write `policy: {moved[0]}` in this preset (its hash, and every result made with it, stay the same)",
        )
    try:
        sampler_cfg = dict(data.get("sampler_config") or {})
        if "denoising_steps" in sampler_cfg:
            sampler_cfg["denoising_steps"] = tuple(sampler_cfg["denoising_steps"])
        policy_cls = policies.config_class(data["policy"])
        return MethodConfig(
            name=data["name"],
            sampler=sampler,
            sampler_config=samplers.config_class(sampler)(**sampler_cfg),
            policy=data["policy"],
            policy_config=policy_cls(**(data.get("policy_config") or {})),
            checkpoint=data.get("checkpoint", "self-forcing-dmd"),
            description=data.get("description", ""),
            source=data.get("source", ""),
            switch=_check_switch(data.get("switch", "keep"), data["policy"], origin),
        )
    except (TypeError, ValueError, KeyError) as exc:
        raise UserError(f"{origin}: invalid method preset ({exc})") from exc


def _check_switch(mode: str, policy: str, origin: str) -> str:
    """A switch mode the method's policy defines (UserError naming the ones it does otherwise)."""
    from deepforcing.prompt_schedule import SWITCH_MODES

    if mode not in SWITCH_MODES:
        raise UserError(f"{origin}: unknown switch mode '{mode}'", f"choose one of: {', '.join(SWITCH_MODES)}")
    modes = policies.switch_modes(policy)
    if mode not in modes:
        raise UserError(
            f"{origin}: switch mode '{mode}' is not defined for cache policy '{policy}'",
            f"it defines: {', '.join(modes)} (see docs/methods.md, Prompt switching)",
        )
    return mode


@functools.cache
def _registry() -> dict[str, MethodConfig]:
    """Every method preset in ``baselines/methods/*.yaml`` plus the expanded ablation grids."""
    folder = baselines_dir() / "methods"
    if not folder.is_dir():
        raise UserError(f"method presets not found in {folder}", "run from a checkout or set DEEPFORCING_HOME")
    raw: dict[str, dict[str, Any]] = {}
    grids: list[tuple[str, dict[str, Any]]] = []
    for path in sorted(folder.glob("*.yaml")):
        data = yaml.safe_load(path.read_text()) or {}
        if "grids" in data:
            grids += [(f"{path.name} grid {i}", g) for i, g in enumerate(data["grids"])]
            continue
        if data.get("name") in raw:
            raise UserError(f"{path.name}: duplicate method name '{data['name']}'")
        raw[data.get("name", path.stem)] = {**data, "name": data.get("name", path.stem), "_origin": path.name}
    for origin, grid in grids:
        base = raw.get(grid["base"])
        if base is None:
            raise UserError(f"{origin}: unknown base method '{grid['base']}'")
        for value in grid["values"]:
            name = grid["name"].format(value=value)
            variant = _set(base, grid["knob"], value)
            raw[name] = {
                **variant,
                "name": name,
                "description": f"{base['name']} with {grid['knob']}={value}",
                "_origin": origin,
            }
    return {
        name: _build({k: v for k, v in data.items() if k != "_origin"}, data["_origin"]) for name, data in raw.items()
    }


def available() -> list[str]:
    """Registered method names."""
    return sorted(_registry())


#: Base checkpoints of the Self-Forcing family (chunk-wise 4-step DMD on causal Wan2.1-1.3B): any of them can run a
#: chunk-wise preset (``<name>@<key>``), as Rolling Sink's and Infinity-RoPE's scripts offer Causal Forcing.
SELF_FORCING_FAMILY = ("self-forcing-dmd", "infinite-forcing-ema", "causal-forcing")


def _with_weights(method: MethodConfig, key: str, name: str) -> MethodConfig:
    """``method`` run from another base checkpoint of the Self-Forcing family."""
    if method.sampler != "chunkwise" or method.checkpoint not in SELF_FORCING_FAMILY:
        raise UserError(
            f"method '{name}': '{method.name}' runs its own checkpoint ({method.checkpoint}) with the {method.sampler} "
            "sampler; other base weights apply to Self-Forcing-family presets only"
        )
    if key not in SELF_FORCING_FAMILY:
        raise UserError(
            f"method '{name}': '{key}' is not a Self-Forcing-family generator checkpoint",
            f"choose one of: {', '.join(SELF_FORCING_FAMILY)}",
        )
    return dataclasses.replace(method, name=name, checkpoint=key)


def load_preset(path: str | Path) -> MethodConfig:
    """A method from a preset YAML file anywhere (same schema as ``baselines/methods/*.yaml``).

    Raises:
        UserError: The file is missing, not YAML, or not a valid preset (naming the field).
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise UserError(f"cannot read method preset {path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise UserError(f"method preset {path} is not valid YAML ({exc})") from exc
    if not isinstance(data, dict) or "grids" in data:
        raise UserError(f"{path} is not a single method preset (a mapping with name, policy, ...)")
    return _build({**data, "name": data.get("name", path.stem)}, str(path))


def resolve(method: str | Path | MethodConfig) -> MethodConfig:
    """A method from a registered name, a preset YAML path, or a config (returned as is)."""
    if isinstance(method, MethodConfig):
        return method
    text = str(method)
    if text.endswith((".yaml", ".yml")) and text not in _registry():
        return load_preset(text)
    return get(text)


def get(name: str) -> MethodConfig:
    """Resolve a method name (also ``<name>+<switch mode>`` and ``<name>@<checkpoint key>``).

    ``<name>+<mode>`` is the method with that prompt-switch mode (``infinity-rope+cut``); ``<name>@<key>`` the
    method on another Self-Forcing-family base checkpoint (``self-forcing@causal-forcing``).

    Raises:
        UserError: Unknown name (with a close match and the list of choices), or a switch mode the method's
            policy does not define.
    """
    base, plus, mode = name.rpartition("+")
    if plus and "=" not in mode:  # "+knob=value" is a with_overrides name, not a switch mode
        method = get(base)
        return dataclasses.replace(method, name=name, switch=_check_switch(mode, method.policy, f"method '{name}'"))
    base, at, key = name.rpartition("@")
    if at:
        return _with_weights(get(base), key, name)
    if name not in _registry():
        close = difflib.get_close_matches(name, available(), n=1)
        hint = (f"did you mean '{close[0]}'? " if close else "") + f"choose one of: {', '.join(available())}"
        raise UserError(f"unknown method '{name}'", hint)
    return _registry()[name]


def build_policy(method: MethodConfig):
    """Instantiate the method's cache policy."""
    return policies.build(method.policy, method.policy_config)


def build_sampler(method: MethodConfig):
    """Instantiate the method's sampler."""
    return samplers.build(method.sampler, method.sampler_config)
