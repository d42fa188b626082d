"""Deterministic, realistic Brazilian seed data shared by the Sienge and CV CRM stand-ins.

The same seed integer always yields the same people, developments, units and sales, so a failing test
can be replayed and two engineers see the same records. Records are built directly in Sienge's field
names (the stand-in serves them as they are); CV CRM gets the same developments and units, keyed by the
Sienge ids in its ``*_int`` fields, as a CRM that was set up for the integration would have.

Generation is linear and allocation-light so ``--customers 50000`` stays a few seconds.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

from connectors.sandbox.documents import make_cnpj, make_cpf

BRT = timezone(timedelta(hours=-3))
#: The seed's "today": fixed so the data does not depend on when it was generated.
REFERENCE = datetime(2026, 11, 1, 12, 0, 0, tzinfo=BRT)

FIRST_F = ["Maria", "Ana", "Francisca", "Antônia", "Adriana", "Juliana", "Márcia", "Fernanda", "Patrícia",
           "Aline", "Camila", "Beatriz", "Larissa", "Letícia", "Gabriela", "Luíza", "Mariana", "Renata"]
FIRST_M = ["José", "João", "Antônio", "Francisco", "Carlos", "Paulo", "Pedro", "Lucas", "Luiz", "Marcos",
           "Gabriel", "Rafael", "Daniel", "Marcelo", "Bruno", "Eduardo", "Felipe", "Rodrigo", "Thiago"]
SURNAMES = ["Silva", "Santos", "Oliveira", "Souza", "Rodrigues", "Ferreira", "Alves", "Pereira", "Lima",
            "Gomes", "Costa", "Ribeiro", "Martins", "Carvalho", "Almeida", "Lopes", "Soares", "Fernandes",
            "Vieira", "Barbosa", "Rocha", "Dias", "Nascimento", "Andrade", "Moreira", "Nunes", "Marques",
            "Machado", "Mendes", "Freitas", "Cardoso", "Ramos", "Gonçalves", "Santana", "Teixeira"]
COMPANY_WORDS = ["Construtora", "Incorporadora", "Comércio", "Serviços", "Participações", "Engenharia",
                 "Tecnologia", "Logística", "Alimentos", "Consultoria"]
COMPANY_NAMES = ["Aurora", "Horizonte", "Atlântico", "Ipê", "Jacarandá", "Serra Azul", "Vale Verde",
                 "Cruzeiro", "Araucária", "Bandeirantes", "Guarani", "Tupã", "Pampa", "Cerrado"]
CITIES = [("Florianópolis", "SC", 4205407, "88"), ("São Paulo", "SP", 3550308, "01"),
          ("Curitiba", "PR", 4106902, "80"), ("Porto Alegre", "RS", 4314902, "90"),
          ("Belo Horizonte", "MG", 3106200, "30"), ("Joinville", "SC", 4209102, "89"),
          ("Campinas", "SP", 3509502, "13"), ("Goiânia", "GO", 5208707, "74")]
DDD = {"SC": "48", "SP": "11", "PR": "41", "RS": "51", "MG": "31", "GO": "62"}
STREETS = ["Rua das Flores", "Avenida Beira-Mar", "Rua XV de Novembro", "Rua Sete de Setembro",
           "Avenida Brasil", "Rua Tiradentes", "Rua Dom Pedro II", "Avenida Paulista", "Rua Bocaiúva"]
NEIGHBORHOODS = ["Centro", "Trindade", "Jardim Botânico", "Batel", "Moinhos de Vento", "Savassi", "Itacorubi"]
PROFESSIONS = ["Engenheiro(a)", "Professor(a)", "Advogado(a)", "Médico(a)", "Analista de sistemas",
               "Comerciante", "Arquiteto(a)", "Contador(a)", "Enfermeiro(a)", "Autônomo(a)"]
ENTERPRISE_NAMES = ["Residencial Jardim das Acácias", "Edifício Mirante do Mar", "Condomínio Parque das Águas",
                    "Residencial Vila Nova", "Edifício Solar dos Ipês", "Condomínio Reserva da Serra",
                    "Residencial Bosque Imperial", "Edifício Torre Atlântica", "Residencial Alto da Colina"]
ASSISTANCE_ITEMS = ["Infiltração no banheiro social", "Trinca na parede da sala", "Porta do quarto empenada",
                    "Vazamento na torneira da cozinha", "Tomada sem energia na suíte",
                    "Descolamento de piso cerâmico", "Esquadria da sacada com folga"]


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


#: seed profiles: ``clean`` (every record imports) and ``realistic`` (people as real ERPs hold them, with
#: the ground truth of what must fail; ``connectors/sandbox/realistic.py``)
PROFILES = ("clean", "realistic")


@dataclass
class SeedData:
    customers: list[dict[str, Any]] = field(default_factory=list)
    enterprises: list[dict[str, Any]] = field(default_factory=list)
    units: list[dict[str, Any]] = field(default_factory=list)
    contracts: list[dict[str, Any]] = field(default_factory=list)
    crm_assistencias: list[dict[str, Any]] = field(default_factory=list)
    profile: str = "clean"
    # ---- ground truth (empty for the clean profile, where every record imports) ----------------
    #: customer id -> why an import must refuse it (a code of ``realistic.FAILURE_REASONS``)
    expected_failures: dict[int, str] = field(default_factory=dict)
    #: sales contract id -> why it must fail (``buyer_failed``: one of its buyers is an expected failure)
    expected_sale_failures: dict[int, str] = field(default_factory=dict)
    #: valid customers built around one risky trait (a code of ``realistic.EDGE_CASES``)
    edge_cases: dict[int, str] = field(default_factory=dict)
    #: customer id -> the earlier customer id registered with the same CPF
    duplicates: dict[int, int] = field(default_factory=dict)
    #: customer id -> fields a Sienge user corrects later (``SiengeSandbox.apply_corrections``)
    corrections: dict[int, dict[str, Any]] = field(default_factory=dict)

    def expected_failures_after_corrections(self) -> dict[int, str]:
        """What must fail an import run after a first import and then the corrections: the fixed typos
        import now; a valid customer whose CPF was replaced must fail (``cpf_changed_after_import``, see
        ``realistic.CORRECTION_REASONS``): CV CRM still holds it under the old CPF."""
        out = {cid: why for cid, why in self.expected_failures.items() if cid not in self.corrections}
        out.update({cid: "cpf_changed_after_import" for cid in self.corrections if cid not in self.expected_failures})
        return out

    def sales_failing(self, failed_customers: Collection[int]) -> dict[int, str]:
        """Sales contracts that must fail when these customers failed: any buyer missing fails the sale."""
        return {
            c["id"]: "buyer_failed"
            for c in self.contracts
            if any(p["id"] in failed_customers for p in c["salesContractCustomers"])
        }


Progress = Callable[[str, int, int], None]


def _noop(stage: str, done: int, total: int) -> None:
    return None


def _email(name: str, n: int, domain: str) -> str:
    base = name.lower()
    for a, b in (("á", "a"), ("à", "a"), ("â", "a"), ("ã", "a"), ("é", "e"), ("ê", "e"), ("í", "i"),
                 ("ó", "o"), ("ô", "o"), ("õ", "o"), ("ú", "u"), ("ç", "c"), ("(", ""), (")", "")):
        base = base.replace(a, b)
    parts = base.split()
    return f"{parts[0]}.{parts[-1]}{n}@{domain}"


def generate(
    *,
    customers: int = 40,
    seed: int = 7,
    enterprises: int | None = None,
    assistances: int = 3,
    progress: Progress = _noop,
    profile: str = "clean",
) -> SeedData:
    """Build the whole data set. Sizes: enterprises ~ customers/2000 (at least 3), contracts ~ half
    the customers, units ~ 1.25 per contract spread over the enterprises.

    ``profile``: ``clean`` (below) or ``realistic`` (dirty values and their ground truth, see
    ``connectors/sandbox/realistic.py``); the same seed and profile always give the same data."""
    if profile not in PROFILES:
        raise ValueError(f"unknown seed profile {profile!r}; use {' or '.join(PROFILES)}")
    if profile == "realistic":
        from connectors.sandbox.realistic import generate_realistic

        return generate_realistic(customers=customers, seed=seed, enterprises=enterprises,
                                  assistances=assistances, progress=progress)
    rng = random.Random(seed)
    data = SeedData()
    n_enterprises = enterprises or max(3, -(-customers // 2000))
    span = (REFERENCE - datetime(2024, 1, 1, tzinfo=BRT)).total_seconds()

    _customers(data, rng, customers, span, progress)
    n_contracts = customers // 2
    n_units = max(n_enterprises * 4, n_contracts + n_contracts // 4)
    _enterprises_and_units(data, rng, n_enterprises, n_units, progress)
    _contracts(data, rng, customers, n_contracts, progress)
    _assistances(data, assistances)
    return data


def _customers(data: SeedData, rng: random.Random, customers: int, span: float, progress: Progress) -> None:
    """Sienge customers: nine in ten natural persons (a third of them married), the rest companies."""
    domains = ["example.com.br", "example.com", "exemplo.net.br"]
    step = max(1, customers // 100)
    for i in range(customers):
        cid = i + 1
        city, uf, city_id, cep_prefix = CITIES[rng.randrange(len(CITIES))]
        created = REFERENCE - timedelta(seconds=rng.random() * span)
        modified = created + timedelta(seconds=rng.random() * (REFERENCE - created).total_seconds())
        phone = f"{DDD[uf]}9{rng.randrange(10**8):08d}"
        address = {
            "type": "Residencial",
            "streetName": STREETS[rng.randrange(len(STREETS))],
            "number": str(rng.randrange(1, 3000)),
            "complement": f"Apto {rng.randrange(101, 1500)}" if rng.random() < 0.5 else "",
            "neighborhood": NEIGHBORHOODS[rng.randrange(len(NEIGHBORHOODS))],
            "cityId": city_id,
            "city": city,
            "state": uf,
            "zipCode": f"{cep_prefix}{rng.randrange(10**6):06d}",
            "mail": True,
        }
        if rng.random() < 0.1:  # legal person; a third of them with the new alphanumeric CNPJ
            record = _company(rng, cid, created)
        else:
            record = _person(rng, cid, uf, created, domains)
        record.update(
            {
                "createdAt": iso(created),
                "modifiedAt": iso(modified),
                "clientType": "Cliente",
                "mailingAddress": "R",
                "phones": [{"number": phone, "main": True, "type": "Celular", "idd": "55", "note": ""}],
                "addresses": [address],
            }
        )
        data.customers.append(record)
        if i % step == 0:
            progress("customers", i, customers)
    progress("customers", customers, customers)


def _company(rng: random.Random, cid: int, created: datetime) -> dict[str, Any]:
    """A legal person's own fields (a third of them with the new alphanumeric CNPJ)."""
    name = f"{COMPANY_NAMES[rng.randrange(len(COMPANY_NAMES))]} " \
           f"{COMPANY_WORDS[rng.randrange(len(COMPANY_WORDS))]} Ltda"
    return {
        "id": cid,
        "personType": "Jurídica",
        "name": name,
        "fantasyName": name.replace(" Ltda", ""),
        "cnpj": make_cnpj(rng, alphanumeric=rng.random() < 0.34),
        "email": _email(name, cid, "empresa.example.com.br"),
        "establishmentDate": (created - timedelta(days=rng.randrange(365, 9000))).date().isoformat(),
        "stateRegistrationNumber": f"{rng.randrange(10**9):09d}",
        "contactName": f"{FIRST_F[rng.randrange(len(FIRST_F))]} {SURNAMES[rng.randrange(len(SURNAMES))]}",
    }


