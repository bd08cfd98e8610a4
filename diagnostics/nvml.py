"""The single seam over NVML: a real backend (nvidia-ml-py, imported lazily) and a replay backend.

Why one seam: every NVML call goes through :meth:`Nvml.query`, which initialises lazily and maps
any NVML error to an :class:`Answer` with ``value=None`` and the error's name (``NotSupported``,
``NoPermission``, ``GpuIsLost``, ``FunctionNotFound``...).  A lost GPU or an unsupported field is
one ``None``, never a crashed probe.  The probe never knows which backend it has: the replay
backend answers from a recording made on a real GPU host by ``python -m diagnostics.record``.

Calls are named after nvidia-ml-py's functions; arguments are the device index (not a handle, so
recordings replay anywhere) and symbolic names for enums (``"SM"``, ``"UNCORRECTED"``), so a
recording reads like the call it answers.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

JSONValue = Any


class NvmlCallError(Exception):
    """An NVML call answered an error; ``name`` is NVML's (``NotSupported``, ``GpuIsLost``, ...)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


@dataclass(frozen=True)
class Answer:
    """One NVML answer: a value, or None and the error's name."""

    value: JSONValue
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class Backend(Protocol):
    def init(self) -> None: ...

    def call(self, name: str, *args: JSONValue) -> JSONValue: ...

    def shutdown(self) -> None: ...


def error_name(exc: BaseException) -> str:
    """``NVMLError_NotSupported`` -> ``NotSupported``; other exceptions keep their class name."""
    cls = type(exc).__name__
    if cls.startswith("NVMLError_"):
        return cls[len("NVMLError_"):]
    if cls == "NVMLError":
        return f"NVMLError({getattr(exc, 'value', '?')})"
    if isinstance(exc, NvmlCallError):
        return exc.name
    return cls


class Nvml:
    """The seam: lazy init, every call mapped to an :class:`Answer`, shutdown on close."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._state: str | None = None  # None: not tried; "ok"; otherwise the init error's name

    @property
    def init_error(self) -> str | None:
        self._ensure_init()
        return None if self._state == "ok" else self._state

    def _ensure_init(self) -> None:
        if self._state is not None:
            return
        try:
            self._backend.init()
            self._state = "ok"
        except Exception as exc:
            self._state = error_name(exc)

    def query(self, name: str, *args: JSONValue) -> Answer:
        self._ensure_init()
        if self._state != "ok":
            return Answer(None, self._state)
        try:
            return Answer(self._backend.call(name, *args))
        except Exception as exc:
            return Answer(None, error_name(exc))

    def close(self) -> None:
        if self._state == "ok":
            with contextlib.suppress(Exception):
                self._backend.shutdown()
        self._state = None

    def __enter__(self) -> Nvml:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------------- real backend

_ENUMS: dict[str, str] = {
    # symbolic argument -> pynvml constant name
    "GRAPHICS": "NVML_CLOCK_GRAPHICS",
    "SM": "NVML_CLOCK_SM",
    "MEM": "NVML_CLOCK_MEM",
    "GPU": "NVML_TEMPERATURE_GPU",
    "CORRECTED": "NVML_MEMORY_ERROR_TYPE_CORRECTED",
    "UNCORRECTED": "NVML_MEMORY_ERROR_TYPE_UNCORRECTED",
    "VOLATILE": "NVML_VOLATILE_ECC",
    "AGGREGATE": "NVML_AGGREGATE_ECC",
    "NVLINK": "NVML_P2P_CAPS_INDEX_NVLINK",
    "READ": "NVML_P2P_CAPS_INDEX_READ",
    "SBE": "NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS",
    "DBE": "NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR",
}


def _plain(value: Any) -> JSONValue:
    """ctypes structs, bytes and tuples -> JSON-ready Python values."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    if hasattr(value, "_fields_"):
        return {f[0]: _plain(getattr(value, f[0])) for f in value._fields_}
    if hasattr(value, "__dict__"):
        return {k: _plain(v) for k, v in vars(value).items() if not k.startswith("_")}
    return str(value)


