"""CV CRM payloads that mappings read or write (field names as CV CRM spells them).

CV CRM writes dates as ``DD/MM/AAAA`` and keeps the ERP's ids in ``*_int`` fields (``idpessoa_int`` is
the Sienge customer id, ``idunidade_int`` the Sienge unit id), which is how an import finds what it
created before. Its webhooks carry ids only; these models are the bodies of the REST reads and writes.

The person record is both the upsert body (``POST /v1/cadastros/clientes``, keyed by ``documento``) and
what ``GET /v1/cadastros/clientes`` returns per person. When a person changed in Sienge, the import reads
the stored person by its CV id, merges by field ownership and upserts the result, so the CRM's own
enrichments (``contatos``, ``associacoes``) survive whether CV's upsert keeps or drops the fields a body
leaves out (docs/imports.md, "Field ownership").

**Field limits.** ``max_length`` on the fields Ponte writes is what CV CRM takes. CV CRM publishes no
field sizes (PROVIDERS.md §2 gives only the required fields), so every limit here is UNCONFIRMED and
chosen conservatively: at most what a CRM column of that kind holds, at least what real records need
(names past 100 characters exist). The import checks them where the payload is made
(``pipelines/imports/translate.py``): a longer value is a dead letter naming the field and the limit,
never a truncated or refused write. Change a value here once CV CRM confirms another one.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.systems.base import Payload, RequestBody

#: said with every limit of this module in errors: CV CRM does not publish its field sizes
UNCONFIRMED_LIMIT = "an UNCONFIRMED, conservative limit: CV CRM publishes no field sizes (schemas/systems/cvcrm.py)"


class CvContato(Payload):
    """A contact the CRM team added to a person (not known to Sienge)."""

    nome: str | None = None
    telefone: str | None = None
    email: str | None = None
    tipo: str | None = Field(None, description="e.g. recado, comercial, parente")


class CvAssociacao(Payload):
    """A relation the CRM recorded between people (spouse, co-buyer, attorney)."""

    idpessoa: int | None = None
    documento: str | None = None
    tipo: str = Field(description="conjuge, cocomprador, procurador, ...")


class CvConjuge(Payload):
    nome: str | None = Field(None, max_length=150)
    documento: str | None = Field(None, max_length=14)
    email: str | None = Field(None, max_length=150)
    celular: str | None = Field(None, max_length=20)
    data_nascimento: str | None = Field(None, max_length=10)


class CvCliente(Payload):
    """A CV CRM person: upsert body of ``POST /v1/cadastros/clientes`` and one ``pessoas[]`` item."""

    idpessoa: int | None = Field(None, description="CV CRM's own id (reads only)")
    idpessoa_int: str = Field(max_length=50, description="The ERP (Sienge) customer id")
    nome: str = Field(min_length=1, max_length=150)
    documento_tipo: Literal["cpf", "cnpj"]
    documento: str = Field(
        max_length=14, description="CPF or CNPJ, digits (letters allowed in an alphanumeric CNPJ)"
    )
    telefone: str = Field(max_length=20, description="National format, e.g. (48) 99123-4567")
    email: str = Field(max_length=150)
    celular: str | None = Field(None, max_length=20)
    data_nascimento: str | None = Field(None, max_length=10, description="DD/MM/AAAA")
    estado_civil: str | None = Field(None, max_length=30)
    sexo: str | None = None
    nome_fantasia: str | None = None
    cep: str | None = Field(None, max_length=9)
    endereco: str | None = Field(None, max_length=150)
    numero: str | None = Field(None, max_length=20)
    complemento: str | None = Field(None, max_length=100)
    bairro: str | None = Field(None, max_length=100)
    cidade: str | None = Field(None, max_length=100)
    estado: str | None = Field(None, max_length=2)
    conjuge: CvConjuge | None = None
    contatos: list[CvContato] = Field(default_factory=list)
    associacoes: list[CvAssociacao] = Field(default_factory=list)


class CvReservaPessoa(Payload):
    """The people list an earlier Ponte sent with a reservation. CV CRM does not store it (a reservation
    holds its titular and ``associados``); kept so mappings written against it still load."""

    idpessoa: int | None = Field(None, description="CV CRM person id (from the id map)")
    idpessoa_int: str
    documento: str | None = None
    nome: str | None = None
    principal: bool = False
    conjuge: bool = False
    percentual: str | None = Field(None, description="Share, e.g. '50.00'")


class CvReservaAssociado(Payload):
    """A buyer of a reservation besides its titular, as CV CRM keeps them (``associados[]``).

    The shape ``{idpessoa, tipo}`` is what the sandbox stores and the dispatch flow reads back; CV CRM
    does not document it (UNCONFIRMED, docs/imports.md). ``tipo`` is ``conjuge`` for a buyer Sienge marks
    as a spouse and ``cocomprador`` otherwise: the words the dispatch flow's signer roles understand."""

    idpessoa: int = Field(description="CV CRM person id (from the id map)")
    tipo: str = Field(max_length=30, description="conjuge, cocomprador")


