"""The ``realistic`` seed profile: Sienge customers as real ERPs hold them, with the ground truth of
which ones a correct import must refuse, and why.

Every record keeps the shapes of Sienge's published schemas (``../shared/specs/sienge``); the dirt is in
the values, where years of typing by many hands put it:

* CPFs and CNPJs with and without punctuation, alphanumeric CNPJs (the Receita's format of July 2026),
  CPFs of one repeated digit (111.111.111-11, a placeholder), typos in check digits, CPFs whose leading
  zero a spreadsheet dropped;
* phones in every spelling (``(11) 98765-4321``, ``11987654321``, ``+55 11 98765 4321``, ``011 98765
  4321``), landlines, extensions and notes (``11 3456-7890 ramal 21``, ``98765-4321 (recado)``), garbage
  (``não tem``, ``000``);
* e-mails with spaces and capitals, missing (about a fifth), malformed (``joao@@...``, ``maria@``);
* names in any case, with or without accents, stray whitespace, some over 100 characters;
* married customers with spouses, sales contracts with two or three buyers, the same person registered
  twice (two customer ids, one CPF).

**Ground truth.** Each customer is generated either valid or with exactly one defect, chosen first, so
``SeedData.expected_failures`` (customer id -> reason code, see :data:`FAILURE_REASONS`) is known from
how the data was made, not from running an import. The rules are the ones of the Receita Federal (check
digits; a CPF of one repeated digit is never issued) and of CV CRM (a client needs a phone and an
e-mail). ``edge_cases`` names valid customers built around one risky-but-valid trait (a duplicate CPF,
a phone whose only spelling carries an extension, ...), so an import that refuses them can be told
precisely what it refused. ``corrections`` are the CPF fixes a Sienge user makes later
(``SiengeSandbox.apply_corrections``): some typos are corrected, and some valid CPFs are replaced by
the right person's.

Deterministic for a seed (one ``random.Random`` seeded with a string, no set iteration) and fast: about
25 µs a customer with its share of sales and units, so 200,000 customers take ~5 s on two cores.
"""

from __future__ import annotations

import bisect
import gc
import random
from datetime import datetime, timedelta
from operator import mul
from typing import Any

from connectors.sandbox.seed import (
    ASSISTANCE_ITEMS,
    BRT,
    CITIES,
    COMPANY_NAMES,
    COMPANY_WORDS,
    DDD,
    ENTERPRISE_NAMES,
    NEIGHBORHOODS,
    PROFESSIONS,
    REFERENCE,
    STREETS,
    Progress,
    SeedData,
    iso,
)

#: reason code -> (the field a dead letter should name, what a person does about it)
FAILURE_REASONS: dict[str, tuple[str, str]] = {
    "cpf_check_digits": ("document", "the CPF's check digits do not match (a typo): correct the CPF in Sienge"),
    "cpf_repeated_digits": (
        "document",
        "the CPF is one digit repeated (111.111.111-11), a placeholder the Receita never issues: "
        "enter the customer's real CPF",
    ),
    "cpf_missing_digit": (
        "document",
        "the CPF has 10 digits (its leading zero was lost on the way through a spreadsheet): enter all 11",
    ),
    "cnpj_check_digits": ("document", "the CNPJ's check digits do not match (a typo): correct the CNPJ in Sienge"),
    "spouse_cpf_check_digits": (
        "spouse.document",
        "the spouse's CPF has wrong check digits: correct it in the customer's spouse data",
    ),
    "email_missing": ("email", "no e-mail, and CV CRM needs one to register a client: fill it in Sienge"),
    "email_malformed": (
        "email",
        "the e-mail is not an address (joao@@..., maria@, a space inside, no @): correct it in Sienge",
    ),
    "phone_missing": (
        "telefone",
        "no usable phone ('não tem', '000', a number without its area code), and CV CRM needs one: "
        "add a phone with DDD",
    ),
}

#: why a customer must fail a second import, after a first one and then the corrections: its CPF was
#: replaced by another valid one, and CV CRM (upsert keyed by ``documento``) still holds the person under
#: the old CPF; writing the new one would make a second person
CORRECTION_REASONS: dict[str, tuple[str, str]] = {
    "cpf_changed_after_import": (
        "documento",
        "the CPF changed in Sienge after the customer reached CV CRM: change it on the CRM person by hand, "
        "then replay the dead letter",
    ),
}

#: valid customers built around one risky trait; an import must take them
EDGE_CASES: dict[str, str] = {
    "duplicate_document": "a second Sienge customer with the CPF of an earlier one (both records valid)",
    "phone_with_note_only": "the only phone is a full number with DDD followed by an extension or a note "
    "('11 3456-7890 ramal 21', '(11) 98765-4321 (recado)'): a person can call it",
    "landline_only": "landlines only, no mobile",
    "name_over_100_chars": "a name longer than 100 characters",
    "alphanumeric_cnpj": "a company with an alphanumeric CNPJ",
    "spouse_without_cpf": "married, the spouse registered without a CPF",
}

