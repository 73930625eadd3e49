"""CSV in and out: sniffing (encoding, delimiter, header), rows -> records, contacts -> rows.

Reading streams the file in constant memory. The bytes are parsed by the ``csv`` module as Latin-1
(a lossless byte -> character mapping; delimiters, quotes and line breaks are ASCII in UTF-8 and in
the 8-bit Windows/ISO encodings alike) and each cell is then decoded with the detected encoding, so
a stray Windows-1252 cell in a UTF-8 file is read rather than stopping the import. UTF-16 files
(with a BOM) are decoded as text directly.

Encoding detection, on the first 256 KiB: a BOM decides (UTF-8, UTF-16); bytes that are valid UTF-8
are UTF-8; otherwise bytes 0x80-0x9F (quotes, dashes, the euro sign of Windows-1252, control codes
in ISO-8859-x) mean Windows-1252; otherwise the letters ISO-8859-15 has where Latin-1 has symbols
(œ, Œ, €, Š, š, Ž, ž, Ÿ; Outlook in French writes ISO-8859-15) mean ISO-8859-15; otherwise
Windows-1252 (= Latin-1 for every letter).
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache, lru_cache
from itertools import islice
from typing import IO, Any

from crmcore.interchange import ImportRecord
from crmcore.interchange.headers import ADDRESS_PARTS, Column
from crmcore.services.text import fold

SAMPLE_SIZE = 256 * 1024
DELIMITERS = (",", ";", "\t", "|")
#: Cells longer than this are refused by the csv module (its default is 128 KiB).
MAX_CELL = 16 * 1024 * 1024
_ISO_8859_15_LETTERS = frozenset(b"\xa4\xa6\xa8\xb4\xb8\xbc\xbd\xbe")
_LIST_SPLIT = re.compile(r"\s*(?::::|;|,)\s*")
_PHONE_SPLIT = re.compile(r"\s*(?::::|;)\s*")
_TAG_SPLIT = re.compile(r"\s*(?::::|;|,)\s*")
_FORMULA = ("=", "@", "\t", "\r")
_NUMBER_LIKE = re.compile(r"[+-][\d\s().\-/]*")  # phone numbers, negative numbers

csv.field_size_limit(max(csv.field_size_limit(), MAX_CELL))


def detect_encoding(head: bytes, complete: bool = False) -> str:
    """The encoding of a file starting with ``head`` (``complete``: head is the whole file)."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        decoder.decode(head, final=complete)  # a character cut at the end of the sample is fine
        return "utf-8"
    except UnicodeDecodeError:
        pass
    if any(0x80 <= byte <= 0x9F for byte in head):
        return "cp1252"
    if _ISO_8859_15_LETTERS.intersection(head):
        return "iso8859-15"
    return "cp1252"


def detect_delimiter(sample: str) -> str:
    """Comma, semicolon, tab or pipe: the one that splits the header into the most columns, preferring
    one that gives the following records the same number of cells."""
    cut = sample.rfind("\n")
    sample = sample[: cut + 1] if cut > 0 else sample
    best, best_score = ",", (False, 0, 0.0)
    for delimiter in DELIMITERS:
        reader = csv.reader(io.StringIO(sample), delimiter=delimiter, skipinitialspace=True)
        try:
            records = [r for r in islice(reader, 50) if any(cell.strip() for cell in r)]
        except csv.Error:
            continue
        if not records or len(records[0]) < 2:
            continue
        width = len(records[0])
        rest = records[1:]
        regular = sum(1 for r in rest if len(r) == width) / len(rest) if rest else 1.0
        score = (regular >= 0.5, width, regular)
        if score > best_score:
            best, best_score = delimiter, score
    return best