def _person(rng: random.Random, cid: int, uf: str, created: datetime, domains: list[str]) -> dict[str, Any]:
    """A natural person's own fields, with a spouse when married."""
    female = rng.random() < 0.5
    first = (FIRST_F if female else FIRST_M)[rng.randrange(len(FIRST_F if female else FIRST_M))]
    name = f"{first} {SURNAMES[rng.randrange(len(SURNAMES))]} {SURNAMES[rng.randrange(len(SURNAMES))]}"
    married = rng.random() < 0.35
    record: dict[str, Any] = {
        "id": cid,
        "personType": "Física",
        "name": name,
        "cpf": make_cpf(rng),
        "email": _email(name, cid, domains[rng.randrange(len(domains))]),
        "birthDate": date(1950 + rng.randrange(55), 1 + rng.randrange(12), 1 + rng.randrange(28)).isoformat(),
        "sex": "Feminino" if female else "Masculino",
        "civilStatus": "Casado(a)" if married else ("Solteiro(a)" if rng.random() < 0.8 else "Divorciado(a)"),
        "nationality": "Brasileira",
        "numberIdentityCard": f"{rng.randrange(10**7):07d}",
        "issuingBody": f"SSP/{uf}",
        "profession": PROFESSIONS[rng.randrange(len(PROFESSIONS))],
        "foreigner": "N",
    }
    if married:
        s_female = not female
        s_first = (FIRST_F if s_female else FIRST_M)[rng.randrange(len(FIRST_F))]
        s_name = f"{s_first} {name.split()[-1]}"
        record["matrimonialRegime"] = "Comunhão parcial de bens"
        record["marriageDate"] = (created - timedelta(days=rng.randrange(100, 9000))).date().isoformat()
        record["spouse"] = {
            "cpf": make_cpf(rng),
            "name": s_name,
            "email": _email(s_name, cid, domains[0]),
            "sex": "F" if s_female else "M",
            "birthDate": date(1950 + rng.randrange(55), 1 + rng.randrange(12), 1 + rng.randrange(28)).isoformat(),
            "cellphoneNumber": f"0{DDD[uf]}9{rng.randrange(10**8):08d}",
        }
    return record


