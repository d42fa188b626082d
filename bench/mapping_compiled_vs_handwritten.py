"""Compiled mapping vs the same mapping hand-written in plain Python, on 100k records.

Why: mappings run on every record of every import, so the declarative form must not cost much more
than the code an engineer would write by hand. Goal: the compiled mapping runs at least at half the
hand-written speed (ratio = hand-written time / compiled time >= 0.5).

Two mappings are measured:

- ``sienge/sales_contract_to_sale``: light transforms (ids to text, dates, money, an enum, two lists),
  so the engine's own overhead shows;
- ``sienge/customer_to_person``: heavy transforms (CPF check digits, phone parsing with libphonenumber),
  the typical import record.

The hand-written functions use the same library calls (python-stdnum via ``schemas.documents``,
phonenumbers, Decimal) and produce exactly the same dicts; the script checks that before timing.

Run: ``.venv/bin/python bench/mapping_compiled_vs_handwritten.py [--records 100000] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import random
import re
import sys
import time
from collections.abc import Callable
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mappings import load_mapping
from mappings.transforms import ENUM_TABLES, fold, parse_money
from schemas.documents import normalize_cpf, normalize_phone, normalize_tax_id

CENT = Decimal("0.01")
SITUATION = ENUM_TABLES["sienge_sale_situation"]
CIVIL = {fold(k): v for k, v in ENUM_TABLES["sienge_civil_status"].items()}
ADDRESS_KIND = {"residencial": "residential", "comercial": "commercial", "cobranca": "billing"}
SPACES = re.compile(r"\s+")


# ---- data ------------------------------------------------------------------------------------------

def _cpf(rng: random.Random) -> str:
    while True:
        base = f"{rng.randrange(10**9):09d}"
        if len(set(base)) > 1:
            break
    first = sum((10 - i) * int(d) for i, d in enumerate(base)) * 10 % 11 % 10
    second = sum((11 - i) * int(d) for i, d in enumerate(base + str(first))) * 10 % 11 % 10
    return f"{base}{first}{second}"


def customers(n: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        record: dict[str, Any] = {
            "id": i + 1, "personType": "Física", "name": f"  Cliente {i}  da Silva ",
            "cpf": _cpf(rng), "email": f"Cliente{i}@Example.com ", "birthDate": f"19{rng.randrange(40, 99)}-0{rng.randrange(1, 9)}-1{rng.randrange(0, 9)}",
            "civilStatus": rng.choice(["Casado(a)", "Solteiro(a)", "Divorciado(a)"]),
            "phones": [{"number": f"48 9{rng.randrange(10**8):08d}", "main": True, "type": "Celular"},
                       {"number": f"(48) 3{rng.randrange(10**7):07d}", "main": False, "type": "Residencial"}],
            "addresses": [{"type": "Residencial", "streetName": "Rua Bocaiúva", "number": str(rng.randrange(1, 3000)),
                           "complement": "" if rng.random() < 0.5 else "Apto 12", "neighborhood": "Centro",
                           "city": "Florianópolis", "state": "SC", "zipCode": f"88{rng.randrange(10**6):06d}"}],
        }
        if record["civilStatus"] == "Casado(a)":
            record["spouse"] = {"cpf": _cpf(rng), "name": "Cônjuge da Silva", "email": "conjuge@example.com",
                                "birthDate": "1980-01-02", "cellphoneNumber": f"0489{rng.randrange(10**8):08d}"}
        out.append(record)
    return out


def contracts(n: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        value = round(250000 + rng.random() * 900000, 2)
        situation = rng.choice("0123")
        record: dict[str, Any] = {
            "id": i + 1, "enterpriseId": rng.randrange(1, 20), "number": f"012/{i:06d}", "situation": situation,
            "contractDate": "2026-06-27", "issueDate": "2026-06-30", "value": value,
            "salesContractCustomers": [{"id": rng.randrange(1, 10**5), "name": "Maria da Silva", "main": True,
                                        "spouse": False, "participationPercentage": 60},
                                       {"id": rng.randrange(1, 10**5), "name": "Pedro Souza", "main": False,
                                        "participationPercentage": 40}],
            "salesContractUnits": [{"id": rng.randrange(1, 10**5), "main": True}],
            "paymentConditions": [{"conditionTypeId": "PM", "conditionTypeName": "Parcelas mensais",
                                   "installmentsNumber": 120, "totalValue": value}],
        }
        if situation == "3":
            record["cancellationDate"] = "2026-08-01"
            record["cancellationReason"] = "Distrato"
        out.append(record)
    return out


# ---- the same mappings, by hand -----------------------------------------------------------------------

def _strip(value: Any) -> str | None:
    text = SPACES.sub(" ", str(value)).strip()
    return text or None


def _phone(value: Any) -> str | None:
    text = str(value).strip()
    digits = "".join(ch for ch in text if ch.isdigit())
    if not text.startswith("+") and digits.startswith("0") and len(digits) in (11, 12):
        text = digits[1:]
    try:
        return normalize_phone(text, "BR")
    except ValueError:
        return None


def _day(value: str) -> date:
    return date.fromisoformat(value[:10])


def customer_by_hand(r: dict[str, Any]) -> dict[str, Any]:
    document = r.get("cpf") or r.get("cnpj")
    o: dict[str, Any] = {"document": normalize_tax_id(document)}
    o["person_type"] = "individual" if len(normalize_tax_id(document)) == 11 else "company"
    o["name"] = _strip(r["name"])
    if r.get("email") is not None:
        o["email"] = str(r["email"]).strip().lower()
    phones = [p for p in (_phone(item["number"]) for item in r.get("phones") or [] if item.get("number")) if p]
    o["phones"] = phones
    mobile = next((item for item in r.get("phones") or [] if item.get("type") == "Celular"), None)
    if mobile and mobile.get("number") is not None:
        number = _phone(mobile["number"])
        if number is not None:
            o["mobile"] = number
    if r.get("birthDate") is not None:
        o["birth_date"] = _day(r["birthDate"])
    civil = r.get("civilStatus")
    o["civil_status"] = CIVIL.get(fold(civil), "unknown") if civil is not None else "unknown"
    spouse = r.get("spouse")
    if spouse and spouse.get("cpf"):
        s: dict[str, Any] = {"document": normalize_cpf(spouse["cpf"]), "person_type": "individual",
                             "name": _strip(spouse["name"])}
        if spouse.get("email") is not None:
            s["email"] = str(spouse["email"]).strip().lower()
        number = spouse.get("cellphoneNumber") or spouse.get("phoneNumber")
        if number:
            phone = _phone(number)
            if phone is not None:
                s["mobile"] = phone
        if spouse.get("birthDate") is not None:
            s["birth_date"] = _day(spouse["birthDate"])
        s["civil_status"] = "married"
        o["spouse"] = s
    addresses = []
    for a in r.get("addresses") or []:
        item: dict[str, Any] = {}
        kind = a.get("type")
        item["kind"] = ADDRESS_KIND.get(fold(kind), kind) if kind is not None else "residential"
        for source, target in (("streetName", "street"), ("number", "number"), ("complement", "complement"),
                               ("neighborhood", "neighborhood"), ("city", "city")):
            if a.get(source) is not None:
                value = _strip(a[source])
                if value is not None:
                    item[target] = value
        if a.get("state") is not None:
            state = _strip(a["state"])
            if state is not None:
                item["state"] = state.upper()
        if a.get("zipCode") is not None:
            zip_code = "".join(ch for ch in str(a["zipCode"]) if ch.isdigit())
            if zip_code:
                item["zip_code"] = zip_code
        addresses.append(item)
    o["addresses"] = addresses
    o["source_ids"] = {"sienge": str(r["id"])}
    return o


def _money(value: Any) -> Decimal:
    return parse_money(value).quantize(CENT, rounding=ROUND_HALF_EVEN)


def sale_by_hand(r: dict[str, Any]) -> dict[str, Any] | None:
    if not r.get("salesContractCustomers"):
        return None
    o: dict[str, Any] = {"source_id": str(r["id"])}
    if r.get("number") is not None:
        o["number"] = _strip(r["number"])
    o["enterprise_source_id"] = str(r["enterpriseId"])
    o["unit_source_ids"] = [str(u["id"]) for u in r.get("salesContractUnits") or [] if u.get("id") is not None]
    buyers = []
    for c in r["salesContractCustomers"]:
        b: dict[str, Any] = {"person_source_id": str(c["id"])}
        if c.get("name") is not None:
            b["name"] = _strip(c["name"])
        b["main"] = c.get("main") if c.get("main") is not None else False
        b["spouse"] = c.get("spouse") if c.get("spouse") is not None else False
        share = c.get("participationPercentage")
        b["share_percent"] = _money(share) if share is not None else 100
        buyers.append(b)
    o["buyers"] = buyers
    o["status"] = SITUATION[str(r["situation"])]
    if r.get("contractDate") is not None:
        o["contract_date"] = _day(r["contractDate"])
    if r.get("issueDate") is not None:
        o["issue_date"] = _day(r["issueDate"])
    value = r.get("value") or r.get("totalSellingValue")
    o["value"] = _money(value)
    conditions = []
    for p in r.get("paymentConditions") or []:
        kind = p.get("conditionTypeName") or p.get("conditionTypeId")
        item: dict[str, Any] = {}
        if kind:
            item["kind"] = _strip(kind)
        item["installments"] = p["installmentsNumber"] if p.get("installmentsNumber") is not None else 1
        item["total"] = _money(p["totalValue"]) if p.get("totalValue") is not None else 0
        conditions.append(item)
    o["payment_conditions"] = conditions
    if r.get("situation") == "3":
        if r.get("cancellationDate") is not None:
            o["cancellation_date"] = _day(r["cancellationDate"])
        if r.get("cancellationReason") is not None:
            reason = _strip(r["cancellationReason"])
            if reason is not None:
                o["cancellation_reason"] = reason
    return o


# ---- timing ------------------------------------------------------------------------------------------

def once(func: Callable[[dict[str, Any]], Any], records: list[dict[str, Any]]) -> float:
    gc.collect()
    start = time.perf_counter()
    for record in records:
        func(record)
    return time.perf_counter() - start


def best_of(funcs: list[Callable[[dict[str, Any]], Any]], records: list[dict[str, Any]],
            repeat: int) -> list[float]:
    """Best time of each function; runs are interleaved so load from other processes hits both."""
    times: list[list[float]] = [[] for _ in funcs]
    for _ in range(repeat):
        for index, func in enumerate(funcs):
            times[index].append(once(func, records))
    return [min(t) for t in times]


def compare(name: str, hand: Callable[[dict[str, Any]], Any], records: list[dict[str, Any]],
            repeat: int) -> dict[str, Any]:
    compiled = load_mapping(name).apply
    for record in records[:2000]:  # same output, or the comparison means nothing
        assert compiled(record) == hand(record), (name, record["id"])
    hand_s, compiled_s = best_of([hand, compiled], records, repeat)
    return {
        "mapping": name,
        "records": len(records),
        "handwritten_s": round(hand_s, 3),
        "compiled_s": round(compiled_s, 3),
        "handwritten_us_per_record": round(hand_s / len(records) * 1e6, 2),
        "compiled_us_per_record": round(compiled_s / len(records) * 1e6, 2),
        "ratio": round(hand_s / compiled_s, 2),  # >= 0.5 is the goal; 1.0 = as fast as by hand
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    results = [
        compare("sienge/sales_contract_to_sale", sale_by_hand, contracts(args.records), args.repeat),
        compare("sienge/customer_to_person", customer_by_hand, customers(args.records), args.repeat),
    ]
    print(json.dumps({"python": platform.python_version(), "machine": platform.machine(),
                      "results": results}, indent=2))
    return 0 if all(r["ratio"] >= 0.5 for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
