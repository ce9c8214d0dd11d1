"""Remember a dlt destination factory's capabilities for the duration of one lake write.

Why: during one ``pipeline.run`` dlt asks the destination factory for its capabilities about 17
times (extract, normalize and load each check file formats, table formats and naming), and every
call re-resolves the destination's whole configuration against every config provider (environment,
``config.toml``, ``secrets.toml``) and every section. Measured with ``benchmarks/lake_write.py``
that was ~0.17 s of a ~0.43 s write, whatever the row count. The answer cannot change within one
write: it depends only on the factory's own arguments (fixed) and the naming convention's case
sensitivity (passed in). Only the ``config=None`` path is remembered; a caller that passes its own
resolved configuration still gets a fresh computation.
"""

from __future__ import annotations

from typing import Any, TypeVar

F = TypeVar("F")


def with_cached_capabilities(factory: F) -> F:
    """Return ``factory`` with ``capabilities()`` computed once per naming case sensitivity.

    Each call hands out a copy, because dlt adjusts the object it gets (e.g. the preferred
    loader file format) and those changes must not leak into the next caller.
    """
    original = factory.capabilities  # type: ignore[attr-defined]
    remembered: dict[bool | None, Any] = {}

    def capabilities(config: Any = None, naming: Any = None) -> Any:
        if config is not None:
            return original(config, naming)
        key = None if naming is None else bool(naming.is_case_sensitive)
        if key not in remembered:
            remembered[key] = original(None, naming)
        return remembered[key].copy()

    factory.capabilities = capabilities  # type: ignore[attr-defined]
    return factory