# ---- rates (per customer of the kind) -----------------------------------------------------------
COMPANY_RATE = 0.10
#: individuals: cumulative thresholds of one draw
INDIVIDUAL_REASONS = (
    ("cpf_check_digits", 0.045),
    ("cpf_repeated_digits", 0.017),
    ("cpf_missing_digit", 0.011),
    ("spouse_cpf_check_digits", 0.011),
    ("email_missing", 0.19),
    ("email_malformed", 0.03),
    ("phone_missing", 0.04),
)
COMPANY_REASONS = (
    ("cnpj_check_digits", 0.10),
    ("email_missing", 0.19),
    ("email_malformed", 0.03),
    ("phone_missing", 0.04),
)
MARRIED_RATE = 0.35
DUPLICATE_RATE = 0.015
#: among valid individuals that are not duplicates
EDGE_RATES = (("phone_with_note_only", 0.012), ("landline_only", 0.03), ("name_over_100_chars", 0.006))
ALNUM_CNPJ_RATE = 0.35
#: a quarter of the CPF typos get corrected; about one valid customer in 200 gets another valid CPF
FIX_EVERY = 4
REKEY_RATE = 0.005


def _cumulative(table: tuple[tuple[str, float], ...]) -> tuple[list[float], list[str | None]]:
    """Cumulative limits for one uniform draw, and the code of each interval (None past the last)."""
    limits: list[float] = []
    total = 0.0
    for _, rate in table:
        total += rate
        limits.append(total)
    return limits, [name for name, _ in table] + [None]


def _draw(table: tuple[list[float], list[str | None]], roll: float) -> str | None:
    return table[1][bisect.bisect_right(table[0], roll)]


_INDIVIDUAL = _cumulative(INDIVIDUAL_REASONS)
_COMPANY = _cumulative(COMPANY_REASONS)
_EDGES = _cumulative(EDGE_RATES)

# ---- people ------------------------------------------------------------------------------------
FIRST_F = ["Maria", "Ana", "Francisca", "Antônia", "Adriana", "Juliana", "Márcia", "Fernanda", "Patrícia",
           "Aline", "Camila", "Beatriz", "Larissa", "Letícia", "Gabriela", "Luíza", "Mariana", "Renata",
           "Conceição", "Sônia", "Cláudia", "Débora", "Fátima", "Raquel", "Tânia", "Vitória"]
FIRST_M = ["José", "João", "Antônio", "Francisco", "Carlos", "Paulo", "Pedro", "Lucas", "Luiz", "Marcos",
           "Gabriel", "Rafael", "Daniel", "Marcelo", "Bruno", "Eduardo", "Felipe", "Rodrigo", "Thiago",
           "Sebastião", "Raimundo", "Cícero", "Fábio", "Márcio", "Vinícius", "Otávio"]
MIDDLE_F = ["Aparecida", "de Fátima", "Cristina", "Helena", "Luíza", "Eduarda", "Clara", "das Graças"]
MIDDLE_M = ["Carlos", "Henrique", "Augusto", "Eduardo", "Luís", "Roberto", "Antônio", "Paulo"]
SURNAMES = ["Silva", "Santos", "Oliveira", "Souza", "Rodrigues", "Ferreira", "Alves", "Pereira", "Lima",
            "Gomes", "Costa", "Ribeiro", "Martins", "Carvalho", "Almeida", "Lopes", "Soares", "Fernandes",
            "Vieira", "Barbosa", "Rocha", "Dias", "Nascimento", "Andrade", "Moreira", "Nunes", "Marques",
            "Machado", "Mendes", "Freitas", "Cardoso", "Ramos", "Gonçalves", "Santana", "Teixeira",
            "Araújo", "Conceição", "Magalhães", "Brandão", "Damasceno", "Falcão", "Guimarães", "Simões"]
PARTICLES = ["da", "de", "dos", "das", "do"]
LONG_TAIL = ["Albuquerque", "Cavalcanti", "Vasconcelos", "Bittencourt", "Wanderley", "Figueiredo",
             "Mascarenhas", "Bragança", "Orleans", "Assunção", "Nepomuceno", "Evangelista"]
COMPANY_KINDS = ["Ltda", "LTDA", "Ltda - ME", "Eireli", "S.A.", "LTDA EPP", "ME"]
CIVIL_SINGLE = ["Solteiro(a)", "Solteiro(a)", "Solteiro(a)", "Divorciado(a)", "Viúvo(a)", "SOLTEIRO", "solteira"]
CIVIL_MARRIED = ["Casado(a)", "Casado(a)", "Casado(a)", "CASADO", "casada", "União estável"]
REGIMES = ["Comunhão parcial de bens", "Comunhão universal de bens", "Separação total de bens"]
DOMAINS = ["example.com.br", "example.com", "exemplo.net.br", "example.org", "mail.example.com.br",
           "example.net"]
SPOUSE_DOMAINS = ["example.com", "example.org", "example.net"]
PHONE_NOTES = ["", "", "", "", "WhatsApp", "trabalho", "recado", "esposa", "filho"]
GARBAGE_PHONES = ["não tem", "000", "", "0", "sem telefone", "NAO POSSUI", "-"]
_ACCENTS = str.maketrans("áàâãéêíóôõúüçÁÀÂÃÉÊÍÓÔÕÚÜÇ", "aaaaeeiooouucAAAAEEIOOOUUC")
_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
IDDS = ("55", "55", "55", "", "+55")


