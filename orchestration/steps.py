"""How a Ponte step (an asset or op that runs a flow) ends when the flow raises.

One decision, made once: ``PonteError.retryable`` (``ponte/errors.py``).

* **Retryable** (``TransientError``, ``RateLimitedError``: what the HTTP layer's own retries gave up on)
  is re-raised unchanged, so :data:`STEP_RETRY`, the one step retry policy, re-runs the step later.
* **Not retryable** (``ConfigurationError``, ``AuthError``, ``DataError``, ``NotFoundError``,
  ``ConflictError``, and an ``AmbiguousWriteError``, which a person must resolve) becomes
  ``dagster.Failure(allow_retries=False)``: the step fails on its first attempt, its description is the
  error's one line (where, message, ``(fix: hint)``) and its metadata the error's kind, tenant, record,
  field, hint and source, all masked (``ponte.redaction``). Re-running cannot fix a wrong password or a
  broken tenant file; retrying it only delays the alert and hammers the provider.
* Anything else (a bug, the state store down) is re-raised, so the policy applies as Dagster does by
  default.

Dagster's guarantee this relies on (``dagster/_core/execution/plan/utils.py``,
``op_execution_error_boundary``): with a retry policy set, a ``Failure`` whose ``allow_retries`` is False
is raised as is, not turned into ``RetryRequestedFromPolicy``; every other exception is.

Every asset and op body runs inside :func:`step_errors`::

    @asset(retry_policy=STEP_RETRY, ...)
    def my_asset(context, ...):
        with step_errors(context):
            ...
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import PurePath
from typing import Any, TypeVar

from dagster import Backoff, Failure, Jitter, MetadataValue, RetryPolicy, SensorResult
from dagster import Field as DagsterField
from dagster._config.errors import PostProcessingError
from dagster._config.field_utils import Shape
from dagster._config.pythonic_config.config import infer_schema_from_config_class
from dagster._core.definitions.definition_config_schema import convert_user_facing_definition_config_schema
from pydantic import ValidationError

from ponte import PonteError, redact

#: The step retry policy of every asset and op that runs a flow, for what the HTTP layer gave up on
#: (its own retries are exhausted): two more attempts, about 30 s and 60 s later. Writes are
#: idempotent or behind the outbox, so a re-run step never doubles an effect.
STEP_RETRY = RetryPolicy(max_retries=2, delay=30, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS)

T = TypeVar("T")

_CONTEXT_FIELDS = ("tenant", "record", "field", "hint", "source")


def failure_metadata(error: PonteError) -> dict[str, Any]:
    """The error's kind and context as step-failure metadata, masked; fields it lacks are left out."""
    metadata: dict[str, Any] = {"kind": error.kind, "message": redact(error.message)}
    for name in _CONTEXT_FIELDS:
        value = getattr(error, name, None)
        if value:
            metadata[name] = redact(str(value))
    if error.details:
        metadata["details"] = MetadataValue.json({str(k): redact(str(v)) for k, v in error.details.items()})
    frames = traceback.extract_tb(error.__traceback__) if error.__traceback__ else []
    if frames:  # where it was raised (the Failure replaces the traceback, whose text is not masked)
        last = frames[-1]
        metadata["raised_at"] = f"{'/'.join(PurePath(last.filename).parts[-2:])}:{last.lineno} in {last.name}"
    return metadata


def describe(error: PonteError) -> str:
    """``str(error)`` (where: message (fix: hint)) with each part masked on its own.

    Masking the joined line would read ``field credentials.password: environment ...`` as a secret
    after a ``password:`` key and mask the message itself.
    """
    where, message = redact(error.where()), redact(error.message)
    text = f"{where}: {message}" if where else message
    return f"{text} (fix: {redact(error.hint)})" if error.hint else text


def step_failure(error: PonteError) -> Failure:
    """A ``Failure`` that Dagster's retry policy does not re-run, telling a person what to fix."""
    return Failure(description=describe(error), metadata=failure_metadata(error), allow_retries=False)


def _partition_tenant(context: Any) -> str | None:
    try:
        return context.partition_key if context.has_partition_key else None
    except Exception:  # not a partitioned run: the error names its tenant itself, if it knows it
        return None


