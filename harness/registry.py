"""Plugin registries: one per kind (methods, encoders, protocols, datasets, checkpoint formats).

Built-in plugins register with a decorator in their own module; the first time a registry is asked
for anything it imports every module of its built-in packages (``harness.methods``,
``harness.methods.encoders``, ``harness.protocols``, ``harness.data``; for checkpoint formats
``harness.checkpoints`` and ``harness.methods.checkpoint_formats``), so a new built-in plugin is one
new file. Third-party packages add plugins through the entry-point groups ``harness.methods``,
``harness.encoders``, ``harness.protocols``, ``harness.datasets`` and ``harness.checkpoint_formats``; an
entry point may name a module (importing it runs its decorators) or the plugin object itself.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import pkgutil
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Callable, Iterable, Iterator

from .errors import UnknownNameError


@dataclass
class Entry:
    name: str
    obj: Any
    kind: str
    source: str  # "builtin" or the distribution name of an entry point
    variants: tuple[str, ...] = ()
    description: str = ""

    def as_dict(self) -> dict:
        return {"name": self.name, "variants": list(self.variants), "source": self.source,
                "description": self.description}


@dataclass
class Registry:
    kind: str  # singular, for messages: "method"
    group: str  # entry-point group
    builtin_packages: tuple[str, ...] = ()  # every module in these packages is imported (scanned)
    _entries: dict[str, Entry] = field(default_factory=dict)
    _loaded: bool = False
    _loading: bool = False

    def register(self, name: str | None = None, *, variants: Iterable[str] | None = None,
                 description: str | None = None) -> Callable[[Any], Any]:
        """Decorator: ``@METHODS.register("usdrl", variants=[...])``.

        Variants default to the object's ``variants`` attribute (a dict or sequence of names);
        the description to the first line of its docstring.
        """

        def deco(obj: Any) -> Any:
            key = name or getattr(obj, "name", None) or obj.__name__.lower()
            self.add(key, obj, variants=variants, description=description)
            return obj

        return deco

    def add(self, name: str, obj: Any, *, variants: Iterable[str] | None = None,
            description: str | None = None, source: str = "builtin") -> None:
        if variants is None:
            variants = getattr(obj, "variants", ()) or ()
        doc = (getattr(obj, "__doc__", None) or "").strip().splitlines()
        desc = description if description is not None else (doc[0] if doc else "")
        if name in self._entries and self._entries[name].obj is not obj:
            warnings.warn(f"{self.kind} {name!r} registered twice; the later one wins", stacklevel=3)
        self._entries[name] = Entry(name, obj, self.kind, source, tuple(variants), desc)

    def _load(self) -> None:
        if self._loaded or self._loading:
            return
        self._loading = True
        try:
            for package in self.builtin_packages:
                for mod in builtin_modules(package):
                    importlib.import_module(mod)  # a built-in module that fails to import is a bug
            for ep in metadata.entry_points(group=self.group):
                dist = ep.dist.name if ep.dist is not None else "?"
                try:
                    obj = ep.load()
                except Exception as exc:  # a broken plugin must not break the harness
                    warnings.warn(f"could not load {self.group} entry point {ep.name!r} from {dist}: {exc}")
                    continue
                if ep.name not in self._entries and not _is_module(obj):
                    self.add(ep.name, obj, source=dist)
                elif ep.name in self._entries and self._entries[ep.name].source == "builtin" and dist != "?":
                    # the module registered itself with a decorator; remember where it came from
                    if not _is_builtin_module(obj):
                        self._entries[ep.name].source = dist
            self._loaded = True
        finally:
            self._loading = False

    @contextlib.contextmanager
    def temporarily(self, name: str, obj: Any) -> Iterator[None]:
        """Register ``obj`` under ``name`` for the block only (tests' toy plugins must not leak into
        other code that lists every plugin)."""
        self._load()
        before = self._entries.get(name)
        self.add(name, obj, source="test")
        try:
            yield
        finally:
            if before is None:
                self._entries.pop(name, None)
            else:
                self._entries[name] = before

    def get(self, name: str) -> Any:
        return self.entry(name).obj

    def entry(self, name: str) -> Entry:
        self._load()
        if name not in self._entries:
            raise UnknownNameError(self.kind, name, list(self._entries))
        return self._entries[name]

    def names(self) -> list[str]:
        self._load()
        return sorted(self._entries)

    def entries(self) -> list[Entry]:
        self._load()
        return [self._entries[n] for n in sorted(self._entries)]

    def __contains__(self, name: str) -> bool:
        self._load()
        return name in self._entries


def builtin_modules(package: str) -> list[str]:
    """Every module of ``package`` and its sub-packages (names starting with ``_`` skipped), sorted.

    Built-in plugins are found by scanning, so adding one is adding a file: no list to keep.
    """
    pkg = importlib.import_module(package)
    out = [package]
    for info in pkgutil.walk_packages(pkg.__path__, prefix=package + "."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            out.append(info.name)
    return sorted(out)


def _is_module(obj: Any) -> bool:
    return type(obj).__name__ == "module"


def _is_builtin_module(obj: Any) -> bool:
    return _is_module(obj) and obj.__name__.split(".")[0] == "harness"


METHODS = Registry("method", "harness.methods", ("harness.methods",))
ENCODERS = Registry("encoder", "harness.encoders", ("harness.methods.encoders",))
PROTOCOLS = Registry("protocol", "harness.protocols", ("harness.protocols",))
DATASETS = Registry("dataset", "harness.datasets", ("harness.data",))

# the harness's own files (harness.checkpoints) and the methods' published layouts; not in REGISTRIES,
# which is what `harness list` shows (the kinds a run is configured with)
CHECKPOINT_FORMATS = Registry("checkpoint format", "harness.checkpoint_formats",
                              ("harness.checkpoints", "harness.methods.checkpoint_formats"))

REGISTRIES = {"methods": METHODS, "encoders": ENCODERS, "protocols": PROTOCOLS, "datasets": DATASETS}
