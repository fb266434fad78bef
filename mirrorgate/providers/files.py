"""The file provider: YAML files and directories -> admitted objects -> Snapshot.

Rules:
1. ``PATH`` is a file (multi-document YAML), a directory (its ``*.yaml``/``*.yml`` files in
   name order, by code point, not recursive) or ``-`` for standard input. Files load in the order
   of the arguments, a directory's files in its place among them.
2. Every problem becomes a ``ConfigError`` naming file, object and field; an invalid object is
   rejected whole and the others still load. Nothing here raises for bad input.
3. Which kinds are read, skipped (with a note, or a warning for Istio's networking API) or
   refused as near misses of mirrorgate's kinds is ``mirrorgate.providers.kinds``'s decision.
4. Later files win, as ``kubectl apply`` run file after file: an object (kind, namespace, name)
   defined again in a later file replaces the earlier one, with a note naming both files. Defined
   twice differently in one file, it is an error; an identical repetition is applied once.
5. YAML is decoded strictly, as kubectl does: a key given twice in one mapping is an error
   naming the line and the key. libyaml parses when PyYAML has it; messages and lines are
   those of PyYAML's pure-Python parser either way.
6. A load pauses the cyclic garbage collector (``mirrorgate.gcpause``): it builds many objects
   and no cycles, and collections walking every object of the process were a sixth of a large
   load; cycles made meanwhile are found by the next collection.
7. A load remembers each unchanged document chunk of the previous load (``doccache``): a file
   where some chunk is remembered parses only its other chunks, each alone, and takes the
   remembered objects for the rest, in document order; when a changed chunk does not parse
   alone, the whole file is parsed, so every message and line is what a full parse gives.
"""

import json
import re
import sys
from collections.abc import Hashable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import msgspec
import yaml

from mirrorgate.errors import ConfigError, FieldError
from mirrorgate.gcpause import paused_gc
from mirrorgate.model.meta import ObjectKey, Resource
from mirrorgate.model.snapshot import CLUSTER_SCOPED, KINDS, VERSIONS, Snapshot
from mirrorgate.providers import doccache, yamlnodes
from mirrorgate.providers.admission import admit
from mirrorgate.providers.kinds import Verdict, classify
from mirrorgate.providers.wire_safety import wire_problems


class LoadResult(msgspec.Struct, frozen=True, kw_only=True):
    """What loading produced: the snapshot of admitted objects, the errors, the notes (informational)
    and the warnings (documents skipped that the user most likely meant mirrorgate to read)."""

    snapshot: Snapshot
    errors: tuple[ConfigError, ...] = ()
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    sources: dict[str, str] = msgspec.field(default_factory=dict)  # str(ObjectKey) -> file


class _Doc(msgspec.Struct, frozen=True):
    file: str
    line: int
    body: Any


class _Load:
    """The state of one load: admitted objects by key, the file each came from, the findings."""

    def __init__(self) -> None:
        self.errors: list[ConfigError] = []
        self.notes: list[str] = []
        self.warnings: list[str] = []
        self.admitted: dict[str, Resource] = {}
        self.sources: dict[str, str] = {}

    def add(self, file: str, obj: Resource, problems: Sequence[FieldError] | None = None) -> None:
        """Admit ``obj`` unless invalid (``problems``: its admission problems, when known); a later
        file replaces an earlier file's object of the same key."""
        ident = str(obj.key)
        earlier = self.sources.get(ident)
        if earlier is not None and self.admitted[ident] == obj:
            return  # the same object twice (e.g. two examples sharing a Service): applied once
        if earlier == file:
            err = FieldError(
                path="metadata.name", message=f"Duplicate value: {obj.metadata.name!r}: already defined in {file}"
            )
            self.errors.append(ConfigError(file, ident, err))
            return
        if problems is None:
            problems = admission_problems(obj)
        if problems:
            self.errors.extend(ConfigError(file, ident, p) for p in problems)
            return
        if earlier is not None:
            self.notes.append(f"{file}: {ident} replaces its definition in {earlier} (later files win)")
        self.admitted[ident] = obj
        self.sources[ident] = file

    def findings(self) -> tuple[int, int, int]:
        return len(self.errors), len(self.notes), len(self.warnings)

    def result(self) -> LoadResult:
        return LoadResult(
            snapshot=Snapshot.of(self.admitted.values()),
            errors=tuple(self.errors),
            notes=tuple(self.notes),
            warnings=tuple(self.warnings),
            sources=self.sources,
        )


