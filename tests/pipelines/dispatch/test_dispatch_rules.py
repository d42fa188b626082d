"""Tenant-wide stops (package, unverified e-mail), template PDFs, and the chain rules as properties."""

from __future__ import annotations

from datetime import date

import pypdfium2 as pdfium
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.dispatch.documents import contract_document
from pipelines.dispatch.flow import DispatchRequest, run_dispatch
from pipelines.dispatch.package import PackageError
from pipelines.dispatch.signers import ChainMember, check_people, due_for_invitation, role_of
from pipelines.dispatch.variables import VARIABLES, contract_context
from pipelines.dispatch.verify import UnverifiedEmailError
from pipelines.documents.render import SAMPLE_CONTEXT
from pipelines.store.db import Store
from ponte.errors import DataError
from schemas.canonical.signing import Contract
from schemas.tenant import SignerSlot, TenantOptions
from tests.pipelines.dispatch.support import seed_sale, verify_manager
from tests.support.tenants import sandbox_tenant


def test_nothing_is_sent_before_a_manager_email_is_verified(sb, store: Store) -> None:
    tenant = sandbox_tenant(sb, tenant_id="unverified", unthrottled=True)
    sale = seed_sale(sb, tenant)
    before = len(sb.state.docusign.envelopes)
    with pytest.raises(UnverifiedEmailError, match="no contract-manager e-mail is verified"):
        run_dispatch(store, tenant, DispatchRequest(contracts=[sale.ref]))
    assert len(sb.state.docusign.envelopes) == before


def test_package_warns_and_then_stops_when_used_up(sb, store: Store) -> None:
    package = {"id": "p2", "size": 2, "valid_from": "2026-01-01", "valid_until": "2030-12-31"}
    finance = f"financeiro-{store.dialect}@pkg.example.com"  # the module's sandbox inbox is shared
    tenant = sandbox_tenant(sb, tenant_id="pkg", unthrottled=True,
                            options={"envelope_package": package, "responsible_emails": [finance]})
    verify_manager(store, tenant)
    sales = [seed_sale(sb, tenant, roles=("titular",)) for _ in range(3)]
    report = run_dispatch(store, tenant, DispatchRequest(contracts=[s.ref for s in sales[:2]]))
    assert [o.result for o in report.outcomes] == ["sent", "sent"]
    notices = sb.smtp.wait_for(to=finance, count=3)
    assert sorted(m.subject for m in notices) == sorted(
        f"Pacote de envelopes p2: {p}% utilizado" for p in (80, 95, 100))
    before = len(sb.state.docusign.envelopes)
    with pytest.raises(PackageError, match=r"used up \(2 of 2 envelopes\)"):
        run_dispatch(store, tenant, DispatchRequest(contracts=[sales[2].ref]))
    assert len(sb.state.docusign.envelopes) == before
    assert len(sb.smtp.inbox(to=finance)) == 3  # each notice once


def test_expired_package_stops_sending(sb, store: Store) -> None:
    package = {"id": "old", "size": "unlimited", "valid_from": "2025-01-01", "valid_until": "2025-12-31"}
    tenant = sandbox_tenant(sb, tenant_id="expired", unthrottled=True, options={"envelope_package": package})
    verify_manager(store, tenant)
    sale = seed_sale(sb, tenant, roles=("titular",))
    with pytest.raises(PackageError, match="expired on 2025-12-31"):
        run_dispatch(store, tenant, DispatchRequest(contracts=[sale.ref]))


def test_plan_reports_without_sending(sb, store: Store) -> None:
    tenant = sandbox_tenant(sb, tenant_id="plan", unthrottled=True)
    sale = seed_sale(sb, tenant)
    before = len(sb.state.docusign.envelopes)
    report = run_dispatch(store, tenant, DispatchRequest(contracts=[sale.ref], plan=True))
    assert [(o.result, len(o.signers), o.positions) for o in report.outcomes] == [("would_send", 3, 3)]
    assert len(sb.state.docusign.envelopes) == before


def _contract(**variables: str) -> Contract:
    return Contract(source_id="9", reservation_id="1", title="Contrato Teste", document_source="template",
                    template="compra_e_venda", variables=variables)


RECORD = {"idreservacontrato": 9, "unidade": "Apto 502", "empreendimento": "Residencial Ponte",
          "data_venda": "20/11/2026", "pessoas": [{"papel": "titular", "nome": "Maria Aparecida",
                                                   "documento": "52998224725"}]}


