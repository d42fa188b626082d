"""Masking of personal data and secrets in anything a person may read (logs, CLI output, errors).

LGPD treats CPF/CNPJ, e-mail and phone as personal data; tokens and passwords are secrets. Log lines
are built from records all day long, so masking cannot rely on every caller remembering: the logging
setup runs every line through :func:`redact`. Masks keep just enough (last digits, first letter, the
e-mail domain) for an operator to tell two records apart.

Three tools, for three shapes of data:

- :func:`redact` masks free text by pattern (what a value *looks like*): log lines, error messages.
- :func:`mask_record` masks structured data by field (what a key *says it holds*), at any depth and
  whatever the value looks like: a malformed e-mail under ``email`` is still an e-mail. Dead-letter
  payloads are shown through it.
- :func:`redact_url` masks the credentials and capabilities of a URL or a request path: a file link
  whose random token alone downloads a contract, a signature in the query.
"""

from __future__ import annotations

import json
import re
import threading
import unicodedata
from collections.abc import Callable
from typing import Any

from stdnum.br import cnpj as _cnpj

_secrets: set[str] = set()
_lock = threading.Lock()

MASK = "***"


def register_secret(value: str | None) -> None:
    """Remember a secret value (e.g. read from an env var) so it is masked wherever it appears."""
    if value and len(value) >= 6:
        with _lock:
            _secrets.add(value)


def mask_cpf(value: str) -> str:
    digits = re.sub(r"\D", "", value)
    return f"***.***.***-{digits[-2:]}" if len(digits) == 11 else MASK


def mask_cnpj(value: str) -> str:
    chars = re.sub(r"[^0-9A-Za-z]", "", value)
    return f"**.***.***/****-{chars[-2:]}" if len(chars) == 14 else MASK


def mask_document(value: str) -> str:
    chars = re.sub(r"[^0-9A-Za-z]", "", value)
    return mask_cpf(value) if len(chars) == 11 else mask_cnpj(value)


def mask_email(value: str) -> str:
    """``m***@example.com``; the local part goes whatever it looks like (``a@@b.com`` included)."""
    local, _, domain = value.rpartition("@")
    first = local.strip().lstrip("@<\"'")[:1]
    return f"{first or '*'}***@{domain.strip()}" if local and domain.strip() else MASK


def mask_phone(value: str) -> str:
    digits = re.sub(r"\D", "", value)
    return f"+{'*' * max(len(digits) - 2, 3)}{digits[-2:]}" if digits else MASK


def mask_name(value: str) -> str:
    """First name and initials ("Maria A. d. S."): enough to recognise oneself, not to profile."""
    first, *rest = value.split() or [""]
    return " ".join([first, *(f"{part[0]}." for part in rest)]) if first else MASK


def mask_link(value: str) -> str:
    """A link whose path or query may be a capability: the origin stays, the rest goes."""
    match = re.match(r"\s*([A-Za-z][A-Za-z0-9+.-]*://)([^/?#\s]*)(.*)", value, re.S)
    if not match:
        return MASK
    scheme, authority, rest = match.groups()
    host = authority.rpartition("@")[2]  # user info is a credential
    return f"{scheme}{host}/{MASK}" if rest.strip("/") else f"{scheme}{host}"


# ------------------------------------------------------------------------------------ URLs and paths

#: path segments after which everything is a capability (a file token, a shared link)
TOKEN_SEGMENTS = frozenset({
    "files", "file", "download", "downloads", "arquivo", "arquivos", "token", "tokens", "share", "shared",
    "secret", "secrets",
})
_QUERY_SECRET_PARTS = frozenset({
    "token", "key", "secret", "password", "passwd", "senha", "signature", "sig", "auth", "credential",
    "credentials", "apikey", "otp", "hmac", "assinatura", "chave",
})
_QUERY_SECRET_WORDS = re.compile(r"token|secret|passw|senha|signature|apikey|api_key|credential|hmac", re.I)
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_HEX_TOKEN = re.compile(r"[0-9a-fA-F]{24,}")
_B64_TOKEN = re.compile(r"[A-Za-z0-9_-]{20,}={0,2}")