def load_paths(paths: Sequence[str], stdin_text: str | None = None) -> LoadResult:
    """Load every path; return the snapshot of admitted objects with all problems collected."""
    with paused_gc():
        return _load_paths(paths, stdin_text)


def _load_paths(paths: Sequence[str], stdin_text: str | None) -> LoadResult:
    load = _Load()
    _CACHE.next.clear()
    for file in expand_paths(paths):
        text = _read(file, load.errors, stdin_text)
        if text is not None:
            _load_text(file, text, load)
    _CACHE.finish()
    return load.result()


# Chunks of the previous load (rule 7).
_CACHE = doccache.Cache()


def admission_problems(obj: Resource) -> tuple[FieldError, ...]:
    """Why the apiserver would refuse ``obj``, or why mirrorgate cannot send it on the wire."""
    return tuple(admit(obj) or wire_problems(obj))


def _load_text(file: str, text: str, load: _Load) -> None:
    chunks = doccache.split(text)
    if chunks is not None and any(_CACHE.get(c) is not None for c in chunks) and _load_chunks(file, chunks, load):
        return
    recorder = doccache.Recorder(chunks) if chunks is not None else None
    parse_errors: list[ConfigError] = []
    for doc in _parse(file, text, parse_errors):
        outcome = _take(doc, load)
        if recorder is not None:
            recorder.note(doc.line, outcome)
    load.errors.extend(parse_errors)
    if recorder is not None and not parse_errors:
        recorder.keep_all(_CACHE)


def _load_chunks(file: str, chunks: list[doccache.Chunk], load: _Load) -> bool:
    """Load a file whose unchanged chunks are remembered; False (nothing done) when a changed
    chunk does not parse alone: the whole file is then parsed as usual, for its messages."""
    fresh: dict[int, list[_Doc]] = {}
    for i, chunk in enumerate(chunks):
        if _CACHE.get(chunk) is None:
            errors: list[ConfigError] = []
            docs = [_Doc(file, chunk.line + d.line, d.body) for d in _parse(file, chunk.text, errors)]
            if errors:
                return False
            fresh[i] = docs
    recorder = doccache.Recorder(chunks)
    for i, chunk in enumerate(chunks):
        if i in fresh:
            for doc in fresh[i]:
                recorder.note(doc.line, _take(doc, load))
            continue
        for line, obj, problems in _CACHE.get(chunk) or ():
            load.add(file, obj, problems)
            recorder.note(chunk.line + line, (obj, problems))
    recorder.keep_all(_CACHE)
    return True


def _take(doc: _Doc, load: _Load) -> tuple[Resource, tuple[FieldError, ...]] | None:
    """Decode and add one document; its object and admission problems when decoding it found
    nothing to report (what a chunk may remember), else None."""
    before = load.findings()
    obj = _decode(doc, load)
    if obj is None:
        return None
    clean = load.findings() == before
    problems = admission_problems(obj)
    load.add(doc.file, obj, problems)
    return (obj, problems) if clean else None


def expand_paths(paths: Sequence[str]) -> list[str]:
    """The files a list of ``-f`` paths names, in load order (``-`` kept as is)."""
    files: list[str] = []
    for p in paths:
        if p == "-":
            files.append(p)
            continue
        path = Path(p)
        if path.is_dir():
            files.extend(str(c) for c in sorted(path.iterdir()) if c.suffix in (".yaml", ".yml") and c.is_file())
        else:
            files.append(p)
    return files


def _read(file: str, errors: list[ConfigError], stdin_text: str | None) -> str | None:
    if file == "-":
        return stdin_text if stdin_text is not None else sys.stdin.read()
    try:
        return Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        errors.append(ConfigError(file, "", FieldError(path="", message=f"cannot read file: {reason}")))
        return None