class RealBackend:
    """nvidia-ml-py (module ``pynvml``), imported on init, never at module import."""

    def __init__(self) -> None:
        self._nv: Any = None
        self._handles: dict[int, Any] = {}

    def init(self) -> None:
        try:
            import pynvml
        except ImportError:
            raise NvmlCallError("LibraryNotFound") from None
        pynvml.nvmlInit()
        self._nv = pynvml

    def shutdown(self) -> None:
        if self._nv is not None:
            self._nv.nvmlShutdown()

    def _handle(self, index: int) -> Any:
        if index not in self._handles:
            self._handles[index] = self._nv.nvmlDeviceGetHandleByIndex(index)
        return self._handles[index]

    def _enum(self, arg: JSONValue) -> JSONValue:
        if isinstance(arg, str) and arg in _ENUMS:
            return getattr(self._nv, _ENUMS[arg])
        return arg

    def call(self, name: str, *args: JSONValue) -> JSONValue:
        nv = self._nv
        special = _SPECIAL.get(name)
        if special is not None:
            return special(self, *args)
        fn = getattr(nv, name, None)
        if fn is None:
            raise NvmlCallError("FunctionNotFound")
        if name.startswith("nvmlDevice"):
            if name in ("nvmlDeviceGetCount",):
                return _plain(fn())
            index, *rest = args
            if name in ("nvmlDeviceGetTopologyCommonAncestor", "nvmlDeviceGetP2PStatus"):
                other, *rest = rest
                return _plain(fn(self._handle(int(index)), self._handle(int(other)), *map(self._enum, rest)))
            return _plain(fn(self._handle(int(index)), *map(self._enum, rest)))
        return _plain(fn(*map(self._enum, args)))

    # -- calls whose Python binding needs more than a handle

    def _memory_v2(self, index: int) -> JSONValue:
        info = self._nv.nvmlDeviceGetMemoryInfo(self._handle(index), version=self._nv.nvmlMemory_v2)
        return {k: int(getattr(info, k)) for k in ("total", "reserved", "free", "used")}

    def _memory_v1(self, index: int) -> JSONValue:
        info = self._nv.nvmlDeviceGetMemoryInfo(self._handle(index))
        return {k: int(getattr(info, k)) for k in ("total", "free", "used")}

    def _pci(self, index: int) -> JSONValue:
        info = self._nv.nvmlDeviceGetPciInfo(self._handle(index))
        bus = info.busId
        return {"busId": bus.decode() if isinstance(bus, bytes) else str(bus)}

    def _fabric(self, index: int) -> JSONValue:
        # The struct must be passed by reference: passing it by value crashed the interpreter on a
        # real H100 host (shared/reference/vllm-memory.md section 6.2).
        nv = self._nv
        info = nv.c_nvmlGpuFabricInfo_v3_t() if hasattr(nv, "c_nvmlGpuFabricInfo_v3_t") else nv.c_nvmlGpuFabricInfoV_t()
        nv.nvmlDeviceGetGpuFabricInfoV(self._handle(index), ctypes.byref(info))
        out = {"state": int(info.state), "status": int(info.status), "healthMask": int(info.healthMask)}
        if hasattr(info, "healthSummary"):
            out["healthSummary"] = int(info.healthSummary)
        return out

    def _processes(self, index: int) -> JSONValue:
        procs = self._nv.nvmlDeviceGetComputeRunningProcesses(self._handle(index))
        return [{"pid": int(p.pid), "usedGpuMemory": None if p.usedGpuMemory is None else int(p.usedGpuMemory)}
                for p in procs]

    def _remapped(self, index: int) -> JSONValue:
        return [int(x) for x in self._nv.nvmlDeviceGetRemappedRows(self._handle(index))]

    def _retired(self, index: int, cause: str) -> JSONValue:
        return len(self._nv.nvmlDeviceGetRetiredPages(self._handle(index), self._enum(cause)))


_SPECIAL: dict[str, Callable[..., JSONValue]] = {
    "nvmlDeviceGetMemoryInfo_v2": RealBackend._memory_v2,
    "nvmlDeviceGetMemoryInfo": RealBackend._memory_v1,
    "nvmlDeviceGetPciInfo": RealBackend._pci,
    "nvmlDeviceGetGpuFabricInfoV": RealBackend._fabric,
    "nvmlDeviceGetComputeRunningProcesses": RealBackend._processes,
    "nvmlDeviceGetRemappedRows": RealBackend._remapped,
    "nvmlDeviceGetRetiredPagesCount": RealBackend._retired,
}


# ------------------------------------------------------------------------------- replay backend

def call_key(name: str, args: tuple[JSONValue, ...] | list[JSONValue]) -> str:
    return name + json.dumps(list(args), separators=(",", ":"))


@dataclass
class Recording:
    """Answers recorded on a real host: ``{call, args} -> ok value | error name``."""

    provenance: dict[str, Any]
    init_error: str | None
    answers: dict[str, Answer] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        calls = []
        for key, ans in self.answers.items():
            name, _, rest = key.partition("[")
            entry: dict[str, Any] = {"call": name, "args": json.loads("[" + rest)}
            if ans.ok:
                entry["ok"] = ans.value
            else:
                entry["error"] = ans.error
            calls.append(entry)
        return {"format": "nvml-recording", "version": 1, "provenance": self.provenance,
                "init_error": self.init_error, "calls": calls}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Recording:
        if data.get("format") != "nvml-recording" or data.get("version") != 1:
            raise ValueError("not an nvml-recording version 1")
        rec = cls(provenance=dict(data.get("provenance") or {}), init_error=data.get("init_error"))
        for entry in data["calls"]:
            ans = Answer(entry["ok"]) if "ok" in entry else Answer(None, str(entry["error"]))
            rec.answers[call_key(entry["call"], entry["args"])] = ans
        return rec


class ReplayBackend:
    """Answers from a :class:`Recording`; a call the recording lacks answers ``NotRecorded``."""

    def __init__(self, recording: Recording) -> None:
        self.recording = recording

    def init(self) -> None:
        if self.recording.init_error:
            raise NvmlCallError(self.recording.init_error)

    def call(self, name: str, *args: JSONValue) -> JSONValue:
        ans = self.recording.answers.get(call_key(name, args))
        if ans is None:
            raise NvmlCallError("NotRecorded")
        if not ans.ok:
            raise NvmlCallError(str(ans.error))
        return ans.value

    def shutdown(self) -> None:
        return None


class RecordingBackend:
    """Wraps a backend and keeps every answer, for ``python -m diagnostics.record``."""

    def __init__(self, inner: Backend, provenance: dict[str, Any]) -> None:
        self.inner = inner
        self.recording = Recording(provenance=provenance, init_error=None)

    def init(self) -> None:
        try:
            self.inner.init()
        except Exception as exc:
            self.recording.init_error = error_name(exc)
            raise

    def call(self, name: str, *args: JSONValue) -> JSONValue:
        key = call_key(name, args)
        try:
            value = self.inner.call(name, *args)
        except Exception as exc:
            self.recording.answers[key] = Answer(None, error_name(exc))
            raise
        self.recording.answers[key] = Answer(value)
        return value

    def shutdown(self) -> None:
        self.inner.shutdown()
