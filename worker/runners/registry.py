"""The registry of runner kinds: the built-ins, registered explicitly, plus third-party kinds
from the `hookline.runners` entry point group. Duplicate and unknown names fail at once."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from worker.errors import RegistryError
from worker.runners.base import Runner, RunnerContext, RunnerFactory

__all__ = ["ENTRY_POINT_GROUP", "RunnerRegistry", "builtin_factories"]

ENTRY_POINT_GROUP = "hookline.runners"


def _shell(context: RunnerContext) -> Runner[Any]:
    from worker.runners.shell import ShellRunner

    return ShellRunner.create(context)


def _sandbox(context: RunnerContext) -> Runner[Any]:
    from worker.runners.sandbox import SandboxRunner

    return SandboxRunner.create(context)


def _http(context: RunnerContext) -> Runner[Any]:
    from worker.runners.http import HttpRunner

    return HttpRunner.create(context)


def _ssh(context: RunnerContext) -> Runner[Any]:
    from worker.runners.ssh import SshRunner

    return SshRunner.create(context)


def _container(context: RunnerContext) -> Runner[Any]:
    from worker.runners.container import ContainerRunner

    return ContainerRunner.create(context)


def _kubernetes(context: RunnerContext) -> Runner[Any]:
    from worker.runners.kubernetes import KubernetesRunner

    return KubernetesRunner.create(context)


def builtin_factories() -> dict[str, RunnerFactory]:
    """The built-in kinds. Each module is imported only when its kind is served, so a worker
    serving `shell` never loads the Docker or Kubernetes clients."""
    return {
        "shell": _shell,
        "sandbox": _sandbox,
        "http": _http,
        "ssh": _ssh,
        "container": _container,
        "kubernetes": _kubernetes,
    }


class RunnerRegistry:
    """Runner kind name → factory."""

    def __init__(self, factories: Mapping[str, RunnerFactory] | None = None) -> None:
        self._factories: dict[str, RunnerFactory] = {}
        self._origins: dict[str, str] = {}
        for name, factory in (factories or {}).items():
            self.register(name, factory, origin="built-in")

    @classmethod
    def discover(cls, plugins: Iterable[EntryPoint] | None = None) -> RunnerRegistry:
        """The built-ins plus every `hookline.runners` entry point installed (or `plugins`)."""
        registry = cls(builtin_factories())
        for ep in entry_points(group=ENTRY_POINT_GROUP) if plugins is None else plugins:
            try:
                factory = ep.load()
            except Exception as exc:  # any import-time fault of a plug-in: name it and stop
                raise RegistryError(f"runner {ep.name!r} ({ep.value}) cannot be loaded: {exc}") from exc
            if not callable(factory):
                raise RegistryError(f"runner {ep.name!r} ({ep.value}) is not a factory (callable)")
            origin = f"{ep.value}" + (f" from {ep.dist.name}" if ep.dist is not None else "")
            registry.register(ep.name, factory, origin=origin)
        return registry

    @staticmethod
    def installed_names() -> list[str]:
        """The kinds `discover` would register, without importing any plug-in."""
        return sorted({*builtin_factories(), *(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))})

    def register(self, name: str, factory: RunnerFactory, *, origin: str = "") -> None:
        if name in self._factories:
            raise RegistryError(
                f"runner {name!r} is registered twice: {self._origins[name]} and {origin or 'another'}; "
                "uninstall one of them or rename the entry point"
            )
        self._factories[name] = factory
        self._origins[name] = origin

    @property
    def names(self) -> list[str]:
        return sorted(self._factories)

    def create(self, name: str, context: RunnerContext) -> Runner[Any]:
        """Build runner `name`; raises `RegistryError` for an unknown name."""
        factory = self._factories.get(name)
        if factory is None:
            raise RegistryError(f"unknown runner {name!r}; available: {', '.join(self.names)}")
        return factory(context)
