"""randmix-bench: random fixed spatial mixing in vision networks (arXiv 2503.16760).

Importing the package is cheap (the ``randmix`` command line starts in well under a second): torch and timm load
on first use of :data:`Mixing`, :func:`freeze_mixing`, :func:`load_model` or :mod:`.models`. The randmix models
are still in timm's registry whenever timm is: at once if timm is already imported, else right after timm is
(:class:`_RegisterWithTimm`), so ``import randmix_bench, timm; timm.create_model("randmix_...")`` works.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from types import ModuleType
from typing import TYPE_CHECKING, Any

from randmix_bench.threads import prefer_passive_waiting

prefer_passive_waiting()  # before torch is imported: libgomp reads OMP_WAIT_POLICY when torch loads it

__version__ = "0.1.0"

# timm 1.0.9 calls torch.jit.interface at import, which torch >= 2.10 deprecates: noise for our users.
warnings.filterwarnings("ignore", message=r".*torch\.jit\.interface.*", category=FutureWarning)

if TYPE_CHECKING:
    from randmix_bench import models
    from randmix_bench.freezing import freeze_mixing
    from randmix_bench.vocab import Mixing
    from randmix_bench.zoo import load_model

__all__ = ["__version__", "Mixing", "freeze_mixing", "load_model", "models"]

_LAZY = {"Mixing": "randmix_bench.vocab", "freeze_mixing": "randmix_bench.freezing", "load_model": "randmix_bench.zoo"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        importlib.import_module("randmix_bench.models")  # the models registered first, whoever imported timm
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'randmix_bench' has no attribute {name!r}")


class _RegisterWithTimm(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``timm`` through the other finders, runs it, then imports :mod:`randmix_bench.models`, which
    registers the randmix models: the registry has them from the moment ``import timm`` returns.

    When one of randmix_bench's own modules is importing timm (``models`` itself, or a module it needs), the
    models cannot be imported halfway through it; they are then registered by ``models``' own import, or on
    first use of a name of this package (:func:`__getattr__`)."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != "timm":
            return None
        sys.meta_path.remove(self)  # once; and so that find_spec below asks the real finders
        spec = importlib.util.find_spec("timm")
        if spec is None or spec.loader is None:
            return spec
        self.timm_loader = spec.loader
        spec.loader = self
        return spec

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.timm_loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        module.__spec__.loader = self.timm_loader  # type: ignore[union-attr]
        self.timm_loader.exec_module(module)
        if not any(getattr(m.__spec__, "_initializing", False) for name, m in list(sys.modules.items())
                   if name.startswith("randmix_bench.") and getattr(m, "__spec__", None) is not None):
            importlib.import_module("randmix_bench.models")


if "timm" in sys.modules:
    importlib.import_module("randmix_bench.models")
elif not any(isinstance(finder, _RegisterWithTimm) for finder in sys.meta_path):
    sys.meta_path.insert(0, _RegisterWithTimm())