@contextmanager
def step_errors(context: Any | None = None, *, tenant: str | None = None) -> Iterator[None]:
    """Translate a flow's error into how the step ends (see the module docstring).

    ``context`` (the asset/op execution context) supplies the tenant from the run's partition when the
    error does not name one; ``tenant`` overrides it.
    """
    try:
        yield
    except PonteError as error:
        if error.retryable:
            raise  # STEP_RETRY re-runs the step
        error.context(tenant=tenant or (_partition_tenant(context) if context is not None else None))
        raise step_failure(error) from None


# ------------------------------------------------------------------------------- run config and tags

def run_tags(
    tenant: str | None, trigger: str, *, mode: str | None = None, since: str | None = None, ids: int | None = None
) -> dict[str, str]:
    """The tags a schedule or sensor puts on the runs it requests, so the run list tells a full run from
    an incremental one (``ponte/mode``), and shows its tenant, since date and how many ids it names."""
    tags = {"ponte/trigger": trigger}
    for key, value in (("tenant", tenant), ("mode", mode), ("since", since)):
        if value:
            tags[f"ponte/{key}"] = str(value)
    if ids is not None:
        tags["ponte/ids"] = str(ids)
    return tags


def tag_requests(result: Any, *, mode: str, trigger: str = "webhook", ids_of: Any = None) -> Any:
    """A sensor's result with :func:`run_tags` added to each run request (its tenant is its partition);
    ``ids_of(run_config)`` counts the ids a request names. A SkipReason is returned as is."""
    requests = getattr(result, "run_requests", None)
    if not requests:
        return result
    tagged = []
    for request in requests:
        extra = run_tags(request.partition_key, trigger, mode=mode,
                         ids=ids_of(request.run_config) if ids_of else None)
        tagged.append(request.with_replaced_attrs(tags={**extra, **dict(request.tags or {})}))
    return SensorResult(run_requests=tagged, cursor=result.cursor, skip_reason=result.skip_reason)


def tag_run(context: Any, tags: dict[str, str]) -> None:
    """Add ``tags`` the run does not carry yet (a run launched by hand from the launchpad has none of a
    schedule's ``ponte/*`` tags), so the run list shows every run's tenant, mode, since date and ids."""
    run = context.run
    missing = {key: value for key, value in tags.items() if value and key not in run.tags}
    if missing:
        context.instance.add_run_tags(run.run_id, missing)


# ------------------------------------------------------------------------ run config checked at launch

def _first_line(error: Any) -> str:
    location = ".".join(str(part) for part in error.get("loc", ()) if part != "__root__")
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{location}: {message}" if location else message


class _LaunchCheckedShape(Shape):
    """A config ``Shape`` whose post-processing builds the pydantic ``Config`` class, so its validators
    run when Dagster resolves the run config: at launch (launchpad, ``create_run_for_job``,
    ``execute_in_process``, a sensor's or schedule's run request), before any step starts.

    Dagster's own ``config: SomeConfig`` parameter builds the class only inside the step (checked: an
    invalid date there fails the step after the run started), and its schema checks types only.
    """

    def __new__(cls, *_args: Any, **_kwargs: Any) -> _LaunchCheckedShape:
        # Shape memoizes instances by field hash (and would hand back a plain Shape): one per class here
        instance = object.__new__(cls)
        instance._initialized = False
        return instance

    def __init__(self, model: type, fields: Any, description: str | None = None) -> None:
        super().__init__(fields, description)
        self.model = model

    def post_process(self, value: Any) -> Any:
        try:
            self.model(**value)
        except ValidationError as exc:
            problems = "; ".join(_first_line(error) for error in exc.errors())
            raise PostProcessingError(f"{self.model.__name__}: {problems}") from None
        return value


def launch_checked(model: type) -> DagsterField:
    """The config schema of the Dagster ``Config`` class ``model`` (the same fields, defaults and
    descriptions), with ``model``'s pydantic validators run at launch."""
    inferred = infer_schema_from_config_class(model)
    shape = inferred.config_type
    return DagsterField(_LaunchCheckedShape(model, shape.fields, shape.description), description=inferred.description)


def check_config_at_launch(target: T, model: type) -> T:
    """Make the step of ``target`` (an asset, multi-asset or op whose function takes ``config: model``)
    validate its run config with ``model``'s validators at launch, not when the step starts.

    The step still receives ``config`` as a ``model`` instance; only the schema Dagster checks the run
    config against changes (``multi_asset`` accepts no ``Field`` as its ``config_schema``, so it is
    set on the step's op definition here, once, at import).
    """
    op = getattr(target, "op", target)
    op._config_schema = convert_user_facing_definition_config_schema(launch_checked(model))
    return target