def _parse(file: str, text: str, errors: list[ConfigError]) -> Iterator[_Doc]:
    loader = _FastLoader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:  # pragma: no cover - check_node() said there is one
                continue
            line = node.start_mark.line + 1
            yield from _flatten(file, line, _construct(loader, node))
    except _DuplicateKey as exc:
        errors.append(ConfigError(file, "", FieldError(path="", message=f"invalid YAML: {exc}")))
    except yaml.YAMLError as exc:
        errors.append(ConfigError(file, "", FieldError(path="", message=_yaml_message(text, exc))))
    finally:
        loader.dispose()


def _construct(loader: yaml.SafeLoader | yaml.CSafeLoader, node: yaml.Node) -> Any:
    """The document's data: the plain case without PyYAML's constructor, the rest with it."""
    try:
        return yamlnodes.construct(loader, node)
    except yamlnodes.Unusual:
        return loader.construct_document(node)


class _DuplicateKey(yaml.YAMLError):
    """A key given twice in one mapping, which kubectl's strict decoding rejects."""

    def __init__(self, line: int, key: object) -> None:
        shown = json.dumps(key) if isinstance(key, str) else str(key)
        super().__init__(f"line {line}: key {shown} already set in map")


class _StrictKeys:
    """Mixin for a PyYAML loader: a key repeated in one mapping is an error (merge keys excepted)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)  # type: ignore[attr-defined]
            if isinstance(key, Hashable):
                if key in seen:
                    raise _DuplicateKey(key_node.start_mark.line + 1, key)
                seen.add(key)
        return super().construct_mapping(node, deep=deep)  # type: ignore[misc,no-any-return]


class _Loader(yamlnodes.MemoResolve, _StrictKeys, yaml.SafeLoader):
    """PyYAML's pure-Python safe loader with strict keys."""


# libyaml's parser (about ten times faster; same marks) when PyYAML was built with it.
_FastLoader: type[yaml.SafeLoader] | type[yaml.CSafeLoader] = (
    type("_CLoader", (yamlnodes.MemoResolve, _StrictKeys, yaml.CSafeLoader), {})
    if hasattr(yaml, "CSafeLoader")
    else _Loader
)


def _flatten(file: str, line: int, body: Any) -> Iterable[_Doc]:
    """A ``kind: List`` (as ``kubectl get -o yaml`` prints) stands for its items."""
    if isinstance(body, dict) and body.get("kind") == "List" and isinstance(body.get("items"), list):
        return [_Doc(file, line, item) for item in body["items"]]
    if body is None:
        return []
    return [_Doc(file, line, body)]


def _yaml_message(text: str, exc: yaml.YAMLError) -> str:
    """The message of a syntax error, worded as PyYAML's pure-Python parser words it (libyaml's
    wording differs; its marks do not): the text is parsed again, which only broken files pay."""
    if _FastLoader is not _Loader:
        try:
            for _ in yaml.compose_all(text, Loader=yaml.SafeLoader):
                pass
        except yaml.YAMLError as slow:
            exc = slow
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    where = f"line {mark.line + 1} column {mark.column + 1}: " if mark is not None else ""
    return f"invalid YAML: {where}{problem}"


def _decode(doc: _Doc, load: _Load) -> Resource | None:
    body = doc.body
    where = f"document at line {doc.line}"
    if not isinstance(body, dict):
        err = FieldError(path="", message="a Kubernetes object must be a mapping")
        load.errors.append(ConfigError(doc.file, where, err))
        return None
    api_version, kind = body.get("apiVersion"), body.get("kind")
    if not isinstance(api_version, str) or not api_version or not isinstance(kind, str) or not kind:
        missing = "apiVersion" if not isinstance(api_version, str) or not api_version else "kind"
        load.errors.append(ConfigError(doc.file, where, FieldError(path=missing, message="Required value")))
        return None
    verdict = classify(api_version, kind)
    if verdict.action != "read":
        _refuse(doc, load, verdict)
        return None
    group, _, version = api_version.rpartition("/")
    return _convert(doc, KINDS[(group, kind)], body, group, version, load.errors)