class _Prefixed(io.RawIOBase):
    """A stream that first gives back ``head`` (already read for sniffing), then the rest."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head = memoryview(head)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head:
            size = min(len(buffer), len(self._head))
            buffer[:size] = self._head[:size]
            self._head = self._head[size:]
            return size
        data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class CsvReader:
    """A CSV file opened for import: ``encoding``, ``delimiter``, ``header``, then :meth:`rows`.

    ``bytes_read`` grows as rows are read (for progress bars); ``size`` is the file size when known.
    """

    def __init__(
        self,
        stream: IO[bytes],
        encoding: str | None = None,
        delimiter: str | None = None,
        size: int | None = None,
    ) -> None:
        head = stream.read(SAMPLE_SIZE)
        complete = len(head) < SAMPLE_SIZE
        self.size = size
        self.encoding = _normal_encoding(encoding) if encoding else detect_encoding(head, complete)
        self.bytes_read = 0
        skip = 0
        if self.encoding == "utf-8-sig":
            self.encoding = "utf-8"
            skip = len(codecs.BOM_UTF8) if head.startswith(codecs.BOM_UTF8) else 0
        self._wide = self.encoding.replace("_", "-").lower().startswith(("utf-16", "utf-32"))
        self.bytes_read = skip
        buffered = io.BufferedReader(_Prefixed(head[skip:], stream), 1 << 16)
        if self._wide:
            text = io.TextIOWrapper(buffered, encoding=self.encoding, newline="")
            sample = head.decode(self.encoding, errors="ignore")
            self._lines: Iterator[str] = self._count_text(text)
        else:
            sample = head[skip:].decode("latin-1")
            self._lines = self._count_bytes(buffered)
        self.delimiter = delimiter or detect_delimiter(sample)
        if self.delimiter in ("\\t", "tab", "TAB"):
            self.delimiter = "\t"
        self._reader = csv.reader(self._lines, delimiter=self.delimiter, skipinitialspace=True)
        self.header_line = 0
        self.header: list[str] = []
        for cells in self._reader:
            if any(cell.strip() for cell in cells):
                self.header = [self._decode(cell).strip() for cell in cells]
                self.header_line = self._reader.line_num
                break

    def _count_bytes(self, buffered: IO[bytes]) -> Iterator[str]:
        for line in buffered:
            self.bytes_read += len(line)
            yield line.decode("latin-1")

    def _count_text(self, text: IO[str]) -> Iterator[str]:
        for line in text:
            self.bytes_read += 2 * len(line)
            yield line

    def _decode(self, cell: str) -> str:
        if self._wide or cell.isascii():
            return cell
        raw = cell.encode("latin-1")
        try:
            return raw.decode(self.encoding)
        except UnicodeDecodeError:
            try:
                return raw.decode("cp1252")
            except UnicodeDecodeError:
                return cell  # Latin-1 never fails

    def rows(self) -> Iterator[tuple[int, list[str] | None, str | None]]:
        """``(line number, cells, None)`` for each record after the header, or ``(line, None, why)``
        for a record the csv module cannot read. Blank lines are left out."""
        reader = self._reader
        while True:
            start = reader.line_num + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield start, None, f"unreadable CSV: {exc}"
                continue
            if not cells:
                continue
            yield start, [self._decode(cell) for cell in cells], None


def _normal_encoding(name: str) -> str:
    try:
        return codecs.lookup(name).name
    except LookupError:
        from crmcore.errors import ValidationError

        raise ValidationError({"encoding": [f"{name!r} is not an encoding Python knows"]}) from None


# -- rows -> records ------------------------------------------------------------------------------

_KINDS = {
    "person": "person",
    "personne": "person",
    "individual": "person",
    "particulier": "person",
    "people": "person",
    "organization": "organization",
    "organisation": "organization",
    "company": "organization",
    "societe": "organization",
    "entreprise": "organization",
    "org": "organization",
}
_STATUSES = {"client": "customer", "clients": "customer", "utilisateur": "user", "prospects": "prospect"}
_TRUE = {"true", "1", "yes", "oui", "y", "o", "x", "on", "vrai"}
_FALSE = {"false", "0", "no", "non", "n", "off", "faux"}
_EMAIL_LABELS = {
    "work": "work",
    "business": "work",
    "travail": "work",
    "bureau": "work",
    "professionnel": "work",
    "pro": "work",
    "home": "home",
    "personal": "home",
    "private": "home",
    "domicile": "home",
    "personnel": "home",
    "perso": "home",
    "prive": "home",
}
_ADDRESS_LABELS = {
    "work": "main",
    "business": "main",
    "bureau": "main",
    "travail": "main",
    "main": "main",
    "home": "personal",
    "domicile": "personal",
    "personal": "personal",
    "billing": "billing",
    "facturation": "billing",
    "shipping": "shipping",
    "livraison": "shipping",
}
_DATE_FORMATS = {
    "dmy": ("%d/%m/%Y", "%d/%m/%y", "%d.%m.%Y", "%d-%m-%Y", "%m/%d/%Y", "%m/%d/%y"),
    "mdy": ("%m/%d/%Y", "%m/%d/%y", "%m-%d-%Y", "%d/%m/%Y", "%d.%m.%Y", "%d/%m/%y"),
}


@cache
def _language_names() -> dict[str, str]:
    from babel import Locale

    from crmcore.services.territories import languages

    codes = languages()
    names = {code: code for code in codes}
    for language in ("en", "fr"):
        for code, name in Locale(language).languages.items():
            if code in codes:
                names.setdefault(fold(name), code)
    return names


@lru_cache(maxsize=1024)
def _country(text: str) -> str:
    from crmcore.interchange.vcard import country_code

    return country_code(text) or text


def _label(text: str) -> str:
    return fold(text.lstrip("* ").strip())


def parse_date(text: str, order: str = "dmy") -> str | None:
    """ISO date for the usual ways of writing one; None when it cannot be read."""
    text = text.strip()
    try:
        return dt.date.fromisoformat(text[:10]).isoformat()
    except ValueError:
        pass
    for pattern in _DATE_FORMATS.get(order, _DATE_FORMATS["dmy"]):
        try:
            return dt.datetime.strptime(text, pattern).date().isoformat()
        except ValueError:
            continue
    return None


def _unescape_formula(value: str) -> str:
    """Undo the quote :func:`csv_cell` puts before a value a spreadsheet would run as a formula."""
    if len(value) > 1 and value[0] == "'" and _is_formula(value[1:]):
        return value[1:]
    return value


def _is_formula(value: str) -> bool:
    """A value a spreadsheet would evaluate: =..., @..., or +/- followed by more than a number."""
    if value.startswith(_FORMULA):
        return True
    return len(value) > 1 and value[0] in "+-" and not _NUMBER_LIKE.fullmatch(value)


@dataclass
class RowContext:
    """What converting rows needs from the application, read once per file."""

    phone_labels: dict[str, str]
    date_order: str = "dmy"


class RowConverter:
    """Turns the cells of one row into an :class:`ImportRecord` in the API's JSON shape."""

    def __init__(self, columns: list[Column], context: RowContext) -> None:
        self.columns = [c for c in columns if c.field]
        self.width = len(columns)
        self.context = context
        self._sources: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
        self.labels = {
            c.group: c
            for c in self.columns
            if c.field in ("email_label", "phone_label", "address_label") and c.group
        }
        # What each column is, worked out once rather than for each of its cells.
        self._plan = [
            (column, _column_kind(column.field), *column.field.partition(".")[::2])
            for column in self.columns
            if column.field not in ("email_label", "phone_label", "address_label")
        ]

    def record(self, position: int, cells: list[str]) -> ImportRecord:
        extra = [cell for cell in cells[self.width :] if cell.strip()]
        if extra:
            return ImportRecord(
                position,
                error=f"{len(cells)} cells for {self.width} columns (an unquoted delimiter inside a value?)",
            )
        if not any(cell.strip() for cell in cells):
            return ImportRecord(position, data={})
        try:
            data, sources = self._convert(cells)
        except _CellError as exc:
            return ImportRecord(position, error=f"column {exc.header!r}: {exc}")
        # Rows filled alike have the same sources: one shared mapping (read only) instead of one per row,
        # which also travels once per chunk to the process that writes (interchange/read_ahead.py).
        key = tuple(sources.items())
        shared = self._sources.get(key)
        if shared is None:
            shared = sources
            if len(self._sources) < 1000:
                self._sources[key] = sources
        return ImportRecord(position, data=data, sources=shared)

    def _label_of(self, column: Column, cells: list[str]) -> str:
        label_column = self.labels.get(column.group)
        if label_column is None or label_column.index >= len(cells):
            return ""
        return _label(cells[label_column.index])

    def _convert(self, cells: list[str]) -> tuple[dict[str, Any], dict[str, str]]:
        data: dict[str, Any] = {}
        sources: dict[str, str] = {}
        emails: list[tuple[str, str, str]] = []
        phones: list[tuple[str, str, str]] = []
        addresses: dict[tuple[str, str], dict[str, str]] = {}
        #: (kind, group) -> part -> the column it came from
        address_sources: dict[tuple[str, str], dict[str, str]] = {}
        extras: dict[str, str] = {}
        width = len(cells)
        for column, kind, head, rest in self._plan:
            if column.index >= width:
                continue
            value = _unescape_formula(cells[column.index].strip())
            if not value:
                continue
            field, header = column.field, column.header
            if kind == "scalar":
                if field not in data:
                    data[field] = self._scalar(field, value, header)
                    sources[field] = header
            elif kind == "email":
                label = rest or _EMAIL_LABELS.get(
                    self._label_of(column, cells), "other" if column.group else "work"
                )
                emails.extend((address, label, header) for address in _LIST_SPLIT.split(value) if address)
            elif kind == "phone":
                phone_kind = rest or ("mobile" if field == "mobile" else "work")
                if not rest and column.group:
                    phone_kind = self._phone_type(self._label_of(column, cells), phone_kind)
                phones.extend((number, phone_kind, header) for number in _PHONE_SPLIT.split(value) if number)
            elif kind == "address":
                if head == "address":
                    address_kind, _, part = rest.partition(".")
                else:
                    address_kind, part = "main", field
                    if column.group:
                        address_kind = _ADDRESS_LABELS.get(self._label_of(column, cells), "main")
                key = (address_kind, column.group)
                if part not in addresses.setdefault(key, {}):
                    addresses[key][part] = value
                    address_sources.setdefault(key, {})[part] = header
            elif kind == "tags":
                tags = data.setdefault("tags", [])
                for tag in _TAG_SPLIT.split(value):
                    tag = tag.strip()
                    if tag and fold(tag.lstrip("* ")) != "mycontacts":
                        tags.append(tag.lstrip("* ").strip())
                sources.setdefault("tags", header)
            elif kind == "notes":
                data.setdefault("notes", []).append(value)
            elif kind in ("custom", "social"):
                data.setdefault(kind, {}).setdefault(rest, value)
                sources.setdefault(field, header)
            else:  # "extra": parts of a name or a birthday, put together below
                extras.setdefault(field, value)
                sources.setdefault("birthday" if field.startswith("birth") else field, header)
        self._names(data, extras, sources)
        self._birthday(data, extras)
        if emails:
            data["emails"] = []
            for index, (address, label, header) in enumerate(emails):
                data["emails"].append({"address": address, "label": label, "primary": index == 0})
                sources[f"emails[{index}]"] = header
        if phones:
            data["phones"] = []
            for index, (number, kind, header) in enumerate(phones):
                data["phones"].append({"number": number, "type": kind})
                sources[f"phones[{index}]"] = header
        if addresses:
            data["addresses"] = []
            ordered = sorted(addresses.items(), key=lambda item: item[0][0] != "main")
            for index, (key, parts) in enumerate(ordered):
                if "country" in parts:
                    parts["country"] = _country(parts["country"])
                data["addresses"].append({"kind": key[0], **parts})
                headers = address_sources[key]
                sources[f"addresses[{index}]"] = next(iter(headers.values()))
                # A part's own column, for a reason about that part ("addresses[0].country").
                sources.update((f"addresses[{index}].{part}", header) for part, header in headers.items())
            found = next(
                (index for index, a in enumerate(data["addresses"]) if len(a.get("country") or "") == 2), None
            )
            if found is not None and "country" not in data:
                data["country"] = data["addresses"][found]["country"]
                sources.setdefault("country", sources[f"addresses[{found}].country"])
        return data, sources

    def _phone_type(self, label: str, default: str) -> str:
        if not label:
            return default
        if "fax" in label or "telecopie" in label:
            return self.context.phone_labels.get("fax", default)
        if label in ("main", "principal", "company", "societe", "business", "bureau", "travail"):
            return "work"
        if label in ("cell", "cellular", "cellulaire", "portable", "iphone", "mobile"):
            return "mobile"
        return self.context.phone_labels.get(label, default)

    def _scalar(self, field: str, value: str, header: str) -> Any:
        if field == "kind":
            return _KINDS.get(fold(value), value)
        if field in ("is_supplier", "do_not_email"):
            lowered = fold(value)
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
            raise _CellError(header, f"{value!r} is not yes or no")
        if field == "status":
            lowered = fold(value)
            return _STATUSES.get(lowered, lowered)
        if field == "birthday":
            parsed = parse_date(value, self.context.date_order)
            if parsed is None:
                if re.fullmatch(r"[0/.\-]+", value):
                    return None  # Outlook's "0/0/00": no birthday
                if value.startswith("--"):
                    raise _CellError(header, f"{value!r}: a birthday without its year cannot be stored")
                raise _CellError(header, f"{value!r} is not a date (YYYY-MM-DD or DD/MM/YYYY)")
            return parsed
        if field == "language":
            return _language_names().get(fold(value), value)
        return value

    def _names(self, data: dict[str, Any], extras: dict[str, str], sources: dict[str, str]) -> None:
        # The kind is left to the importer unless a column gives it: a row with only a company name is
        # a new organization, or the organization of the person it updates.
        full = extras.get("full_name")
        if data.get("kind") == "organization":
            if not data.get("name") and (full or data.get("organization")):
                data["name"] = full or data["organization"]
                sources["name"] = sources.get("full_name") or sources.get("organization", "")
            data.pop("organization", None)  # an organization belongs to no organization
        elif full and not data.get("first_name") and not data.get("last_name"):
            first, _, last = full.rpartition(" ")
            data["last_name"] = last
            sources["last_name"] = sources["first_name"] = sources["full_name"]
            if first:
                data["first_name"] = first

    def _birthday(self, data: dict[str, Any], extras: dict[str, str]) -> None:
        parts = [extras.get(f"birth_{part}") for part in ("year", "month", "day")]
        if not any(parts) or data.get("birthday"):
            return
        header = "birthday"
        if not all(parts):
            raise _CellError(header, "a birthday needs its year, month and day")
        try:
            data["birthday"] = dt.date(*(int(p or "") for p in parts)).isoformat()
        except ValueError:
            raise _CellError(header, f"{'-'.join(p or '' for p in parts)} is not a date") from None