def _enterprises_and_units(
    data: SeedData, rng: random.Random, n_enterprises: int, n_units: int, progress: Progress
) -> None:
    """Enterprises and their apartments, ``n_units`` spread evenly over them (towers of 48)."""
    per_enterprise = -(-n_units // n_enterprises)
    unit_id = 0
    for e in range(n_enterprises):
        eid = e + 1
        city, uf, _, cep_prefix = CITIES[e % len(CITIES)]
        base_name = ENTERPRISE_NAMES[e % len(ENTERPRISE_NAMES)]
        name = base_name if e < len(ENTERPRISE_NAMES) else f"{base_name} {e // len(ENTERPRISE_NAMES) + 1}"
        created = REFERENCE - timedelta(days=900 - e)
        delivery = (REFERENCE + timedelta(days=rng.randrange(-400, 700))).date().isoformat()
        street = STREETS[rng.randrange(len(STREETS))]
        data.enterprises.append(
            {
                "id": eid,
                "name": name,
                "commercialName": name,
                "cnpj": make_cnpj(rng, alphanumeric=e % 3 == 2),
                "type": "1",
                "adress": f"{street}, {100 + e}, {city} - {uf}",
                "addressDetails": {"streetName": street, "number": str(100 + e), "complement": "",
                                   "neighborhood": NEIGHBORHOODS[e % len(NEIGHBORHOODS)], "city": city,
                                   "state": uf, "zipCode": f"{cep_prefix}{rng.randrange(10**6):06d}"},
                "companyId": 1,
                "companyName": "Ponte Incorporações S.A.",
                "creationDate": created.date().isoformat(),
                "modificationDate": (created + timedelta(days=30)).date().isoformat(),
                "createdBy": "sandbox",
                "modifiedBy": "sandbox",
                "buildingTypeId": 1,
                "buildingTypeDescription": "Residencial",
                "buildingStatus": "IN_PROGRESS",
                "buildingEnabledForIntegration": True,
                "salesDetails": {"keysDelivery": delivery},
            }
        )
        towers = max(1, per_enterprise // 48)
        for u in range(per_enterprise):
            if unit_id >= n_units:
                break
            unit_id += 1
            tower = u % towers + 1
            floor = (u // towers) // 4 + 1
            name_u = f"Torre {tower} - Apto {floor}{(u // towers) % 4 + 1:02d}" if towers > 1 else \
                f"Apto {floor}{u % 4 + 1:02d}"
            data.units.append(
                {
                    "id": unit_id,
                    "enterpriseId": eid,
                    "name": name_u,
                    "propertyType": "Apartamento",
                    "commercialStock": "D",
                    "floor": str(floor),
                    "privateArea": round(45 + rng.random() * 90, 2),
                    "commonArea": round(10 + rng.random() * 30, 2),
                    "deliveryDate": delivery,
                    "terrainValue": round(20000 + rng.random() * 80000, 2),
                    "groupings": [{"groupingDescription": "Torre", "valueGroupingDescription": str(tower)}],
                    "childUnits": [],
                    "specialValues": [],
                    "links": [],
                }
            )
    progress("units", len(data.units), len(data.units))



def _contracts(data: SeedData, rng: random.Random, customers: int, n_contracts: int, progress: Progress) -> None:
    """Sales contracts: one unit each, one or two buyers; about one in ten cancelled (distrato)."""
    unit_order = list(range(len(data.units)))
    rng.shuffle(unit_order)
    buyers = list(range(customers))
    rng.shuffle(buyers)
    enterprise_by_id = {e["id"]: e for e in data.enterprises}
    b = 0
    for k in range(min(n_contracts, len(data.units))):
        unit = data.units[unit_order[k]]
        enterprise = enterprise_by_id[unit["enterpriseId"]]
        if b >= len(buyers):
            break
        main = data.customers[buyers[b]]
        b += 1
        parties = [main]
        if rng.random() < 0.3 and b < len(buyers):
            parties.append(data.customers[buyers[b]])
            b += 1
        contract_date = REFERENCE - timedelta(days=rng.randrange(1, 700))
        roll = rng.random()
        situation = "2" if roll < 0.7 else "1" if roll < 0.8 else "0" if roll < 0.9 else "3"
        value = round(250000 + rng.random() * 900000, 2)
        share = round(100 / len(parties), 2)
        contract: dict[str, Any] = {
            "id": k + 1,
            "companyId": 1,
            "companyName": "Ponte Incorporações S.A.",
            "enterpriseId": enterprise["id"],
            "enterpriseName": enterprise["name"],
            "receivableBillId": 5000 + k + 1,
            "number": f"{enterprise['id']:03d}/{k + 1:06d}",
            "situation": situation,
            "contractDate": contract_date.date().isoformat(),
            "issueDate": (contract_date + timedelta(days=3)).date().isoformat() if situation in "23" else None,
            "expectedDeliveryDate": unit["deliveryDate"],
            "value": value,
            "totalSellingValue": value,
            "correctionType": "INCC",
            "createdAt": iso(contract_date),
            "modifiedAt": iso(contract_date + timedelta(days=rng.randrange(0, 30))),
            "salesContractCustomers": [
                {"id": p["id"], "name": p["name"], "main": idx == 0, "spouse": False,
                 "participationPercentage": share}
                for idx, p in enumerate(parties)
            ],
            "salesContractUnits": [
                {"id": unit["id"], "main": True, "name": unit["name"], "participationPercentage": 100}
            ],
            "paymentConditions": [
                {"conditionTypeId": "PM", "conditionTypeName": "Parcelas mensais", "installmentsNumber": 120,
                 "totalValue": value, "outstandingBalance": round(value * rng.random(), 2)}
            ],
            "brokers": [],
            "links": [],
        }
        if situation == "3":
            cancel = contract_date + timedelta(days=rng.randrange(30, 200))
            contract["cancellationDate"] = cancel.date().isoformat()
            contract["cancellationReason"] = "Distrato a pedido do cliente"
            contract["modifiedAt"] = iso(cancel)
        else:
            unit["commercialStock"] = "V"
            unit["contractId"] = contract["id"]
            unit["contractNumber"] = contract["number"]
        if contract["issueDate"] is None:
            del contract["issueDate"]
        data.contracts.append(contract)
    progress("contracts", len(data.contracts), len(data.contracts))



def _assistances(data: SeedData, assistances: int) -> None:
    """Technical-assistance requests opened in the CRM on the first live contracts."""
    live = [c for c in data.contracts if c["situation"] == "2"]
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
        data.crm_assistencias.append(
            {
                "idassistencia": a + 1,
                "idatendimento": 9000 + a + 1,
                "protocolo_atendimento": f"AT-2026-{a + 1:05d}",
                "documento": customer.get("cpf") or customer.get("cnpj"),
                "contract_id": contract["id"],
                "unit_id": contract["salesContractUnits"][0]["id"],
                "enterprise_id": contract["enterpriseId"],
                "descricao": f"Solicitação de assistência técnica: {items[0]['descricao'].lower()}",
                "itens": items,
                "aberta_em": iso(REFERENCE - timedelta(days=3 - a % 3)),
            }
        )
