"""The single seam over NVML: a real backend (nvidia-ml-py, imported lazily) and a replay backend.

Why one seam: every NVML call goes through :meth:`Nvml.query`, which initialises lazily and maps
any NVML error to an :class:`Answer` with ``value=None`` and the error's name (``NotSupported``,
``NoPermission``, ``GpuIsLost``, ``FunctionNotFound``...).  A lost GPU or an unsupported field is
one ``None``, never a crashed probe.  The probe never knows which backend it has: the replay
backend answers from a recording made on a real GPU host by ``python -m diagnostics.record``.

Calls are named after nvidia-ml-py's functions; arguments are the device index (not a handle, so
recordings replay anywhere) and symbolic names for enums (``"SM"``, ``"UNCORRECTED"``) and for field
ids (``nvmlDeviceGetFieldValues(0, "GPU_RECOVERY_ACTION")``), so a recording reads like the call it answers.
A field value's own return code (NotSupported on a GPU without that field) is that call's error.
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

#: Field ids read with ``nvmlDeviceGetFieldValues``, by the symbolic name a recording shows.  Values and
#: the nvidia-ml-py version that first defines them: /work/evidence/blackwell/nvml_constants.md, read from
#: the pynvml.py of 17 official wheels (12.535.133 ... 13.615.71).  Hard-coded, not looked up in the
#: binding, so an older binding can still ask a newer driver (the driver answers per value).
FIELD_IDS: dict[str, int] = {
    "NVLINK_GET_SPEED": 164,  # NVML_FI_DEV_NVLINK_GET_SPEED, MB/s (10^6 B/s) per link (scopeId = link); <= 12.535.133
    "GPU_RECOVERY_ACTION": 230,  # NVML_FI_DEV_GET_GPU_RECOVERY_ACTION, nvmlDeviceGpuRecoveryAction_t; 12.570.86
}

#: nvmlValueType_t -> the member of nvmlValue_t holding the value (nvml.h; pynvml NVML_VALUE_TYPE_*).
_VALUE_MEMBERS = {0: "dVal", 1: "uiVal", 2: "ulVal", 3: "ullVal", 4: "sllVal", 5: "siVal", 6: "usVal"}

#: NVML_GPU_FABRIC_UUID_LEN (nvml.h, pynvml >= 12.570.86).
_FABRIC_UUID_LEN = 16


class _FabricInfoV2(ctypes.Structure):
    """nvmlGpuFabricInfo_v2_t exactly as nvml.h declares it (state is ``unsigned char``).

    Our own struct, not the binding's: nvidia-ml-py 12.550.52 and 12.560.30 declare ``clusterUuid`` as 80
    bytes (every later field mis-decoded), 12.570.86-12.575.51 as ``c_char`` (truncated at the first NUL),
    and the binding declares ``state`` as ``c_uint`` (nvml_constants.md section 2).
    """

    _fields_ = [("version", ctypes.c_uint), ("clusterUuid", ctypes.c_uint8 * _FABRIC_UUID_LEN),
                ("status", ctypes.c_uint), ("cliqueId", ctypes.c_uint), ("state", ctypes.c_uint8),
                ("healthMask", ctypes.c_uint)]


class _FabricInfoV3(ctypes.Structure):
    """nvmlGpuFabricInfo_v3_t: v2 plus ``healthSummary`` (nvml.h; NVML 13.580.65 and later)."""

    _fields_ = [*_FabricInfoV2._fields_, ("healthSummary", ctypes.c_uint8)]


def _struct_version(struct: type[ctypes.Structure], version: int) -> int:
    """NVML_STRUCT_VERSION(name, ver) = sizeof(struct) | ver << 24 (nvml.h)."""
    return ctypes.sizeof(struct) | (version << 24)


#: (struct, version word), newest first: v3 = 0x3000028, v2 = 0x2000024 as nvml.h and pynvml define them.
FABRIC_STRUCTS: tuple[tuple[type[ctypes.Structure], int], ...] = (
    (_FabricInfoV3, _struct_version(_FabricInfoV3, 3)),
    (_FabricInfoV2, _struct_version(_FabricInfoV2, 2)),
)

#: NVML_ERROR_ARGUMENT_VERSION_MISMATCH: the driver does not know this struct version (nvml.h).
_ARGUMENT_VERSION_MISMATCH = 25


def _uuid_text(raw: Any) -> str:
    b = bytes(raw)
    h = b.hex()
    return f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


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

    def _c_function(self, name: str) -> Any:
        """The C entry point itself (pynvml raises NVMLError_FunctionNotFound where the driver lacks it)."""
        getter = getattr(self._nv, "_nvmlGetFunctionPointer", None)
        if getter is None:
            raise NvmlCallError("FunctionNotFound")
        return getter(name)

    def _fabric(self, index: int) -> JSONValue:
        """nvmlDeviceGetGpuFabricInfoV with the v3 struct, else v2 (drivers before 13.580.65 know only v2).

        The struct goes by reference: passing it by value crashed the interpreter on a real H100 host
        (shared/reference/vllm-memory.md section 6.2).  The health mask is returned raw; it is decoded
        with fixed field widths in the probe, never with the binding's WIDTH constants (0x11 in some).
        """
        fn = self._c_function("nvmlDeviceGetGpuFabricInfoV")
        handle = self._handle(index)
        ret = _ARGUMENT_VERSION_MISMATCH
        for struct, version in FABRIC_STRUCTS:
            info: Any = struct()
            info.version = version
            ret = int(fn(handle, ctypes.byref(info)))
            if ret != _ARGUMENT_VERSION_MISMATCH:
                break
        if ret != 0:
            raise self._nv.NVMLError(ret)
        out = {"version": version >> 24, "state": int(info.state), "status": int(info.status),
               "cliqueId": int(info.cliqueId), "clusterUuid": _uuid_text(info.clusterUuid),
               "healthMask": int(info.healthMask)}
        if hasattr(info, "healthSummary"):
            out["healthSummary"] = int(info.healthSummary)
        return out

    def _field(self, index: int, field: str, scope: int = 0) -> JSONValue:
        """One NVML field value; its own return code (NotSupported...) becomes this call's error."""
        if field not in FIELD_IDS:
            raise NvmlCallError("InvalidArgument")
        fn = getattr(self._nv, "nvmlDeviceGetFieldValues", None)
        if fn is None:
            raise NvmlCallError("FunctionNotFound")
        value = fn(self._handle(index), [(FIELD_IDS[field], int(scope))])[0]
        if int(value.nvmlReturn) != 0:
            raise self._nv.NVMLError(int(value.nvmlReturn))
        member = _VALUE_MEMBERS.get(int(value.valueType))
        if member is None:
            raise NvmlCallError(f"UnknownValueType({int(value.valueType)})")
        return _plain(getattr(value.value, member))

    def _c2c(self, index: int) -> JSONValue:
        fn = getattr(self._nv, "nvmlDeviceGetC2cModeInfoV", None)
        if fn is None:
            raise NvmlCallError("FunctionNotFound")
        return {"isC2cEnabled": int(fn(self._handle(index)).isC2cEnabled)}

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
    "nvmlDeviceGetFieldValues": RealBackend._field,
    "nvmlDeviceGetC2cModeInfoV": RealBackend._c2c,
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