def _column_kind(field: str) -> str:
    """How :meth:`RowConverter._convert` reads the cells of a column mapped to ``field``."""
    head = field.partition(".")[0]
    if field == "email" or head == "email":
        return "email"
    if field in ("phone", "mobile") or head == "phone":
        return "phone"
    if field in ADDRESS_PARTS or head == "address":
        return "address"
    if field in ("tags", "notes"):
        return field
    if head in ("custom", "social"):
        return head
    if field in ("full_name", "birth_year", "birth_month", "birth_day"):
        return "extra"
    return "scalar"


class _CellError(ValueError):
    def __init__(self, header: str, message: str) -> None:
        super().__init__(message)
        self.header = header


def read_records(reader: CsvReader, columns: list[Column], context: RowContext) -> Iterator[ImportRecord]:
    converter = RowConverter(columns, context)
    for position, cells, error in reader.rows():
        if cells is None:
            yield ImportRecord(position, error=error)
        else:
            yield converter.record(position, cells)


# -- contacts -> rows -----------------------------------------------------------------------------


def csv_cell(value: Any) -> str:
    """A cell as written: lists joined with "; ", booleans yes/no, formulas quoted for spreadsheets."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        value = "; ".join(str(v) for v in value)
    text = str(value)
    return "'" + text if _is_formula(text) else text


def write_rows(header: list[str], rows: Iterable[list[Any]], bom: bool = True) -> Iterator[str]:
    """CSV text (comma, CRLF, quotes where needed), one chunk per row, starting with the header."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    yield ("\ufeff" if bom else "") + buffer.getvalue()
    for row in rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([csv_cell(value) for value in row])
        yield buffer.getvalue()