def looks_random(value: str) -> bool:
    """Whether a URL part looks like a generated token (hex digest, base64url) rather than a word or id.

    UUIDs with their dashes (envelope and account ids), numbers, slugs (``contratos-assinados``,
    ``customer_to_person_v2``) and file names do not: they name things, they do not open them.
    """
    if len(value) < 20 or _UUID.fullmatch(value) or value.isdigit():
        return False
    if _HEX_TOKEN.fullmatch(value):
        return any(c.isalpha() for c in value)
    if not _B64_TOKEN.fullmatch(value):
        return False
    digits = sum(c.isdigit() for c in value)
    upper = sum(c.isupper() for c in value)
    lower = sum(c.islower() for c in value)
    if digits >= 2 and upper >= 2 and lower >= 2:  # mixed case with digits: base64 / base62
        return True
    plain = value.replace("-", "").replace("_", "")
    return len(plain) >= 24 and plain.isalnum() and digits >= 6 and upper + lower >= 6


def _secret_param(name: str) -> bool:
    lowered = name.lower()
    parts = set(re.split(r"[^a-z0-9]+", lowered))
    return bool(parts & _QUERY_SECRET_PARTS) or bool(_QUERY_SECRET_WORDS.search(lowered))


def redact_url(url: str) -> str:
    """``url`` (absolute, or a path with its query) with its credentials and capabilities masked.

    Masked: user info; every path segment after a token-bearing one (``/files/<token>``); any segment
    that looks generated (:func:`looks_random`); query values whose name says secret (``token``,
    ``signature``, ``sig``, ``X-Amz-Signature``, ``key``...) or that look generated. Everything else
    is kept as written (nothing is re-encoded), so the line still says which endpoint was called.
    """
    if not url:
        return url
    text = str(url)
    prefix = ""
    match = re.match(r"([A-Za-z][A-Za-z0-9+.-]*://)([^/?#]*)", text)
    if match:
        authority = match.group(2)
        if "@" in authority:  # user info: the user names an account, the password opens it
            user, _, host = authority.rpartition("@")
            authority = f"{user.partition(':')[0]}{':' + MASK if ':' in user else ''}@{host}"
        prefix, text = match.group(1) + authority, text[match.end():]
    path, hash_mark, fragment = text.partition("#")
    path, question, query = path.partition("?")
    segments = path.split("/")
    masked: list[str] = []
    after_token = False
    for segment in segments:
        if after_token and segment:
            masked.append(MASK)
            continue
        masked.append(MASK if looks_random(segment) else segment)
        if segment.lower() in TOKEN_SEGMENTS:
            after_token = True
    out = prefix + "/".join(masked)
    if question:
        pairs = []
        for pair in query.split("&"):
            name, eq, value = pair.partition("=")
            if eq and value and (_secret_param(name) or looks_random(value)):
                value = MASK
            pairs.append(f"{name}{eq}{value}")
        out += "?" + "&".join(pairs)
    if hash_mark:
        out += "#" + (MASK if fragment and (looks_random(fragment) or "=" in fragment) else fragment)
    return out


# ----------------------------------------------------------------------------------- free text

_SECRET_KEYS = (
    r"authorization|x-api-key|api[_-]?key|access[_-]?token|refresh[_-]?token|client[_-]?secret|"
    r"password|passwd|senha|secret|token|signature|content-hmac|x-hub-signature-256|"
    r"x-docusign-signature-\d+"
)
#: "field credentials.password: <message>" (how PonteError names a field): a label, not key=value
_FIELD_LABEL = re.compile(r"\bfields?\s+[\w.\[\]=*-]*$", re.I)