def _ascii(word: str) -> str:
    return word.translate(_ACCENTS).lower()


#: names as an e-mail address spells them (no accents, lower case), looked up rather than computed
_ASCII = {w: _ascii(w) for w in FIRST_F + FIRST_M + SURNAMES + LONG_TAIL}

# ---- documents, fast (a customer needs one or two; python-stdnum is held equal by a test) ----------
_CPF_W1 = (10, 9, 8, 7, 6, 5, 4, 3, 2)
_CPF_W2 = (11, 10, 9, 8, 7, 6, 5, 4, 3)
_CNPJ_W1 = (5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2)
_CNPJ_W2 = (6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3)


def cpf_check_digits(base: str) -> str:
    """The two mod-11 check digits of a 9-digit CPF base."""
    codes = base.encode("ascii")
    first = (sum(map(mul, codes, _CPF_W1)) - 48 * 54) * 10 % 11 % 10
    second = (sum(map(mul, codes, _CPF_W2)) - 48 * 63 + 2 * first) * 10 % 11 % 10
    return f"{first}{second}"


def cnpj_check_digits(base: str) -> str:
    """The two check digits of a 12-character CNPJ base, numeric or alphanumeric: each character counts
    as its ASCII code minus 48 (a digit as itself, A as 17), the usual mod-11 weights."""
    codes = base.encode("ascii")
    first = (11 - (sum(map(mul, codes, _CNPJ_W1)) - 48 * 58)) % 11 % 10
    second = (11 - (sum(map(mul, codes, _CNPJ_W2)) - 48 * 62 + 2 * first)) % 11 % 10
    return f"{first}{second}"


def is_valid_cpf(value: str) -> bool:
    """Receita's rule on compact digits: 11 digits, check digits match, not one digit repeated."""
    return (len(value) == 11 and value.isdigit() and value != value[0] * 11
            and cpf_check_digits(value[:9]) == value[9:])


def format_cpf(d: str) -> str:
    return f"{d[:3]}.{d[3:6]}.{d[6:9]}-{d[9:]}"


def format_cnpj(c: str) -> str:
    return f"{c[:2]}.{c[2:5]}.{c[5:8]}/{c[8:12]}-{c[12:]}"


