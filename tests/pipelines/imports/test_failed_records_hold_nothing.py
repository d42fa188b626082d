"""A failed record's error holds nothing of its batch (the import's memory on dirty data).

Found with the realistic profile: at 200,000 customers, a third failing, the import's workers grew to
800 MiB each (peak 200k/20k 4.25×, goal ≤ 1.3×). A translation error kept for its dead letter held its
traceback, whose frames held the batch's results; raised from a pydantic ValidationError, which the
cyclic collector does not track, that cycle was never freed.
"""

from __future__ import annotations

import gc
import weakref

from pipelines.imports.parallel import _no_lookup, stage_batch
from pipelines.imports.translate import Translator
from ponte.errors import DataError
from schemas.tenant import load_tenant
from tests.support.tenants import REPO

BAD_EMAIL = {"id": 9, "name": "Maria da Silva", "cpf": "529.982.247-25", "email": "maria@@example",
             "phones": [{"number": "(48) 99123-4567", "main": True}], "personType": "F"}


def test_a_staged_error_keeps_its_message_but_no_traceback_or_chain() -> None:
    translator = Translator(load_tenant(REPO / "tenants" / "demo.yaml"), _no_lookup)
    [error] = stage_batch(translator, "customer", [BAD_EMAIL])
    assert isinstance(error, DataError) and error.field and error.message
    assert error.__traceback__ is None and error.__context__ is None and error.__cause__ is None


def test_the_batch_is_freed_once_its_results_are_dropped() -> None:
    translator = Translator(load_tenant(REPO / "tenants" / "demo.yaml"), _no_lookup)
    marker = {"id": 10, "name": "Ana", "cpf": "111.111.111-11"}  # fails too

    class Batch(list):  # a list that can be weakly referenced
        pass

    batch = Batch([BAD_EMAIL, marker])
    results = stage_batch(translator, "customer", batch)
    assert all(isinstance(r, DataError) for r in results)
    alive = weakref.ref(batch)
    del batch
    results.clear()
    gc.collect()
    assert alive() is None, "a failed record's error still holds its batch"


def test_a_model_validation_error_is_not_chained() -> None:
    translator = Translator(load_tenant(REPO / "tenants" / "demo.yaml"), _no_lookup)
    try:
        translator.staged("customer", BAD_EMAIL)
    except DataError as exc:
        assert exc.__context__ is None  # a ValidationError here would pin the caller's frames
    else:
        raise AssertionError("the bad e-mail was accepted")