#: words of a message, not a value, after "token:" / "secret=" ("credential token: environment variable
#: PONTE_X is not set"): left readable when the sentence goes on after them
_MESSAGE_WORDS = frozenset({
    "environment", "env", "variable", "is", "was", "not", "required", "missing", "unset", "empty", "none",
    "null", "invalid", "expired", "must", "should", "has", "have", "the", "a", "an", "no",
})
_SENTENCE_GOES_ON = re.compile(r"\s+[A-Za-z]")


def _key_value(match: re.Match[str]) -> str:
    if _FIELD_LABEL.search(match.string, max(0, match.start() - 120), match.start()):
        return match.group(0)
    value = match.group("val")
    if (not match.group("q") and value.lower() in _MESSAGE_WORDS
            and _SENTENCE_GOES_ON.match(match.string, match.end())):
        return match.group(0)
    return f"{match.group('key')}{match.group('q')}{MASK}"


def _auth_scheme(match: re.Match[str]) -> str:
    scheme, value = match.group(1), match.group(2)
    # "Token", "Basic" and "Bearer" are also ordinary words ("token expired", "Basic authentication
    # failed", "missing Bearer token."): a value of letters alone is a word, unless it is what an
    # Authorization header carries
    header = re.search(r"authorization\W*$", match.string[max(0, match.start() - 40):match.start()], re.I)
    if value.rstrip(".").isalpha() and not header:
        return match.group(0)
    if scheme.lower() == "token" and not re.search(r"[\d._~+/=-]", value):
        return match.group(0)
    return f"{scheme} {MASK}"


#: Brazilian area codes (DDD), as a pattern
_DDD = (
    "(?:1[1-9]|2[12478]|3[1-578]|4[1-9]|5[1345]|6[1-9]|7[134579]|8[1-9]|9[1-9])"
)
_MOBILE = re.compile(_DDD + "9")
#: words saying the number that follows is a document (CPF/CNPJ), or a phone
_DOCUMENT_WORDS = re.compile(r"cpf|cnpj|documento|\bdoc\b", re.I)
_PHONE_WORDS = re.compile(r"phone|fone|celular|\bcel\b|whats|mobile|\btel\b", re.I)


def _eleven_digits(match: re.Match[str]) -> str:
    """CPF or mobile phone (both are masked either way; the mask should say which).

    A number shaped like a mobile phone (an area code, then 9) is a phone unless the nearest word before
    it says document (``cpf``, ``documento``); any other eleven digits are a CPF.
    """
    digits = match.group(0)
    if not _MOBILE.match(digits):
        return mask_cpf(digits)
    before = match.string[max(0, match.start() - 32):match.start()]
    document = [m.end() for m in _DOCUMENT_WORDS.finditer(before)]
    phone = [m.end() for m in _PHONE_WORDS.finditer(before)]
    if document and (not phone or document[-1] > phone[-1]):
        return mask_cpf(digits)
    return mask_phone(digits)