class CvCondicaoPagamento(Payload):
    serie: str = Field(max_length=60)
    quantidade: int
    valor_total: str = Field(max_length=20)


class CvReserva(Payload):
    """A reservation (sale) written with ``POST/PUT /v1/comercial/reservas``: the main buyer as the
    titular (``idpessoa``), every other buyer in ``associados``."""

    idreserva: int | None = Field(None, description="CV CRM's own id (reads only)")
    idreserva_int: str = Field(max_length=50, description="The Sienge sales contract id")
    numero_contrato: str | None = Field(None, max_length=60)
    idempreendimento_int: str = Field(max_length=50)
    idunidade_int: str = Field(max_length=50)
    idpessoa: int | None = Field(None, description="Main buyer's (titular's) CV CRM person id")
    idpessoa_int: str = Field(max_length=50)
    situacao: Literal["solicitada", "autorizada", "vendida", "cancelada"]
    data_venda: str | None = Field(None, max_length=10, description="DD/MM/AAAA")
    data_emissao: str | None = Field(None, max_length=10)
    valor_contrato: str = Field(max_length=20)
    associados: list[CvReservaAssociado] = Field(
        default_factory=list, description="Every buyer but the titular"
    )
    pessoas: list[CvReservaPessoa] | None = Field(
        None, description="Not stored by CV CRM and no longer sent (see CvReservaPessoa)"
    )
    unidades_int: list[str] = Field(default_factory=list)
    condicoes_pagamento: list[CvCondicaoPagamento] = Field(default_factory=list)
    data_cancelamento: str | None = Field(None, max_length=10)
    motivo_cancelamento: str | None = Field(None, max_length=500)
    observacoes: str | None = Field(None, description="Free text the CRM team writes")
    idcorretor: int | None = Field(None, description="Broker chosen in the CRM")


class CvContratoPessoa(Payload):
    """One person of the reservation, with the role CV CRM gives them on the contract."""

    papel: str = Field(description="titular, conjuge, cocomprador, testemunha, representante, ...")
    nome: str
    documento: str
    email: str | None = None
    celular: str | None = None


class CvContrato(Payload):
    """A contract of a reservation, as Ponte reads it: the ``contratos[]`` item of
    ``GET /v1/comercial/reservas/{id}/contratos`` joined with the reservation's people and values."""

    idreservacontrato: int
    idreserva: int
    idreserva_int: str | None = None
    contrato: str = Field(description="The contract's name/title")
    tipo: str | None = None
    assinado: str | None = Field(None, description="S/N")
    validado: str | None = Field(None, description="S/N")
    link: str | None = Field(None, description="Where the PDF is downloaded from")
    modelo: str | None = Field(None, description="Template name when the PDF is generated by Ponte")
    valor_contrato: str | None = None
    valor_parcela: str | None = None
    prazo_meses: int | None = None
    selfie: Literal["sim", "nao", "padrao"] | None = None
    foto_documento: Literal["sim", "nao", "padrao"] | None = None
    paginas_assinatura: str | None = Field(None, description="todas, primeira, ultima")
    pessoas: list[CvContratoPessoa] = Field(default_factory=list)


class CvEmpreendimentoRef(Payload):
    idempreendimento: int | None = None
    idempreendimento_int: str | None = None
    nome: str | None = None


class CvUnidadeRef(Payload):
    idunidade: int | None = None
    idunidade_int: str | None = None
    nome: str | None = None


class CvAssistenciaItem(Payload):
    iditem: int
    descricao: str
    situacao: str | None = None
    prazo_minimo_dias: int | None = Field(None, description="Sienge needs it; Ponte checks first")


class CvAnexo(Payload):
    nome: str
    url: str | None = None
    tipo: str | None = None


class CvAssistencia(Payload):
    """``GET /v1/relacionamento/assistencias/{id}``."""

    idassistencia: int
    idatendimento: int | None = None
    protocolo_atendimento: str | None = None
    situacao: str | None = None
    idsituacao: int | None = None
    idpessoa: int | None = None
    documento: str | None = None
    descricao: str | None = None
    data_cadastro: str | None = Field(None, description="DD/MM/AAAA HH:MM:SS or ISO, Brasília time")
    empreendimento: CvEmpreendimentoRef | None = None
    unidade: CvUnidadeRef | None = None
    itens: list[CvAssistenciaItem] = Field(default_factory=list)
    anexos: list[CvAnexo] = Field(default_factory=list)
    idassistencia_erp: str | None = Field(None, description="Sienge's id, written back by Ponte")


class CvAssistenciaUpdate(RequestBody):
    """``PUT /v1/relacionamento/assistencias/{id}`` plus the situation to move it to
    (``POST .../alterar-situacao/{idsituacao}``)."""

    idassistencia: int
    idsituacao: int | None = Field(None, description="Workflow situation id (differs per tenant)")
    idassistencia_erp: str | None = None
    data_conclusao: str | None = Field(None, description="DD/MM/AAAA")
    prioridade: Literal["A", "N", "B"] | None = None
    parecer_tecnico: str | None = None
    ativo: Literal["S", "N"] | None = None