def _refuse(doc: _Doc, load: _Load, verdict: Verdict) -> None:
    """Report a document that is not read: an error, a warning or a note, per ``kinds.classify``."""
    meta = doc.body.get("metadata") if isinstance(doc.body.get("metadata"), dict) else {}
    name, namespace = str(meta.get("name") or ""), str(meta.get("namespace") or "default")
    kind, api_version = doc.body["kind"], doc.body["apiVersion"]
    if verdict.action == "error":
        ident = str(ObjectKey(kind, namespace, name))
        load.errors.append(ConfigError(doc.file, ident, FieldError(path=verdict.path, message=verdict.message)))
        return
    line = f"{doc.file}: skipping {kind} {name or '(unnamed)'} ({api_version}): {verdict.message}"
    (load.warnings if verdict.action == "warn" else load.notes).append(line)


def _convert(
    doc: _Doc, cls: type[Resource], body: dict[str, Any], group: str, version: str, errors: list[ConfigError]
) -> Resource | None:
    kind = body["kind"]
    meta = dict(body.get("metadata") or {}) if isinstance(body.get("metadata"), dict) else {}
    if kind in CLUSTER_SCOPED:
        meta["namespace"] = ""
    elif not meta.get("namespace"):
        meta["namespace"] = "default"
    ident = str(ObjectKey(kind, meta.get("namespace") or "", str(meta.get("name", ""))))
    if version not in VERSIONS[(group, kind)]:
        served = ", ".join(f"{group}/{v}" if group else v for v in VERSIONS[(group, kind)])
        msg = f'Unsupported value: "{body["apiVersion"]}": supported values: {served}'
        errors.append(ConfigError(doc.file, ident, FieldError(path="apiVersion", message=msg)))
        return None
    if not meta.get("name"):
        errors.append(ConfigError(doc.file, ident, FieldError(path="metadata.name", message="Required value")))
        return None
    try:
        return msgspec.convert({**body, "metadata": meta}, cls)
    except msgspec.ValidationError as exc:
        errors.append(ConfigError(doc.file, ident, schema_error(str(exc))))
        return None


_MSGSPEC_AT = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_UNKNOWN = re.compile(r"Object contains unknown field `(?P<field>[^`]+)`")
_MISSING = re.compile(r"Object missing required field `(?P<field>[^`]+)`")
_EXPECTED = re.compile(r"Expected `(?P<want>[^`]+)`, got `(?P<got>[^`]+)`")
_TYPE_NAMES = {
    "int": "integer",
    "str": "string",
    "array": "array",
    "object": "object",
    "bool": "boolean",
    "float": "number",
    "null": "null",
}


def schema_error(text: str) -> FieldError:
    """Turn a msgspec validation message into an apiserver-style field error."""
    m = _MSGSPEC_AT.match(text)
    msg, path = (m.group("msg"), (m.group("path") or "").lstrip(".")) if m else (text, "")
    if u := _UNKNOWN.search(msg):
        full = f"{path}.{u.group('field')}" if path else u.group("field")
        return FieldError(path=full, message=f'unknown field "{full}"')
    if r := _MISSING.search(msg):
        full = f"{path}.{r.group('field')}" if path else r.group("field")
        return FieldError(path=full, message="Required value")
    if e := _EXPECTED.search(msg):
        wants = [_TYPE_NAMES.get(w.strip(), w.strip()) for w in e.group("want").split("|") if w.strip() != "null"]
        want = " or ".join(wants)
        got = _TYPE_NAMES.get(e.group("got"), e.group("got"))
        return FieldError(path=path, message=f'Invalid value: "{got}": {path} in body must be of type {want}: "{got}"')
    return FieldError(path=path, message=f"Invalid value: {msg}")


# --- the per-document steps, for objects that come from elsewhere (providers/objects.py) ---------


class DocumentResult(msgspec.Struct, frozen=True, kw_only=True):
    """One document through the file path: the admitted object (None when refused) and findings."""

    obj: Resource | None
    errors: tuple[ConfigError, ...] = ()
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


def decode_document(body: Any, origin: str) -> DocumentResult:
    """``body`` decoded, classified, converted, admitted and wire-checked exactly as a document of
    the file ``origin`` is, so the model and every error text are the same."""
    load = _Load()
    obj = _decode(_Doc(origin, 0, body), load)
    if obj is not None:
        load.add(origin, obj)
    admitted = next(iter(load.admitted.values()), None)
    return DocumentResult(
        obj=admitted, errors=tuple(load.errors), notes=tuple(load.notes), warnings=tuple(load.warnings)
    )