_PATTERNS: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    # URLs first: their tokens and signatures go before any other pattern splits them.
    # (a URL ends before quotes, backslashes and the punctuation that closes a sentence)
    (
        re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>`\\]*[^\s\"'<>`\\.,;:!?)\]}]"),
        lambda m: redact_url(m.group(0)),
    ),
    # Request paths on their own ("GET /files/<token> answered 404", an access log's path); a slash
    # inside a word or a mask (a masked CNPJ's "/****-81") does not start one.
    (
        re.compile(r"(?<![\w.:/~*-])/[^\s\"'<>`\\]*[^\s\"'<>`\\.,;:!?)\]}]"),
        lambda m: redact_url(m.group(0)),
    ),
    # Authorization schemes, so the token after "Bearer" is masked whatever precedes it (a scheme word
    # after a scheme word is not its value: "Bearer Bearer x.y" masks x.y).
    (re.compile(r"\b(Bearer|Basic|Token)\s+(?!(?:Bearer|Basic|Token)\b)([A-Za-z0-9._~+/=-]{6,})", re.I),
     _auth_scheme),
    # key=value / "key": "value" / key: value
    (
        re.compile(
            rf"""(?P<key>["']?(?:{_SECRET_KEYS})["']?\s*[:=]\s*)(?P<q>["']?)(?P<val>[^\s"',;&}}]+)""",
            re.I,
        ),
        _key_value,
    ),
    # E-mail addresses, malformed ones too (a doubled @, two addresses run together: one mask).
    (
        re.compile(r"\b[A-Za-z0-9._%+-]+(?:@+[A-Za-z0-9._%+-]+)*@+[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+\b"),
        lambda m: mask_email(m.group(0)),
    ),
    # Formatted CNPJ, numeric or alphanumeric (12.ABC.345/01DE-35).
    (
        re.compile(r"(?<![\w*])[0-9A-Z]{2}\.[0-9A-Z]{3}\.[0-9A-Z]{3}/[0-9A-Z]{4}-\d{2}\b"),
        lambda m: mask_cnpj(m.group(0)),
    ),
    # Formatted CPF.
    (re.compile(r"(?<![\w*])\d{3}\.\d{3}\.\d{3}-\d{2}\b"), lambda m: mask_cpf(m.group(0))),
    # Phones: +55 (11) 98765-4321, (11) 98765-4321, +5511987654321.
    (
        re.compile(r"(?<![\w*])\+\d[\d\s().-]{9,18}\d\b|\(\d{2}\)\s?9?\d{4}[-\s]?\d{4}\b"),
        lambda m: mask_phone(m.group(0)),
    ),
    # Phones written with an area code and separators: 48 99123-4567, 48 9 9123-4567, 11 98765 4321,
    # 55 48 99123-4567, 48 3222-1100 (a landline takes a dash, so number lists are not phones).
    (
        re.compile(
            rf"(?<![\w*+.,/-])(?:55[ -])?{_DDD}[ -]?(?:9[ .]?\d{{4}}[ .-]|[2-5]\d{{3}}-)\d{{4}}(?![\w-])"
        ),
        lambda m: mask_phone(m.group(0)),
    ),
    # Bare 14 digits (CNPJ) and 10-13 digits (CPF, phones with area code): masked whatever they are.
    (re.compile(r"(?<![\w*])\d{14}(?!\w)"), lambda m: mask_cnpj(m.group(0))),
    (re.compile(r"(?<![\w*])\d{11}(?!\w)"), _eleven_digits),
    (re.compile(r"(?<![\w*])(?:\d{10}|\d{12,13})(?!\w)"), lambda m: mask_phone(m.group(0))),
    # Bare alphanumeric CNPJ: only when its check digits are right (random ids look alike).
    (
        re.compile(r"(?<![\w*])[0-9A-Z]{12}\d{2}(?!\w)"),
        lambda m: mask_cnpj(m.group(0)) if _cnpj.is_valid(m.group(0)) else m.group(0),
    ),
]


def redact(text: str) -> str:
    """Return ``text`` with personal data and secrets masked."""
    if not text:
        return text
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    # A mask keeps a value's last two characters, and those can join what follows into something that
    # reads like another value ("…/****-12" + ".ABC.345/01DE-35"): pass again until nothing changes, so
    # masking what is already masked changes nothing (a line with nothing to mask costs one pass).
    for _ in range(_MAX_PASSES):
        masked = _one_pass(text)
        if masked == text:
            break
        text = masked
    return text


_MAX_PASSES = 4


def _one_pass(text: str) -> str:
    for pattern, replace in _PATTERNS:
        text = pattern.sub(replace, text)
    return text


# ----------------------------------------------------------------------------- structured data