def generate_realistic(
    *,
    customers: int,
    seed: int,
    enterprises: int | None = None,
    assistances: int = 3,
    progress: Progress,
) -> SeedData:
    """The whole realistic data set and its ground truth. Sizes follow the clean profile: enterprises ~
    customers/2000 (at least 3), contracts ~ half the customers, units ~ 1.25 per contract.

    The cyclic garbage collector is paused meanwhile: the records hold no cycles (reference counting
    frees all the garbage here) and its scans of the growing data were over a quarter of the time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _generate(customers=customers, seed=seed, enterprises=enterprises, assistances=assistances,
                         progress=progress)
    finally:
        if was_enabled:
            gc.enable()


def _generate(*, customers: int, seed: int, enterprises: int | None, assistances: int,
              progress: Progress) -> SeedData:
    """The realistic customers, their ground truth (expected failures, edge cases, repeated people,
    corrections), then the enterprises, units, sales and assistances (:func:`_real_estate`).

    Long because: one seeded script whose random draws must keep their order (same seed, same data);
    its small generators are closures over the shared draw and the documents issued so far, and the
    customer loop is one decision per person (duplicate, company or individual, then its dirt).
    """
    rng = random.Random(f"ponte-sandbox-realistic-{seed}")
    r = rng.random
    data = SeedData(profile="realistic")
    expected = data.expected_failures
    edges = data.edge_cases
    used: set[str] = set()  # compact documents issued so far (customers and spouses): never twice by chance
    intended: dict[int, str] = {}  # the valid CPF behind a typo, for the corrections

    def pick(seq: list[Any] | tuple[Any, ...] | str) -> Any:
        return seq[int(r() * len(seq))]

    # ---- documents ---------------------------------------------------------------------------
    def new_cpf(leading_zero: bool = False) -> str:
        while True:
            n = int(r() * (1e8 if leading_zero else 1e9))
            if n % 111111111 == 0:
                continue
            base = f"{n:09d}"
            cpf = base + cpf_check_digits(base)
            if cpf not in used:
                used.add(cpf)
                return cpf

    def typo(cpf: str) -> str:
        """A CPF as mistyped: two neighbouring digits swapped, or a wrong last digit; never valid."""
        if r() < 0.5:
            k = 1 + int(r() * 8)
            swapped = cpf[:k] + cpf[k + 1] + cpf[k] + cpf[k + 2 :]
            if not is_valid_cpf(swapped):
                return swapped
        return cpf[:10] + str((int(cpf[10]) + 1 + int(r() * 9)) % 10)

    def cpf_text(cpf: str) -> str:
        roll = r()
        if roll < 0.45:
            return cpf
        if roll < 0.9:
            return format_cpf(cpf)
        if roll < 0.95:
            return f"{cpf[:9]}-{cpf[9:]}"
        return f" {format_cpf(cpf)} "

    def new_cnpj(alphanumeric: bool) -> str:
        while True:
            if alphanumeric:
                root = "".join([_ALNUM[int(r() * 36)] for _ in range(8)])
                if root.isdigit():
                    continue
            else:
                root = f"{int(r() * 1e8):08d}"
            base = root + ("0001" if r() < 0.9 else "0002")
            cnpj = base + cnpj_check_digits(base)
            if not cnpj.startswith("00000000") and cnpj not in used:
                used.add(cnpj)
                return cnpj

    # ---- names and e-mails -------------------------------------------------------------------
    def person_name(female: bool, long: bool = False) -> tuple[str, str, str]:
        """A full name, and its first and last words as an e-mail address spells them."""
        first = pick(FIRST_F if female else FIRST_M)
        parts = [first]
        if r() < 0.3:
            parts.append(pick(MIDDLE_F if female else MIDDLE_M))
        last = ""
        for _ in range(1 + int(r() * 3)):
            if r() < 0.25:
                parts.append(pick(PARTICLES))
            last = pick(SURNAMES)
            parts.append(last)
        if long:
            while len(" ".join(parts)) <= 100:
                parts.append(pick(PARTICLES))
                last = pick(LONG_TAIL)
                parts.append(last)
        return " ".join(parts), _ASCII[first], _ASCII[last]

    def dirty(name: str) -> str:
        """The name as somebody typed it: any case, accents or not, stray spaces."""
        roll = r()
        if roll < 0.25:
            name = name.upper()
        elif roll < 0.33:
            name = name.lower()
        elif roll < 0.45:
            name = " ".join(w.upper() if r() < 0.5 else w.lower() for w in name.split(" "))
        if r() < 0.1:
            name = name.translate(_ACCENTS)
        roll = r()
        if roll < 0.06:
            name = name.replace(" ", "  ", 1)
        elif roll < 0.12:
            name = f"{name} "
        elif roll < 0.16:
            name = f"  {name}"
        return name

    def local_part(first: str, last: str, cid: int) -> str:
        roll = r()
        if roll < 0.35:
            return f"{first}.{last}{cid}"
        if roll < 0.6:
            return f"{first}{last}{cid % 1000}"
        if roll < 0.8:
            return f"{first}_{last}{cid}"
        return f"{first[0]}{last}{cid}"

    def good_email(first: str, last: str, cid: int, domain: str) -> str:
        address = f"{local_part(first, last, cid)}@{domain}"
        roll = r()
        if roll < 0.08:
            address = address.upper()
        elif roll < 0.16:
            local, _, dom = address.partition("@")
            address = f"{local.title()}@{dom.capitalize()}"
        roll = r()
        if roll < 0.06:
            address = f" {address}"
        elif roll < 0.12:
            address = f"{address}  "
        return address

    def bad_email(first: str, last: str, cid: int, domain: str) -> str:
        local = local_part(first, last, cid)
        kind = int(r() * 7)
        if kind == 0:
            return f"{local}@@{domain}"
        if kind == 1:
            return f"{local}@"
        if kind == 2:
            return f"{first} {last}@{domain}"
        if kind == 3:
            return f"{local}.{domain}"
        if kind == 4:
            return f"{local}@{domain.split('.')[0]}"
        if kind == 5:
            return f"{local}@{domain.replace('.', ',')}"
        return f"{local}.@{domain}"

    # ---- phones ------------------------------------------------------------------------------
    def mobile_digits() -> str:
        return f"9{6 + int(r() * 4)}{int(r() * 1e7):07d}"

    def landline_digits() -> str:
        return f"{2 + int(r() * 4)}{int(r() * 1e7):07d}"

    def mobile(ddd: str) -> str:
        n = mobile_digits()
        a, b = n[:5], n[5:]
        return pick((f"({ddd}) {a}-{b}", f"{ddd}{n}", f"+55 {ddd} {a} {b}", f"0{ddd} {a} {b}",
                     f"{ddd} {a}-{b}", f"({ddd}){a}-{b}", f"+55 ({ddd}) {a}-{b}"))

    def landline(ddd: str) -> str:
        n = landline_digits()
        a, b = n[:4], n[4:]
        return pick((f"({ddd}) {a}-{b}", f"{ddd}{n}", f"{ddd} {a}-{b}", f"0{ddd} {a} {b}"))

    def noted(ddd: str) -> str:
        """A full number with DDD and an extension or a note typed after it: usable by a person."""
        kind = int(r() * 3)
        if kind == 0:
            n = landline_digits()
            return f"{ddd} {n[:4]}-{n[4:]} ramal {10 + int(r() * 90)}"
        if kind == 1:
            n = mobile_digits()
            return f"({ddd}) {n[:5]}-{n[5:]} (recado)"
        n = landline_digits()
        return f"({ddd}) {n[:4]}-{n[4:]} r. {100 + int(r() * 900)}"

    def unusable() -> str:
        """Nothing a person could dial: garbage, or a number without its area code."""
        roll = r()
        if roll < 0.3:
            n = mobile_digits()
            return f"{n[:5]}-{n[5:]} (recado)"
        if roll < 0.45:
            n = landline_digits()
            return f"{n[:4]}-{n[4:]}"
        return pick(GARBAGE_PHONES)

    def phone(number: str, kind: str, main: bool) -> dict[str, Any]:
        return {"number": number, "main": main, "type": kind, "idd": IDDS[int(r() * 5)],
                "note": PHONE_NOTES[int(r() * 9)]}

    def phones_valid(ddd: str) -> list[dict[str, Any]]:
        """A usable phone first (mobile, sometimes a landline), then maybe extras of any quality."""
        out = [phone(mobile(ddd), "Celular", True) if r() < 0.85
               else phone(landline(ddd), "Residencial", True)]
        roll = r()
        extras = 0 if roll < 0.55 else 1 if roll < 0.9 else 2
        for _ in range(extras):
            roll = r()
            if roll < 0.4:
                out.append(phone(landline(ddd), pick(("Residencial", "Comercial")), False))
            elif roll < 0.6:
                out.append(phone(mobile(ddd), "Celular", False))
            elif roll < 0.85:
                out.append(phone(unusable(), pick(("Celular", "Residencial")), False))
            else:
                out.append(phone(noted(ddd), pick(("Comercial", "Celular")), False))
        if extras and r() < 0.2:  # the good one is not always first
            out.reverse()
        return out

    def phones_unusable() -> list[dict[str, Any]]:
        roll = r()
        count = 0 if roll < 0.3 else 1 if roll < 0.8 else 2
        return [phone(unusable(), pick(("Celular", "Residencial")), i == 0) for i in range(count)]

    # ---- dates -------------------------------------------------------------------------------
    start = datetime(2024, 1, 1, tzinfo=BRT)
    span = int((REFERENCE - start).total_seconds())
    days = [(start + timedelta(days=k)).date().isoformat() for k in range(span // 86400 + 2)]

    minutes = [f"T{m // 60:02d}:{m % 60:02d}:" for m in range(1440)]
    seconds_tz = [f"{s:02d}-03:00" for s in range(60)]

    def stamp(seconds: int) -> str:
        """Seconds since 2024-01-01 00:00 in São Paulo as Sienge's ISO timestamp (tables: 1 µs less)."""
        return days[seconds // 86400] + minutes[seconds // 60 % 1440] + seconds_tz[seconds % 60]

    def birth(lo: int = 1945, years: int = 60) -> str:
        return f"{lo + int(r() * years)}-{1 + int(r() * 12):02d}-{1 + int(r() * 28):02d}"

    # ---- customers ---------------------------------------------------------------------------
    step = max(1, customers // 100)
    #: valid individuals that may be registered a second time: (index in data.customers)
    candidates: list[int] = []
    for i in range(customers):
        cid = i + 1
        city, uf, city_id, cep_prefix = pick(CITIES)
        ddd = DDD[uf]
        created_s = int(r() * span)
        created = stamp(created_s)
        modified = stamp(created_s + int(r() * (span - created_s)))
        zip_digits = f"{cep_prefix}{int(r() * 1e6):06d}"
        address = {
            "type": "Residencial",
            "streetName": pick(STREETS),
            "number": str(1 + int(r() * 3000)),
            "complement": f"Apto {101 + int(r() * 1400)}" if r() < 0.5 else "",
            "neighborhood": pick(NEIGHBORHOODS),
            "cityId": city_id,
            "city": city if r() < 0.85 else city.upper(),
            "state": uf,
            "zipCode": f"{zip_digits[:5]}-{zip_digits[5:]}" if r() < 0.4 else zip_digits,
            "mail": True,
        }
        record: dict[str, Any]
        reason: str | None = None
        edge: str | None = None
        if candidates and r() < DUPLICATE_RATE:
            # ---- the same person registered again: same CPF (typed differently), same birth date
            k = int(r() * len(candidates))
            original = data.customers[candidates[k]]
            candidates[k] = candidates[-1]
            candidates.pop()
            cpf = "".join(ch for ch in original["cpf"] if ch.isdigit())
            name = dirty(" ".join(original["name"].split()).title())
            words = [_ascii(w) for w in name.split() if w.lower() not in PARTICLES]
            record = {
                "id": cid, "personType": "Física", "name": name,
                "cpf": cpf if original["cpf"] != cpf else format_cpf(cpf),
                "email": good_email(words[0], words[-1], cid, pick(DOMAINS)),
                "birthDate": original["birthDate"], "sex": original["sex"],
                "civilStatus": original["civilStatus"], "nationality": "Brasileira",
                "numberIdentityCard": original.get("numberIdentityCard", ""), "issuingBody": f"SSP/{uf}",
                "profession": pick(PROFESSIONS), "foreigner": "N",
            }
            phones = phones_valid(ddd)
            edge = "duplicate_document"
            data.duplicates[cid] = original["id"]
        elif r() < COMPANY_RATE:
            # ---- a legal person
            reason = _draw(_COMPANY, r())
            alphanumeric = r() < ALNUM_CNPJ_RATE
            cnpj = new_cnpj(alphanumeric)
            if reason == "cnpj_check_digits":
                cnpj = cnpj[:13] + str((int(cnpj[13]) + 1 + int(r() * 9)) % 10)
            trade = f"{pick(COMPANY_NAMES)} {pick(COMPANY_WORDS)}"
            long = reason is None and r() < 0.006
            legal = f"{trade} {pick(COMPANY_KINDS)}"
            if long:
                legal = f"{trade} de {' e '.join(pick(COMPANY_WORDS) for _ in range(6))} do Brasil {pick(COMPANY_KINDS)}"
                while len(legal) <= 100:
                    legal = f"{legal} {pick(LONG_TAIL)}"
            name = dirty(legal)
            domain = f"{trade.translate(_ACCENTS).lower().replace(' ', '')}.example.com.br"
            record = {
                "id": cid, "personType": "Jurídica", "name": name, "fantasyName": trade,
                "cnpj": format_cnpj(cnpj) if r() < 0.6 else cnpj,
                "establishmentDate": birth(1970, 55),
                "stateRegistrationNumber": f"{int(r() * 1e9):09d}" if r() < 0.8 else "ISENTO",
            }
            record["contactName"], c_first, c_last = person_name(r() < 0.5)
            if reason == "email_missing":
                if r() < 0.5:
                    record["email"] = "" if r() < 0.7 else "   "
            elif reason == "email_malformed":
                record["email"] = bad_email(c_first, c_last, cid, domain)
            else:
                record["email"] = good_email(c_first, c_last, cid, domain)
            phones = phones_unusable() if reason == "phone_missing" else phones_valid(ddd)
            if reason is None:
                edge = "name_over_100_chars" if long else "alphanumeric_cnpj" if alphanumeric else None
        else:
            # ---- a natural person
            reason = _draw(_INDIVIDUAL, r())
            female = r() < 0.5
            if reason is None:
                edge = _draw(_EDGES, r())
            canonical, first, last = person_name(female, long=edge == "name_over_100_chars")
            name = dirty(canonical)
            married = reason == "spouse_cpf_check_digits" or r() < MARRIED_RATE
            if reason == "cpf_missing_digit":
                cpf_value = new_cpf(leading_zero=True)[1:]  # stored as a number somewhere on the way
                intended[cid] = "0" + cpf_value
            elif reason == "cpf_repeated_digits":
                digit = pick("0123456789")
                cpf_value = digit * 11 if r() < 0.4 else format_cpf(digit * 11)
            elif reason == "cpf_check_digits":
                good = new_cpf()
                intended[cid] = good
                cpf_value = cpf_text(typo(good))
            else:
                cpf_value = cpf_text(new_cpf())
            record = {
                "id": cid, "personType": "Física", "name": name, "cpf": cpf_value,
                "birthDate": birth(), "sex": "Feminino" if female else "Masculino",
                "civilStatus": pick(CIVIL_MARRIED) if married else pick(CIVIL_SINGLE),
                "nationality": "Brasileira", "numberIdentityCard": f"{int(r() * 1e7):07d}",
                "issuingBody": f"SSP/{uf}", "profession": pick(PROFESSIONS), "foreigner": "N",
            }
            domain = pick(DOMAINS)
            if reason == "email_missing":
                if r() < 0.5:
                    record["email"] = "" if r() < 0.7 else "   "
            elif reason == "email_malformed":
                record["email"] = bad_email(first, last, cid, domain)
            else:
                record["email"] = good_email(first, last, cid, domain)
            if reason == "phone_missing":
                phones = phones_unusable()
            elif edge == "phone_with_note_only":
                phones = [phone(noted(ddd), pick(("Celular", "Residencial", "Comercial")), True)]
            elif edge == "landline_only":
                phones = [phone(landline(ddd), "Residencial", True)]
                if r() < 0.4:
                    phones.append(phone(landline(ddd), "Comercial", False))
            else:
                phones = phones_valid(ddd)
            if married:
                s_female = not female
                s_first = pick(FIRST_F if s_female else FIRST_M)
                s_name = f"{s_first} {canonical.split()[-1]}"
                spouse: dict[str, Any] = {"name": dirty(s_name)[:80], "sex": "F" if s_female else "M"}
                if reason == "spouse_cpf_check_digits":
                    spouse["cpf"] = typo(new_cpf())
                elif edge is None and r() < 0.1:
                    edge = "spouse_without_cpf"
                else:
                    spouse_cpf = new_cpf()
                    spouse["cpf"] = spouse_cpf if r() < 0.85 else format_cpf(spouse_cpf)
                if r() < 0.6:
                    s_email = f"{_ASCII[s_first]}{cid}@{pick(SPOUSE_DOMAINS)}"
                    spouse["email"] = s_email if r() < 0.85 else s_email.capitalize()
                spouse["birthDate"] = birth()
                roll = r()
                if roll < 0.5:
                    spouse["cellphoneNumber"] = f"0{ddd}{mobile_digits()}"
                elif roll < 0.75:
                    spouse["cellphoneNumber"] = f"{ddd}{mobile_digits()}"
                elif roll < 0.85:
                    spouse["cellphoneNumber"] = pick(("000", "", "não tem"))
                spouse["nationality"] = "Brasileira"
                record["matrimonialRegime"] = pick(REGIMES)
                record["marriageDate"] = birth(1975, 50)
                record["spouse"] = spouse
            if reason is None and edge is None:
                candidates.append(i)
        record.update({
            "createdAt": created,
            "modifiedAt": modified,
            "clientType": "Cliente",
            "mailingAddress": "R",
            "phones": phones,
            "addresses": [address],
        })
        data.customers.append(record)
        if reason is not None:
            expected[cid] = reason
        elif edge is not None:
            edges[cid] = edge
        if i % step == 0:
            progress("customers", i, customers)
    progress("customers", customers, customers)

    # ---- corrections: a quarter of the CPF typos fixed, some valid CPFs replaced by the right one
    duplicated = set(data.duplicates.values())
    typos = [cid for cid, why in expected.items() if why == "cpf_check_digits"]
    for n, cid in enumerate(typos):
        if n % FIX_EVERY == 0:
            data.corrections[cid] = {"cpf": format_cpf(intended[cid])}
    plain = [data.customers[c]["id"] for c in candidates if data.customers[c]["id"] not in duplicated]
    if plain:
        for cid in rng.sample(plain, max(1, round(len(plain) * REKEY_RATE))):
            data.corrections[cid] = {"cpf": format_cpf(new_cpf())}

    _real_estate(data, customers, enterprises, assistances, rng, stamp, days, span, progress)
    data.expected_sale_failures = data.sales_failing(expected)
    return data


def _real_estate(data: SeedData, customers: int, enterprises: int | None, assistances: int,
                 rng: random.Random, stamp: Any, days: list[str], span: int, progress: Progress) -> None:
    """Enterprises, units, sales contracts (one to three buyers) and CRM assistances; the dirt is in
    the people, so these keep the clean profile's shapes."""
    n_enterprises = enterprises or max(3, -(-customers // 2000))
    n_contracts = customers // 2
    n_units = max(n_enterprises * 4, n_contracts + n_contracts // 4)
    _units(data, rng, n_enterprises, n_units, progress)
    _contracts(data, rng, customers, n_contracts, stamp, days, span, progress)
    _assistances(data, assistances)


def _units(data: SeedData, rng: random.Random, n_enterprises: int, n_units: int, progress: Progress) -> None:
    """Enterprises and their apartments, ``n_units`` spread evenly over them (towers of 48)."""
    r = rng.random
    per_enterprise = -(-n_units // n_enterprises)
    unit_id = 0
    for e in range(n_enterprises):
        eid = e + 1
        city, uf, _, cep_prefix = CITIES[e % len(CITIES)]
        base_name = ENTERPRISE_NAMES[e % len(ENTERPRISE_NAMES)]
        name = base_name if e < len(ENTERPRISE_NAMES) else f"{base_name} {e // len(ENTERPRISE_NAMES) + 1}"
        created = REFERENCE - timedelta(days=900 - e)
        delivery = (REFERENCE + timedelta(days=int(r() * 1100) - 400)).date().isoformat()
        street = STREETS[int(r() * len(STREETS))]
        base = f"{int(r() * 1e8):08d}0001"
        data.enterprises.append({
            "id": eid, "name": name, "commercialName": name,
            "cnpj": base + cnpj_check_digits(base), "type": "1",
            "adress": f"{street}, {100 + e}, {city} - {uf}",
            "addressDetails": {"streetName": street, "number": str(100 + e), "complement": "",
                               "neighborhood": NEIGHBORHOODS[e % len(NEIGHBORHOODS)], "city": city,
                               "state": uf, "zipCode": f"{cep_prefix}{int(r() * 1e6):06d}"},
            "companyId": 1, "companyName": "Ponte Incorporações S.A.",
            "creationDate": created.date().isoformat(),
            "modificationDate": (created + timedelta(days=30)).date().isoformat(),
            "createdBy": "sandbox", "modifiedBy": "sandbox", "buildingTypeId": 1,
            "buildingTypeDescription": "Residencial", "buildingStatus": "IN_PROGRESS",
            "buildingEnabledForIntegration": True, "salesDetails": {"keysDelivery": delivery},
        })
        towers = max(1, per_enterprise // 48)
        for u in range(per_enterprise):
            if unit_id >= n_units:
                break
            unit_id += 1
            tower = u % towers + 1
            floor = (u // towers) // 4 + 1
            unit_name = (f"Torre {tower} - Apto {floor}{(u // towers) % 4 + 1:02d}" if towers > 1
                         else f"Apto {floor}{u % 4 + 1:02d}")
            data.units.append({
                "id": unit_id, "enterpriseId": eid, "name": unit_name, "propertyType": "Apartamento",
                "commercialStock": "D", "floor": str(floor), "privateArea": round(45 + r() * 90, 2),
                "commonArea": round(10 + r() * 30, 2), "deliveryDate": delivery,
                "terrainValue": round(20000 + r() * 80000, 2),
                "groupings": [{"groupingDescription": "Torre", "valueGroupingDescription": str(tower)}],
                "childUnits": [], "specialValues": [], "links": [],
            })
    progress("units", len(data.units), len(data.units))


def _contracts(data: SeedData, rng: random.Random, customers: int, n_contracts: int, stamp: Any,
               days: list[str], span: int, progress: Progress) -> None:
    """Sales contracts: one unit each, one to three buyers; about one in ten cancelled (distrato)."""
    r = rng.random
    unit_order = list(range(len(data.units)))
    rng.shuffle(unit_order)
    buyers = list(range(customers))
    rng.shuffle(buyers)
    enterprise_by_id = {e["id"]: e for e in data.enterprises}
    b = 0
    for k in range(min(n_contracts, len(data.units))):
        if b >= len(buyers):
            break
        unit = data.units[unit_order[k]]
        enterprise = enterprise_by_id[unit["enterpriseId"]]
        roll = r()
        count = min(1 if roll < 0.62 else 2 if roll < 0.92 else 3, len(buyers) - b)
        parties = [data.customers[buyers[b + j]] for j in range(count)]
        b += count
        shares = ((100,), (50, 50) if r() < 0.7 else (60, 40),
                  (33.33, 33.33, 33.34) if r() < 0.7 else (50, 25, 25))[count - 1]
        days_ago = 1 + int(r() * 699)
        contract_s = max(0, span - days_ago * 86400 - int(r() * 86400))
        contract_day = days[contract_s // 86400]
        roll = r()
        situation = "2" if roll < 0.7 else "1" if roll < 0.8 else "0" if roll < 0.9 else "3"
        value = round(250000 + r() * 900000, 2)
        contract: dict[str, Any] = {
            "id": k + 1, "companyId": 1, "companyName": "Ponte Incorporações S.A.",
            "enterpriseId": enterprise["id"], "enterpriseName": enterprise["name"],
            "receivableBillId": 5000 + k + 1, "number": f"{enterprise['id']:03d}/{k + 1:06d}",
            "situation": situation, "contractDate": contract_day,
            "expectedDeliveryDate": unit["deliveryDate"], "value": value, "totalSellingValue": value,
            "correctionType": "INCC", "createdAt": stamp(contract_s),
            "modifiedAt": stamp(min(span, contract_s + int(r() * 30 * 86400))),
            "salesContractCustomers": [
                {"id": p["id"], "name": p["name"], "main": j == 0, "spouse": False,
                 "participationPercentage": shares[j]}
                for j, p in enumerate(parties)
            ],
            "salesContractUnits": [{"id": unit["id"], "main": True, "name": unit["name"],
                                    "participationPercentage": 100}],
            "paymentConditions": [
                {"conditionTypeId": "PM", "conditionTypeName": "Parcelas mensais", "installmentsNumber": 120,
                 "totalValue": value, "outstandingBalance": round(value * r(), 2)}
            ],
            "brokers": [], "links": [],
        }
        if situation in "23":
            contract["issueDate"] = days[min(span, contract_s + 3 * 86400) // 86400]
        if situation == "3":
            cancel_s = min(span, contract_s + (30 + int(r() * 170)) * 86400)
            contract["cancellationDate"] = days[cancel_s // 86400]
            contract["cancellationReason"] = "Distrato a pedido do cliente"
            contract["modifiedAt"] = stamp(cancel_s)
        else:
            unit["commercialStock"] = "V"
            unit["contractId"] = contract["id"]
            unit["contractNumber"] = contract["number"]
        data.contracts.append(contract)
    progress("contracts", len(data.contracts), len(data.contracts))


def _assistances(data: SeedData, assistances: int) -> None:
    """Technical-assistance requests opened in the CRM, by buyers whose records are valid (the CRM
    knows them), on the first live contracts."""
    expected = data.expected_failures
    live = [c for c in data.contracts if c["situation"] == "2"
            and c["salesContractCustomers"][0]["id"] not in expected
            and c["salesContractCustomers"][0]["id"] not in data.corrections]
    for a in range(min(assistances, len(live))):
        contract = live[a]
        customer = data.customers[contract["salesContractCustomers"][0]["id"] - 1]
        items = []
        for j in range(1 + a % 3):
            item = {"iditem": 100 * (a + 1) + j, "descricao": ASSISTANCE_ITEMS[(a + j) % len(ASSISTANCE_ITEMS)],
                    "situacao": "Aberto"}
            if not (a == 0 and j == 0):  # the first item lacks the minimum days Sienge requires
                item["prazo_minimo_dias"] = 5 + 5 * j
            items.append(item)
        data.crm_assistencias.append({
            "idassistencia": a + 1, "idatendimento": 9000 + a + 1,
            "protocolo_atendimento": f"AT-2026-{a + 1:05d}",
            "documento": customer.get("cpf") or customer.get("cnpj"),
            "contract_id": contract["id"], "unit_id": contract["salesContractUnits"][0]["id"],
            "enterprise_id": contract["enterpriseId"],
            "descricao": f"Solicitação de assistência técnica: {items[0]['descricao'].lower()}",
            "itens": items, "aberta_em": iso(REFERENCE - timedelta(days=3 - a % 3)),
        })
