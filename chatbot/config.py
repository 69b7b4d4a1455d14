"""Settings: one typed, frozen object read from TOML; unknown keys and wrong types are errors naming the key.

Usage example:
    config = load_config()                                    # config/default.toml
    config = load_config("my.toml", docs="notes/", answer={"max_quotes": 3})
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ChatbotError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "config" / "default.toml"


@dataclass(frozen=True)
class PathsConfig:
    docs: Path = Path("seeds")
    index: Path = Path("index")
    uploads: Path | None = None  # None: "uploads" inside the index folder (see `uploads_folder`)

    @property
    def uploads_folder(self) -> Path:
        """Where the web page keeps the documents uploaded to it, apart from the documents folder."""
        return self.uploads if self.uploads is not None else self.index / "uploads"


@dataclass(frozen=True)
class DocumentsConfig:
    extensions: tuple[str, ...] = (
        ".txt", ".text", ".md", ".markdown", ".rst", ".adoc", ".pdf", ".html", ".htm", ".docx", "",
    )
    names: tuple[str, ...] = (
        "README*", "INSTALL*", "NEWS*", "FAQ*", "CHANGES*", "CHANGELOG*", "HISTORY*", "TODO*", "AUTHORS*",
        "THANKS*", "BUGS*", "HACKING*", "USAGE*", "NOTES*", "CONTRIBUTING*", "RELEASE*",
    )

    @property
    def file_types(self) -> tuple[str, ...]:
        """What the folder scan takes: the extensions (".txt"; "" for none) and the name patterns ("README*")."""
        return self.extensions + self.names


@dataclass(frozen=True)
class ModelConfig:
    name: str = "all-MiniLM-L6-v2"
    batch_size: int = 64
    device: str = "cpu"
    dtype: str = "auto"
    answer_threads: int = 1


@dataclass(frozen=True)
class SearchConfig:
    """Which FAISS index holds the vectors (see index/vectors.py, vector_search)."""

    kind: str = "auto"
    exact_up_to: int = 50_000
    hnsw_m: int = 32
    hnsw_ef_construction: int = 64
    hnsw_ef_search: int = 128


@dataclass(frozen=True)
class StoreConfig:
    """Where the index lives: FAISS + bm25s files in the index folder, or Milvus (see milvus.py)."""

    backend: str = "faiss"
    uri: str = ""
    token_env: str = ""
    collection: str = ""
    read_only: bool = False

    @property
    def server(self) -> bool:
        """Whether `uri` names a Milvus server (http://, https://, tcp://) rather than a Milvus Lite file."""
        return self.uri.split("://", 1)[0].lower() in ("http", "https", "tcp") and "://" in self.uri


@dataclass(frozen=True)
class SegmentConfig:
    max_sentence_chars: int = 1000


@dataclass(frozen=True)
class ChunkConfig:
    sentences_per_passage: int = 4
    overlap: int = 1
    passage_vectors: str = "derived"  # "derived" from the sentences' vectors, or "embedded" by the model


@dataclass(frozen=True)
class RetrieveConfig:
    dense_candidates: int = 20
    lexical_candidates: int = 20
    passages: int = 4
    sentences: int = 5
    rrf_k: int = 60


@dataclass(frozen=True)
class AnswerConfig:
    max_quotes: int = 3
    min_confidence: float = 0.21
    second_quote_ratio: float = 0.55
    following_quote_ratio: float = 0.15
    merge_adjacent: bool = True
    max_sources: int = 3
    high_confidence: float = 0.95
    medium_confidence: float = 0.73
    max_question_chars: int = 2000


@dataclass(frozen=True)
class RankingConfig:
    """Logistic weights that score how likely a candidate sentence holds the answer (see rank.py)."""

    bias: float = -4.7965
    sentence_cosine: float = 2.3609
    passage_cosine: float = 1.358
    sentence_coverage: float = -0.5479
    word_match: float = 1.4654
    passage_coverage: float = 1.7013
    previous_coverage: float = -0.5486
    previous_cosine: float = 0.6117
    next_cosine: float = -0.4958
    answer_type: float = 0.4425
    fused_rank: float = 0.4734
    cosine_gap: float = 0.51
    coverage_gap: float = 1.4853
    novelty: float = -1.7582
    length: float = 0.9478
    continuation: float = 0.487
    centrality: float = -1.1186
    fragment: float = -1.5


@dataclass(frozen=True)
class ConfidenceConfig:
    """Logistic weights that turn the evidence for an answer into its confidence (see rank.py)."""

    bias: float = -5.4566
    relevance: float = 7.3408
    margin: float = 0.331
    answer_type: float = 0.1458
    missing_name: float = -0.243
    negation_mismatch: float = -3.3247


@dataclass(frozen=True)
class VerifierConfig:
    """The answer verifier (see verifier.py) and the small logistic models over its logits."""

    enabled: bool = True
    model: str = ""
    candidates: int = 6
    dtype: str = "auto"
    runtime: str = "auto"
    max_length: int = 160
    rank_bias: float = -0.7314
    rank_verifier: float = 0.61
    rank_prior: float = 0.2197
    confidence_bias: float = -0.8007
    confidence_verifier: float = 0.3664
    confidence_relevance: float = -1.5379
    confidence_prior_confidence: float = 0.6083
    confidence_prior: float = -0.4839
    confidence_margin: float = 0.1648
    confidence_span_margin: float = 0.0544
    confidence_shortfall: float = -6.361
    relevance_knee: float = 0.45
    min_further: float = 0.0
    answer_spans: bool = True


@dataclass(frozen=True)
class UiConfig:
    host: str = "127.0.0.1"
    port: int = 7860
    max_upload_mb: float = 10.0
    auth_env: str = "CHATBOT_AUTH"
    allow_uploads: bool = False  # even when shared on the network without a password
    # The documents folder `examples` were written for; the page offers them for that folder only. Left out
    # of a config file: the folder that file names when it gives examples of its own, else seeds/.
    examples_for: Path | None = None
    examples: tuple[str, ...] = (
        "Which chip did Guangdong highlight?",
        "Why is Guangdong promoting its own technology?",
        "What alternative to Android is mentioned?",
        "Which fields is the province investing in?",
    )


# The range of every number in the config, (lowest, highest) allowed, checked when a config loads: a value
# past them is a mistake (a typo, nan, inf) that would otherwise surface as a crash or as NaN in the answer
# JSON. The upper bounds are far beyond any useful setting; they only stop what no machine could run (a
# million threads, an infinite upload). Keys not named here: the weights of a logistic model (see _WEIGHTS).
_WEIGHT = 1e4  # a fitted logistic weight or bias is a few units; this much is a mistake
_RANGES: dict[str, tuple[float, float]] = {
    "model.batch_size": (1, 65_536),
    "model.answer_threads": (0, 1024),
    "search.exact_up_to": (0, 1_000_000_000),
    "search.hnsw_m": (2, 256),
    "search.hnsw_ef_construction": (1, 100_000),
    "search.hnsw_ef_search": (1, 100_000),
    "segment.max_sentence_chars": (1, 1_000_000),
    "chunk.sentences_per_passage": (1, 1000),
    "chunk.overlap": (0, 999),
    "retrieve.dense_candidates": (1, 100_000),
    "retrieve.lexical_candidates": (1, 100_000),
    "retrieve.passages": (1, 10_000),
    "retrieve.sentences": (1, 10_000),
    "retrieve.rrf_k": (1, 1_000_000),
    "answer.max_quotes": (1, 1000),
    "answer.min_confidence": (0.0, 1.0),
    "answer.second_quote_ratio": (0.0, 1.0),
    "answer.following_quote_ratio": (0.0, 1.0),
    "answer.max_sources": (0, 1000),
    "answer.max_question_chars": (1, 1_000_000),
    "answer.high_confidence": (0.0, 1.0),
    "answer.medium_confidence": (0.0, 1.0),
    "verifier.candidates": (1, 1000),
    "verifier.max_length": (8, 512),  # the model reads at most 512 word-pieces
    "verifier.min_further": (0.0, 1.0),
    "verifier.relevance_knee": (-1.0, 1.0),  # a cosine
    "ui.port": (1, 65_535),
    "ui.max_upload_mb": (0.001, 100_000.0),
}
_WEIGHTS = ("ranking.", "confidence.", "verifier.rank_", "verifier.confidence_")
# The settings that name one of a few choices, and those choices.
_CHOICES: dict[str, tuple[str, ...]] = {
    "chunk.passage_vectors": ("derived", "embedded"),
    "model.dtype": ("auto", "float32", "bfloat16"),
    "verifier.dtype": ("auto", "float32", "bfloat16", "int8"),
    "verifier.runtime": ("auto", "torch", "onnx"),
    "search.kind": ("auto", "flat", "hnsw"),
    "store.backend": ("faiss", "milvus"),
}


def check_numbers(config: Config) -> None:
    """Every number of `config` finite and within its range (see _RANGES), every choice one of _CHOICES;
    ChatbotError naming the key."""
    for section in dataclasses.fields(config):
        values = getattr(config, section.name)
        for item in dataclasses.fields(values):
            value, key = getattr(values, item.name), f"{section.name}.{item.name}"
            if key in _CHOICES and value not in _CHOICES[key]:
                named = ", ".join(f'"{choice}"' for choice in _CHOICES[key][:-1]) + f' or "{_CHOICES[key][-1]}"'
                raise ChatbotError(f"config: {key} must be {named}, got {value!r}")
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if not math.isfinite(value):
                raise ChatbotError(f"config: {key} must be a finite number, got {value}")
            if key in _RANGES:
                low, high = _RANGES[key]
            elif key.startswith(_WEIGHTS):
                low, high = -_WEIGHT, _WEIGHT
            else:
                raise ChatbotError(f"config: {key} has no range to check it against (add one to config._RANGES)")
            if not low <= value <= high:
                shown = (low, high, value) if isinstance(value, int) else (f"{low:g}", f"{high:g}", f"{value:g}")
                raise ChatbotError(f"config: {key} must be between {shown[0]} and {shown[1]}, got {shown[2]}")


@dataclass(frozen=True)
class Config:
    paths: PathsConfig = field(default_factory=PathsConfig)
    documents: DocumentsConfig = field(default_factory=DocumentsConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    segment: SegmentConfig = field(default_factory=SegmentConfig)
    chunk: ChunkConfig = field(default_factory=ChunkConfig)
    retrieve: RetrieveConfig = field(default_factory=RetrieveConfig)
    answer: AnswerConfig = field(default_factory=AnswerConfig)
    ranking: RankingConfig = field(default_factory=RankingConfig)
    confidence: ConfidenceConfig = field(default_factory=ConfidenceConfig)
    verifier: VerifierConfig = field(default_factory=VerifierConfig)
    ui: UiConfig = field(default_factory=UiConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (paths as strings), e.g. for provenance records and writing TOML."""
        return _plain(dataclasses.asdict(self))

    def validate(self) -> Config:
        """Check values that a type alone cannot; returns self so calls chain."""
        check_numbers(self)  # numbers finite and in range, choices known, before the checks below compare them
        positive = {
            "model.batch_size": self.model.batch_size,
            "segment.max_sentence_chars": self.segment.max_sentence_chars,
            "chunk.sentences_per_passage": self.chunk.sentences_per_passage,
            "retrieve.dense_candidates": self.retrieve.dense_candidates,
            "retrieve.lexical_candidates": self.retrieve.lexical_candidates,
            "retrieve.passages": self.retrieve.passages,
            "retrieve.sentences": self.retrieve.sentences,
            "retrieve.rrf_k": self.retrieve.rrf_k,
            "answer.max_quotes": self.answer.max_quotes,
            "search.hnsw_m": self.search.hnsw_m,
            "search.hnsw_ef_construction": self.search.hnsw_ef_construction,
            "search.hnsw_ef_search": self.search.hnsw_ef_search,
            "verifier.candidates": self.verifier.candidates,
            "verifier.max_length": self.verifier.max_length,
        }
        for key, value in positive.items():
            if value < 1:
                raise ChatbotError(f"config: {key} must be at least 1, got {value}")
        if not 0 <= self.chunk.overlap < self.chunk.sentences_per_passage:
            raise ChatbotError("config: chunk.overlap must be at least 0 and less than chunk.sentences_per_passage")
        for key in ("min_confidence", "second_quote_ratio", "following_quote_ratio"):
            value = getattr(self.answer, key)
            if not 0.0 <= value <= 1.0:
                raise ChatbotError(f"config: answer.{key} must be between 0 and 1, got {value}")
        if self.model.answer_threads < 0:
            raise ChatbotError(f"config: model.answer_threads must not be negative, got {self.model.answer_threads}")
        if not self.model.name.strip():
            raise ChatbotError("config: model.name must name a model or a model folder, got an empty string")
        if not 0.0 <= self.verifier.min_further <= 1.0:
            raise ChatbotError(f"config: verifier.min_further must be between 0 and 1, got {self.verifier.min_further}")
        if self.store.read_only and self.store.backend != "milvus":
            raise ChatbotError("config: store.read_only is for backend = \"milvus\" (several processes sharing one index)")
        if self.store.uri and not self.store.server and not self.store.uri.endswith(".db"):
            raise ChatbotError(
                "config: store.uri must be a Milvus Lite file ending in .db, or http://HOST:PORT for a Milvus "
                f"server, got {self.store.uri!r}"
            )
        if self.search.exact_up_to < 0:
            raise ChatbotError("config: search.exact_up_to must not be negative")
        if not 0 < self.ui.port < 65536:
            raise ChatbotError(f"config: ui.port must be between 1 and 65535, got {self.ui.port}")
        if self.paths.uploads is not None and self.paths.uploads.is_relative_to(self.paths.docs):
            raise ChatbotError(
                f"config: paths.uploads ({self.paths.uploads}) must not be inside the documents folder "
                f"({self.paths.docs}): uploads are kept apart from the documents"
            )
        if self.ui.max_upload_mb <= 0:
            raise ChatbotError("config: ui.max_upload_mb must be positive")
        if self.answer.max_sources < 0:
            raise ChatbotError("config: answer.max_sources must not be negative")
        if not self.documents.extensions:
            raise ChatbotError('config: documents.extensions must name at least one file type, e.g. [".txt"]')
        for ext in self.documents.extensions:
            if ext and (not ext.startswith(".") or "/" in ext):
                raise ChatbotError(f'config: documents.extensions entries start with a dot (or are "" for none), got {ext!r}')
        for name in self.documents.names:
            if not name or name.startswith(".") or "/" in name:
                raise ChatbotError(f"config: documents.names entries are file name patterns such as README*, got {name!r}")
        return self


def load_config(path: str | Path | None = None, **overrides: Any) -> Config:
    """Read a TOML file over the built-in defaults, then apply overrides.

    Without a path, the project's config/default.toml is read when it exists. Relative paths inside a
    file are relative to that file. Overrides are `docs=`, `index=`, `uploads=` (relative to the working
    directory) or a section name with a dict, e.g. `answer={"max_quotes": 3}`. A `docs` folder other than the
    configured one, given without `index`, gets an index of its own (see `index_for`).
    """
    data: dict[str, Any] = {}
    base = Path.cwd()
    if path is None and DEFAULT_CONFIG.is_file():
        path = DEFAULT_CONFIG
    if path is not None:
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8-sig"))  # a byte-order mark is no mistake
        except FileNotFoundError:
            raise ChatbotError(f"config file not found: {path}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ChatbotError(f"cannot read config file {path}: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ChatbotError(f"config file {path} is not valid TOML: {exc}") from None
        base = path.resolve().parent
    config = _build(Config, data, "")
    config = dataclasses.replace(
        config,
        paths=PathsConfig(
            docs=(base / config.paths.docs).resolve(),
            index=(base / config.paths.index).resolve(),
            uploads=(base / config.paths.uploads).resolve() if config.paths.uploads is not None else None,
        ),
    )
    if config.store.uri and not config.store.server:  # a Milvus Lite file, relative to the file that names it
        store = dataclasses.replace(config.store, uri=str((base / Path(config.store.uri).expanduser()).resolve()))
        config = dataclasses.replace(config, store=store)
    ui = data.get("ui") if isinstance(data.get("ui"), dict) else {}
    if config.ui.examples_for is not None:  # the folder the examples were written for, relative to the file
        examples_for = (base / config.ui.examples_for).resolve()
    elif "examples" in ui:  # examples of one's own: for the documents folder the same file names
        examples_for = config.paths.docs
    else:  # the built-in examples: questions about the seed article
        examples_for = PROJECT_ROOT / "seeds"
    config = dataclasses.replace(config, ui=dataclasses.replace(config.ui, examples_for=examples_for))
    if config.verifier.model:  # a verifier folder of one's own, relative to the file that names it
        model = str((base / Path(config.verifier.model).expanduser()).resolve())
        config = dataclasses.replace(config, verifier=dataclasses.replace(config.verifier, model=model))
    return apply_overrides(config, **overrides).validate()


def apply_overrides(config: Config, /, **overrides: Any) -> Config:
    """A copy of `config` with overrides applied (same forms as `load_config`)."""
    changes: dict[str, Any] = {}
    keys = ("docs", "index", "uploads")
    paths = {key: Path(overrides.pop(key)).resolve() for key in keys if overrides.get(key) is not None}
    overrides = {key: value for key, value in overrides.items() if value is not None}
    if "docs" in paths and paths["docs"] != config.paths.docs:  # another folder: an index and uploads of its own
        if "index" not in paths:
            paths["index"] = index_for(config.paths.index, paths["docs"])
        if "uploads" not in paths and config.paths.uploads is not None:
            paths["uploads"] = index_for(config.paths.uploads, paths["docs"])
    if paths:
        changes["paths"] = dataclasses.replace(config.paths, **paths)
    for section, values in overrides.items():
        current = getattr(config, section, None) if section in _fields(Config) else None
        if current is None or not isinstance(values, dict):
            known = ", ".join(["docs", "index", "uploads", *_fields(Config)])
            raise ChatbotError(f"unknown setting: {section} (settings are {known}; a section takes a dict)")
        merged = {**dataclasses.asdict(current), **values}
        changes[section] = _build(type(current), merged, f"{section}.")
    return dataclasses.replace(config, **changes).validate() if changes else config


def index_for(index: Path, docs: Path) -> Path:
    """Where the index of another documents folder goes when none is named: beside the default one,
    under a name of its own, so that switching folders never overwrites another folder's index."""
    digest = hashlib.sha256(str(docs).encode("utf-8")).hexdigest()[:10]
    return index / "folders" / f"{docs.name or 'root'}-{digest}"


def _fields(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _build(cls: type, data: dict[str, Any], prefix: str) -> Any:
    """Instantiate dataclass `cls` from a dict, checking names and types."""
    if not isinstance(data, dict):
        raise ChatbotError(f"config: {prefix.rstrip('.') or 'file'} must be a table")
    hints = _fields(cls)
    unknown = sorted(set(data) - set(hints))
    if unknown:
        raise ChatbotError(f"config: unknown key {prefix}{unknown[0]}")
    values = {}
    for name, value in data.items():
        kind = hints[name]
        key = f"{prefix}{name}"
        if dataclasses.is_dataclass(kind):
            values[name] = _build(kind, value, f"{key}.")
        else:
            values[name] = _coerce(kind, value, key)
    return cls(**values)


def _coerce(kind: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(kind)
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) for item in value):
            raise ChatbotError(f"config: {key} must be a list of strings, got {value!r}")
        return tuple(value)
    if kind in (Path, Path | None):  # None only as a default: TOML has no null
        if not isinstance(value, (str, Path)) or not str(value):
            raise ChatbotError(f"config: {key} must be a path, got {value!r}")
        return Path(value)
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    else:
        ok = isinstance(value, kind)
    if not ok:
        raise ChatbotError(f"config: {key} must be {kind.__name__}, got {value!r}")
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    return value