_NAME_KEYS = frozenset({
    "nome", "name", "nomecompleto", "fullname", "firstname", "lastname", "surname", "sobrenome",
    "primeironome", "ultimonome", "nomesocial", "socialname", "contactname", "nomecontato", "nomeconjuge",
    "conjugenome", "spousename", "mothername", "nomemae", "nomedamae", "fathername", "nomepai",
    "nomedopai", "signername", "nomesignatario", "recipientname", "displayname", "personname",
    "customername", "clientname", "clientename", "nomecliente", "nomepessoa", "pessoanome",
    "nomeresponsavel", "responsavelnome", "nomecorretor", "corretornome",
})
_DOCUMENT_KEYS = frozenset({
    "doc", "docs", "rg", "taxid", "nationalid", "passport", "passaporte", "identidade", "identitycard",
    "numberidentitycard", "ssn", "nif",
})
_DOCUMENT_KEY = re.compile(r"(?:numero|num|nro)?(?:documento?s?|doc)(?:numero|number|num|nro|valor|value)?")
_SECRET_KEY = re.compile(
    r"passw|senha|secret|token|apikey|accesskey|privatekey|authorization|signature|hmac|credential|cookie|"
    r"verificationcode|codigoverificacao|^otp|otp$|^pin$|^cvv$"
)
_PHONE_KEY = re.compile(r"phone|fone|celular|whatsapp|mobile|^tel$|^cel$|^fax$|telefax")
_EMAIL_KEY = re.compile(r"email|^mail$|^mails$|mail$|^correio")
_LINK_KEY = re.compile(r"^(?:links?|urls?|hrefs?|uris?)$|(?:link|url|uri|href)s?$")


def _normal_key(key: str) -> str:
    text = unicodedata.normalize("NFKD", str(key))
    return re.sub(r"[^a-z0-9]", "", "".join(c for c in text if not unicodedata.combining(c)).lower())


def field_kind(key: Any) -> str | None:
    """What personal data or secret a field holds, by its name: ``secret``, ``email``, ``phone``,
    ``document``, ``name``, ``link``, or None for anything else."""
    k = _normal_key(str(key))
    if not k:
        return None
    if _SECRET_KEY.search(k):
        return "secret"
    if _EMAIL_KEY.search(k):
        return "email"
    if _PHONE_KEY.search(k):
        return "phone"
    if "cpf" in k or "cnpj" in k or k in _DOCUMENT_KEYS or _DOCUMENT_KEY.fullmatch(k):
        return "document"
    if k in _NAME_KEYS:
        return "name"
    if _LINK_KEY.search(k):
        return "link"
    return None


_MASKERS: dict[str, Callable[[str], str]] = {
    "secret": lambda _value: MASK,
    "email": mask_email,
    "phone": mask_phone,
    "document": lambda value: mask_document(value) if value.strip() else MASK,
    "name": mask_name,
    "link": mask_link,
}


def mask_value(kind: str, value: Any) -> Any:
    """``value`` masked as a ``kind`` field (see :func:`field_kind`), whatever it looks like."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, dict | list | tuple):
        return mask_record(value, kind=kind)
    text = str(value)
    return _MASKERS[kind](text) if text.strip() else text


def mask_record(data: Any, *, kind: str | None = None, keep: frozenset[str] | set[str] = frozenset()) -> Any:
    """A copy of ``data`` (dicts and lists at any depth) with each personal or secret field masked by
    its key, whatever its value looks like; under such a key everything below is masked too. Other
    text is masked by pattern (:func:`redact`), and a string holding JSON is masked inside.

    ``kind`` masks all of ``data`` as that kind; ``keep`` names kinds not to mask by key (``{"name"}``
    where names are what the reader checks, as in `ponte mapping test`).
    """
    if isinstance(data, dict):
        out = {}
        for key, value in data.items():
            found = field_kind(key)
            out[key] = mask_record(value, kind=kind if found is None or found in keep else found, keep=keep)
        return out
    if isinstance(data, list | tuple):
        return [mask_record(item, kind=kind, keep=keep) for item in data]
    if kind is not None:
        return mask_value(kind, data)
    if not isinstance(data, str):
        return data
    if data[:1] in "{[" and data[-1:] in "}]":
        try:
            inner = json.loads(data)
        except ValueError:
            inner = None
        if isinstance(inner, dict | list):
            return json.dumps(mask_record(inner, keep=keep), ensure_ascii=False)
    return redact(data)