def test_template_pdf_shows_the_variables_in_an_independent_reader(sb) -> None:
    tenant = sandbox_tenant(sb)
    doc = contract_document(RECORD, _contract(), tenant, None, context=SAMPLE_CONTEXT, terms="with_contract")
    pdf = pdfium.PdfDocument(doc.content)
    text = " ".join(pdf[i].get_textpage().get_text_range() for i in range(len(pdf))).replace("\r\n", " ")
    for value in ("Maria Conceição Souza", "529.982.247-25", "Apartamento 1203, Bloco B",
                  "Residencial Jardim dos Ipês", "R$ 450.000,00", "R$ 2.500,00", "João Antônio Souza",
                  "Termo de ciência"):
        assert value in text
    assert doc.pages == len(pdf) and doc.source == "template"


def test_template_missing_variable_is_an_error_naming_it(sb) -> None:
    """The CRM alone (no Sienge read) lacks the development's CNPJ: the contract is refused naming it."""
    tenant = sandbox_tenant(sb)
    context = contract_context(RECORD, _contract(), tenant)
    with pytest.raises(DataError, match=r"contract 9") as info:
        contract_document(RECORD, _contract(), tenant, None, context=context)
    assert info.value.field and info.value.field.split(".")[0] in VARIABLES


# ------------------------------------------------------------------------------------- properties

ROLES = ["titular", "Cônjuge", "testemunha", "corretor"]
people_st = st.lists(st.fixed_dictionaries({
    "papel": st.sampled_from(ROLES),
    "nome": st.sampled_from(["Ana Souza", "", None]),
    "documento": st.sampled_from(["52998224725", None, ""]),
    "email": st.sampled_from(["a@example.com", None]),
    "celular": st.sampled_from(["48991234567", None]),
}), max_size=5)
chain_st = st.permutations(["client", "spouse", "witness"]).flatmap(lambda roles: st.tuples(
    st.just(roles), st.lists(st.booleans(), min_size=3, max_size=3),
    st.lists(st.sampled_from([None, "email", "whatsapp"]), min_size=3, max_size=3)))


@settings(max_examples=300, deadline=None)
@given(people=people_st, chain=chain_st)
def test_every_unreachable_signer_is_reported_never_skipped(people, chain) -> None:
    roles, required, channels = chain
    options = TenantOptions(signer_chain=[SignerSlot(role=r, order=i + 1, required=q, channel=c)
                                          for i, (r, q, c) in enumerate(zip(roles, required, channels, strict=True))])
    problems = check_people(people, options, "docusign")
    slots = {s.role.value: s for s in options.signer_chain}
    in_chain = [p for p in people if role_of(p["papel"]) in slots]
    firsts = {role_of(p["papel"]): p for p in reversed(in_chain)}
    for role, person in firsts.items():
        channel = (slots[role].channel or options.default_channel).value
        fields = {p.field for p in problems if p.role == role}
        assert (not person["documento"]) <= ("documento" in fields)
        assert (not person["email"]) <= ("email" in fields)  # docusign needs one for everybody
        assert (channel == "whatsapp" and not person["celular"]) <= ("celular" in fields)
    for role, slot in slots.items():
        assert (slot.required and role not in firsts) <= any(p.role == role and p.field == "pessoas" for p in problems)
    if not problems:  # a clean contract: every chain member fully reachable
        assert all(p["documento"] and p["email"] and p["nome"] for p in firsts.values())


members_st = st.lists(st.tuples(st.integers(1, 4), st.sampled_from(["sent", "waiting", "signed", "declined"]),
                                st.booleans()), max_size=6)


@settings(max_examples=300, deadline=None)
@given(rows=members_st)
def test_only_the_lowest_unsigned_order_is_invited_and_only_once(rows) -> None:
    members = [ChainMember(i, order, status, notified) for i, (order, status, notified) in enumerate(rows)]
    due = set(due_for_invitation(members))
    for m in members:
        if m.key in due:
            assert not m.notified and m.status not in ("signed", "declined")
            assert all(o.status == "signed" for o in members if o.routing_order < m.routing_order)
    if any(m.status == "declined" for m in members):
        assert not due
    pending = [m for m in members if m.status != "signed"]
    if pending and not any(m.status == "declined" for m in members):
        lowest = min(m.routing_order for m in pending)
        assert due == {m.key for m in pending if m.routing_order == lowest and not m.notified}


def test_package_dates_are_checked_in_the_developers_calendar() -> None:
    from pipelines.dispatch.package import today

    assert isinstance(today(), date)
