"""Which sentence of the sources answers the question, and whether any does.

Every sentence (or list item, or table row) of the retrieved passages is a candidate. Each
gets a few features a reader would weigh: how many of the question's words it holds
(rarer words count more), how close it is in meaning (the embedding model, one vector per
sentence), whether it holds the kind of thing the question asks for (a year for "when", a
number for "how many", a name for "who"), and where it sits (which source, how early).

Two small logistic models turn the features into decisions: one scores each candidate (the
chance it holds the answer), one scores the question (the chance the sources do not answer
it). Their weights ship in ``selector.json``, trained by ``benchmarks/training/selector.py``
on public question-answering data (SQuAD 2.0 *train* articles), and ``improve`` refits them
from a workspace's own corrections and helpful-source marks.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from datawheel.clean.text import sentence_spans
from datawheel.models.generators.base import Passage

Tokenize = Callable[[Sequence[str]], list[list[str]]]
Embed = Callable[[Sequence[str]], np.ndarray]

WEIGHTS = Path(__file__).with_name("selector.json")

# markup that must never reach an answer: attribute lists, include directives, admonition
# fences, HTML tags, heading and quote markers, emphasis
_MARKUP = [
    (re.compile(r"\{\s*[#.][^{}]*\}"), " "),  # { #anchor } { .class }
    (re.compile(r"\{!.*?!\}"), " "),  # {!> ../docs_src/x.py !}
    (re.compile(r"\{[%{].*?[%}]\}"), " "),  # {% raw %} {{ var }}
    (re.compile(r"^\s*(?:///|:::|!!!|\?\?\?)\s*\w*.*$", re.M), " "),  # admonitions
    # a line that is only layout tags (<div class=...>); tags inside a sentence are content
    # ("paste <script> into the footer") and stay, shown as text
    (re.compile(r"^\s*(?:</?[A-Za-z][\w-]*(?:\s[^<>]*)?/?>\s*)+$", re.M), " "),
    (re.compile(r"^\s{0,3}(?:#{1,6}|>)\s+", re.M), ""),  # heading and quote markers
    (re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1"), r"\2"),  # **bold**
]
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+")
_TABLE_ROW = re.compile(r"^\s*\|.*\|\s*$")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{2,}")


def strip_markup(text: str) -> str:
    """Text as a reader should see it: template and layout markup removed.

    Example:
        >>> strip_markup("## Settings { #settings }\\n<div>\\n**Defaults** to `False`\\n</div>")
        'Settings\\nDefaults to `False`'
    """
    for pattern, repl in _MARKUP:
        text = pattern.sub(repl, text)
    return "\n".join(" ".join(line.split()) for line in text.split("\n") if line.strip())


@dataclass
class Candidate:
    passage: int  # index into the passages
    position: int  # order within its passage
    text: str
    kind: str  # sentence, item (of a list) or row (of a table)
    lead: str = ""  # what introduces it: a list's opening line, a table's header, an FAQ question


def candidates(passages: Sequence[Passage]) -> list[Candidate]:
    """The sentences, list items and table rows of every passage, markup removed."""
    out: list[Candidate] = []
    for i, p in enumerate(passages):
        position = 0
        lead = ""  # the sentence that opens a list
        asked = ""  # the question an FAQ answer follows
        header = ""
        for line in strip_markup(p.text).split("\n"):
            if _TABLE_ROW.match(line):
                if _TABLE_RULE.match(line.replace("|", " |")):
                    continue
                cells = " | ".join(c.strip() for c in line.strip().strip("|").split("|"))
                if not header:
                    header = cells
                    continue
                out.append(Candidate(i, position, cells, "row", header))
                position += 1
                continue
            header = ""
            if _LIST_ITEM.match(line):
                item = _LIST_ITEM.sub("", line)
                if len(item) >= 2:
                    out.append(Candidate(i, position, item, "item", lead))
                    position += 1
                continue
            for start, end in sentence_spans(line):
                text = line[start:end]
                if text.endswith("?"):  # an FAQ's question: what follows answers it
                    asked = text
                    continue
                if len(text) >= 12 and any(c.isalpha() for c in text):
                    for piece in clause_windows(text):
                        out.append(Candidate(i, position, piece, "sentence", asked))
                        position += 1
                    lead = text if text.endswith(":") else ""
                    asked = ""
    return out


LONG = 240  # a sentence longer than this is offered in overlapping clause windows
_CLAUSE_END = re.compile(r"(?<=[,;:\u2013\u2014)])\s+|\s+(?=[(\u2013\u2014])")


def clause_windows(text: str, limit: int = LONG) -> list[str]:
    """A long sentence as overlapping runs of whole clauses, each at most ``limit`` long
    where its clauses allow, so the part that answers can be quoted on its own."""
    if len(text) <= limit:
        return [text]
    bounds = [0] + [m.end() for m in _CLAUSE_END.finditer(text)] + [len(text)]
    parts = [text[a:b].strip() for a, b in zip(bounds, bounds[1:], strict=False)]
    parts = [x for x in parts if x]
    if len(parts) < 2:
        return [text]
    windows: list[str] = []
    for first in range(len(parts)):
        window = parts[first]
        for part in parts[first + 1 :]:
            if len(window) + 1 + len(part) > limit:
                break
            window = f"{window} {part}"
        if not windows or window not in windows[-1]:
            windows.append(window)
        if first > 0 and window.endswith(parts[-1]):
            break
    return windows


# --- what the question asks for --------------------------------------------------------

_QTYPES = ("time", "number", "person", "place", "reason", "manner", "thing", "yesno")
_QTYPE_RULES = [
    (
        "time",
        re.compile(
            r"\b(when|what (year|years|date|day|month|century|decade|time|period|era)"
            r"|which (year|century|decade|date|month|day)|how long ago|since when)\b"
        ),
    ),
    (
        "number",
        re.compile(
            r"\b(how (many|much|long|old|far|large|big|high|tall|often|fast|"
            r"heavy|wide|deep)|what (percentage|percent|proportion|number|"
            r"amount|size|fraction|share)|what is the (number|cost|price))\b"
        ),
    ),
    (
        "person",
        re.compile(
            r"\b(who|whom|whose|what (person|man|woman|king|leader|author)"
            r"|which (person|man|woman|king|leader|author))\b"
        ),
    ),
    (
        "place",
        re.compile(
            r"\b(where|what (country|city|place|region|state|town|area|"
            r"continent|island|location)|which (country|city|place|region|state|"
            r"town|area|continent|island|location))\b"
        ),
    ),
    ("reason", re.compile(r"\b(why|what (caused|causes|led to|was the reason|is the reason))\b")),
    ("manner", re.compile(r"\bhow\b")),
    ("thing", re.compile(r"\b(what|which|name)\b")),
    (
        "yesno",
        re.compile(
            r"^\s*(is|are|was|were|do|does|did|can|could|should|will|would|"
            r"has|have|had|may|must)\b"
        ),
    ),
]
_YEAR = re.compile(r"\b(1[0-9]{3}|20[0-9]{2})s?\b|\b\d{1,2}(st|nd|rd|th) century\b|\bBC\b|\bAD\b")
_MONTH = re.compile(
    r"\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?\s+\d|\b\d{1,2}\s+"
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)"
)
_NUMBER = re.compile(
    r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|"
    r"forty|fifty|hundred|thousand|million|billion|dozen|half|several)\b",
    re.I,
)
_REASON = re.compile(
    r"\b(because|due to|since|so that|in order to|as a result|caused|led to|"
    r"reason)\b",
    re.I,
)
_MANNER = re.compile(r"\b(by|using|through|via|with|run|use|set|call|install|add|pass)\b", re.I)
_CODE = re.compile(r"`[^`]+`|\b\w+\(\)|--[a-z][\w-]+|\b[a-z]+_[a-z_]+\b")
_CAPITAL = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-zA-Z\u00C0-\u024F'-]+")
_WORD = re.compile(r"[A-Za-z\u00C0-\u024F0-9']+")

# words a question uses to ask, not to name its topic: their absence from a source says
# nothing about whether it answers
_ASKING_WORDS = (
    "name names named call called term terms type types kind kinds mean means meaning refer "
    "refers known word words many much example examples use used one ones"
)


_NEGATION = re.compile(r"\b(not|never|n't|no|without|except|neither|nor)\b", re.I)
_NAME = re.compile(r"(?<!^)\b([A-Z][\w'-]+|\d[\d,.]*\d|\d)")


def _missing_names(question: str, source: str, near: str) -> tuple[float, float]:
    names = [m.group(1).lower() for m in _NAME.finditer(question.strip())]
    if not names:
        return 0.0, 0.0
    source, near = source.lower(), near.lower()
    return (
        sum(n not in source for n in names) / len(names),
        sum(n not in near for n in names) / len(names),
    )


_AMOUNT = r"(\$|€|£)?\s?(\d[\d,]*(?:\.\d+)?)\s?(k|K|m|M|%)?(?!\w)"
_NUMBER_IN = re.compile(_AMOUNT)
_RANGES = [  # (pattern, low group, high group); a missing bound is open
    (re.compile(_AMOUNT + r"\s*(?:-|–|to|through)\s*" + _AMOUNT), 1, 4),
    (re.compile(r"\bbetween\s+" + _AMOUNT + r"\s+and\s+" + _AMOUNT, re.I), 1, 4),
    (re.compile(_AMOUNT + r"\s*(?:\+|and (?:above|over|up|more))", re.I), 1, None),
    (re.compile(r"\b(?:over|above|more than|at least|from)\s+" + _AMOUNT, re.I), 1, None),
    (re.compile(r"\b(?:under|below|less than|up to|at most)\s+" + _AMOUNT, re.I), None, 1),
]


def _amount(match: re.Match[str], first: int) -> tuple[float, str]:
    """The value of the amount whose currency group is ``first``, and its unit: a currency
    sign, % or nothing."""
    value = float(match.group(first + 1).replace(",", ""))
    suffix = (match.group(first + 2) or "").lower()
    value *= {"k": 1e3, "m": 1e6}.get(suffix, 1.0)
    return value, match.group(first) or ("%" if suffix == "%" else "")


_NUMBER_WORDS = {
    w: str(n)
    for n, w in enumerate(
        [
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
        ]
    )
}
_NUMBER_WORD = re.compile(r"\b(" + "|".join(_NUMBER_WORDS) + r")\b", re.I)


def question_amounts(question: str) -> list[tuple[float, str]]:
    """The numbers a question names ("four years", "$80k", "3,000"), and which are money."""
    digits = _NUMBER_WORD.sub(lambda m: _NUMBER_WORDS[m.group(1).lower()], question)
    return [_amount(m, 1) for m in _NUMBER_IN.finditer(digits)]


def in_range(amounts: list[tuple[float, str]], text: str) -> bool:
    """Whether ``text`` states a range or threshold ("3-5 years", "$75,000 to $149,999",
    "over $2,500") that holds one of the question's ``amounts``, in the same unit."""
    if not amounts:
        return False
    for pattern, low_at, high_at in _RANGES:
        for m in pattern.finditer(text):
            low = _amount(m, low_at) if low_at else None
            high = _amount(m, high_at) if high_at else None
            unit = (low and low[1]) or (high and high[1]) or ""
            for value, asked_unit in amounts:
                if asked_unit != unit:
                    continue
                if (low is None or value >= low[0]) and (high is None or value <= high[0]):
                    return True
    return False


def question_type(question: str) -> str:
    q = question.lower()
    for name, rule in _QTYPE_RULES:
        if rule.search(q):
            return name
    return "thing"


def _has_type(text: str, question_words: set[str]) -> dict[str, float]:
    capitals = {m.group(0).lower() for m in _CAPITAL.finditer(text)} - question_words
    return {
        "time": float(bool(_YEAR.search(text) or _MONTH.search(text))),
        "number": float(bool(_NUMBER.search(text))),
        "person": float(bool(capitals)),
        "place": float(bool(capitals)),
        "reason": float(bool(_REASON.search(text))),
        "manner": float(bool(_MANNER.search(text) or _CODE.search(text))),
        "thing": float(bool(capitals or _CODE.search(text))),
        "yesno": 1.0,
    }


# --- features ---------------------------------------------------------------------------

SENTENCE_FEATURES = (
    "bias",
    "coverage",  # share of the question's word weight held by the sentence
    "coverage_near",  # ... by the sentence with its neighbours and heading
    "matched",  # share of question words held, unweighted
    "bigrams",  # question word pairs held, in order
    "cosine",  # meaning: question vs sentence
    "cosine_gap",  # cosine minus the best candidate's
    "coverage_gap",  # coverage minus the best candidate's
    "novel",  # share of the sentence's words that are not in the question
    "type_match",  # holds what the question asks for
    "type_missing",  # asks for a kind of thing the sentence lacks
    "first_source",
    "second_source",
    "source_score",  # the passage's retrieval score over the best one's
    "first_in_source",
    "position",  # 1 / (1 + place in the passage)
    "log_chars",
    "item",
    "row",
    "short",  # under 40 characters
    "in_range",  # states a range or threshold that holds a number of the question
)

QUESTION_FEATURES = (
    "bias",
    "best",  # the best candidate's answer chance
    "margin",  # ... minus the second best's
    "best_coverage",
    "best_cosine",
    "source_coverage",  # share of question word weight in the best candidate's passage
    "missing_rare",  # weight of the rarest question word missing from that passage
    "missing_count",  # question words missing from it
    "type_match",
    "confidence",  # retrieval's calibrated confidence
    "question_words",
    "negation",  # the question asks about what is not, never, without
    "missing_names",  # share of the question's names and numbers not in that passage
    "missing_names_near",  # ... not in the best candidate and its neighbours
)


EMBEDDED = 12  # candidates embedded per question
UNRELATED = 0.35  # below this cosine, and sharing no word, a sentence is off the question
CACHED = 20_000  # sentence vectors kept between questions (~30 MB)
SOURCE_SCORE = SENTENCE_FEATURES.index("source_score")


@dataclass
class Scored:
    candidates: list[Candidate]
    chance: np.ndarray  # per candidate: holds the answer
    unanswered: float  # the chance that no candidate answers
    question_type: str
    sentence_rows: np.ndarray
    question_row: np.ndarray


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -30, 30)))


class Selector:
    """Scores candidates and the question with the two logistic models."""

    def __init__(self, tokenize: Tokenize, embed: Embed | None, weights: dict[str, Any]):
        self.tokenize = tokenize
        self.embed = embed
        self.weights = weights
        self.sentence_w = np.array([weights["sentence"][f] for f in SENTENCE_FEATURES])
        self.question_w = np.array([weights["question"][f] for f in QUESTION_FEATURES])
        self.decline_above = float(weights["decline_above"])
        self.runner_up = float(weights.get("runner_up", 0.35))
        self.version = str(weights.get("version", "selector"))
        self._asking = set(tokenize([_ASKING_WORDS])[0])
        self._vectors: dict[str, np.ndarray] = {}  # sentence -> unit vector, oldest first
        self._lock = threading.Lock()
        self.cache_size = CACHED

    def with_weights(self, weights: dict[str, Any]) -> Selector:
        """The same selector with other weights (learned from feedback), sharing the cache."""
        other = Selector(self.tokenize, self.embed, weights)
        other._vectors, other._lock = self._vectors, self._lock
        return other

    @classmethod
    def load(cls, tokenize: Tokenize, embed: Embed | None, path: Path | None = None) -> Selector:
        return cls(tokenize, embed, json.loads((path or WEIGHTS).read_text(encoding="utf-8")))

    def score(
        self, question: str, passages: Sequence[Passage], confidence: float = 1.0
    ) -> Scored | None:
        cands = candidates(passages)
        q_tokens = list(self.tokenize([question])[0])
        if not cands or not q_tokens:
            return None
        rows, qrow, qtype = self.features(question, q_tokens, cands, passages, confidence)
        chance = _sigmoid(rows @ self.sentence_w)
        qrow[QUESTION_FEATURES.index("best")] = float(chance.max())
        ordered = np.sort(chance)[::-1]
        qrow[QUESTION_FEATURES.index("margin")] = float(
            ordered[0] - (ordered[1] if len(ordered) > 1 else 0.0)
        )
        unanswered = float(_sigmoid(np.array([qrow @ self.question_w]))[0])
        coverage = rows[:, SENTENCE_FEATURES.index("coverage")]
        cosine = rows[:, SENTENCE_FEATURES.index("cosine")]
        if coverage.max() == 0 and (self.embed is None or cosine.max() < UNRELATED):
            unanswered = 1.0  # no candidate shares a word or a meaning with the question
        return Scored(cands, chance, unanswered, qtype, rows, qrow)

    def _cosines(self, question: str, texts: list[str], lexical: np.ndarray) -> np.ndarray:
        """Question-sentence cosines for the ``EMBEDDED`` lexically best candidates; the
        others get the lowest of those (embedding every sentence would cost ~10 ms each)."""
        if self.embed is None:
            return np.zeros(len(texts))
        top = np.argsort(-lexical, kind="stable")[:EMBEDDED]
        wanted = [question, *(texts[j] for j in top)]
        with self._lock:  # the service answers from several threads
            found = {t: self._vectors[t] for t in wanted if t in self._vectors}
        missing = [t for t in dict.fromkeys(wanted) if t not in found]
        if missing:
            vectors = self.embed(missing)
            with self._lock:
                for text, vec in zip(missing, vectors, strict=True):
                    self._vectors[text] = found[text] = vec
                while len(self._vectors) > self.cache_size:
                    self._vectors.pop(next(iter(self._vectors)))
        q = found[question]
        some = np.array([float(found[texts[j]] @ q) for j in top])
        cos = np.full(len(texts), some.min() - 0.05)
        cos[top] = some
        return cos

    def features(
        self,
        question: str,
        q_tokens: list[str],
        cands: list[Candidate],
        passages: Sequence[Passage],
        confidence: float,
    ) -> tuple[np.ndarray, np.ndarray, str]:
        texts = [c.text for c in cands]
        tokens = self.tokenize(texts + [p.text for p in passages] + [question])
        c_tokens = tokens[: len(cands)]
        p_tokens = tokens[len(cands) : len(cands) + len(passages)]
        heading_tokens = self.tokenize([f"{p.title} {p.heading}" for p in passages])
        n = len(cands)
        df = Counter(t for toks in c_tokens for t in set(toks))
        q_terms = list(dict.fromkeys(q_tokens))
        weight = {t: math.log(1 + (n + 1) / (df.get(t, 0) + 0.5)) for t in q_terms}
        for t in self._asking.intersection(weight):
            weight[t] *= 0.3
        total = sum(weight.values()) or 1.0
        q_set = set(q_terms)
        q_bigrams = set(zip(q_tokens, q_tokens[1:], strict=False))
        qtype = question_type(question)
        amounts = question_amounts(question)
        q_words = {w.lower() for w in _WORD.findall(question)}

        top_score = max((p.score for p in passages), default=1.0) or 1.0
        rows = np.zeros((n, len(SENTENCE_FEATURES)))
        coverage = np.zeros(n)
        type_match = np.zeros(n)
        for j, (c, toks) in enumerate(zip(cands, c_tokens, strict=True)):
            shared = q_set.intersection(toks)
            coverage[j] = sum(weight[t] for t in shared) / total
            near = set(toks)
            for k in (j - 1, j + 1):
                if 0 <= k < n and cands[k].passage == c.passage:
                    near.update(c_tokens[k])
            near.update(heading_tokens[c.passage])
            if c.lead:
                near.update(self.tokenize([c.lead])[0])
            has = _has_type(c.text, q_words)
            type_match[j] = has[qtype]
            novel = sum(1 for t in toks if t not in q_set) / max(len(toks), 1)
            rows[j] = (
                1.0,
                coverage[j],
                sum(weight[t] for t in q_set.intersection(near)) / total,
                len(shared) / len(q_set),
                len(q_bigrams.intersection(zip(toks, toks[1:], strict=False)))
                / max(len(q_bigrams), 1),
                0.0,  # cosine, below
                0.0,
                0.0,
                novel,
                has[qtype],
                1.0 - has[qtype],
                float(c.passage == 0),
                float(c.passage == 1),
                passages[c.passage].score / top_score if top_score > 0 else 0.0,
                float(c.position == 0),
                1.0 / (1 + c.position),
                math.log(1 + len(c.text)),
                float(c.kind == "item"),
                float(c.kind == "row"),
                float(len(c.text) < 40),
                float(in_range(amounts, c.text)),
            )
        cos = self._cosines(question, texts, coverage + 0.1 * rows[:, SOURCE_SCORE])
        rows[:, SENTENCE_FEATURES.index("cosine")] = cos
        rows[:, SENTENCE_FEATURES.index("cosine_gap")] = cos - cos.max()
        rows[:, SENTENCE_FEATURES.index("coverage_gap")] = coverage - coverage.max()
        # the question row: filled from the best candidate once the sentence model has run
        best = int(np.argmax(rows @ self.sentence_w))
        near_best = " ".join(
            c.text
            for c in cands
            if c.passage == cands[best].passage and abs(c.position - cands[best].position) <= 1
        )
        source = set(p_tokens[cands[best].passage]) | set(heading_tokens[cands[best].passage])
        missing = [t for t in q_terms if t not in source and t not in self._asking]
        qrow = np.array(
            (
                1.0,
                0.0,
                0.0,
                coverage[best],
                float(cos[best]),
                sum(weight[t] for t in q_set & source) / total,
                max((weight[t] for t in missing), default=0.0) / math.log(1 + (n + 1) / 0.5),
                float(len(missing)),
                type_match[best],
                confidence,
                float(len(q_terms)),
                float(bool(_NEGATION.search(question))),
                *_missing_names(question, passages[cands[best].passage].text, near_best),
            )
        )
        return rows, qrow, qtype


@dataclass
class Chosen:
    text: str
    passage: int


def compose(scored: Scored, max_chars: int, runner_up: float) -> list[Chosen]:
    """The answer's parts: the best candidate (with the list it opens, or the table header
    it belongs to), then the runner-up when the selector found it nearly as likely and it
    fits within ``max_chars`` (in the source's order when both come from one source)."""
    cands, chance = scored.candidates, scored.chance
    order = [int(j) for j in np.argsort(-chance, kind="stable")]
    best = order[0]
    parts = [_with_context(cands, best, max_chars)]
    length = len(parts[0][1])
    for j in order[1:3]:
        if chance[j] < runner_up * chance[best]:
            break
        text = _with_context(cands, j, max_chars)[1]
        if text in parts[0][1] or parts[0][1] in text:
            continue
        if length + 1 + len(text) <= max_chars:
            parts.append((j, text))
        break
    if len(parts) == 2 and cands[parts[1][0]].passage == cands[best].passage:
        parts.sort(key=lambda p: cands[p[0]].position)  # one source: in its own order
    return [Chosen(text, cands[j].passage) for j, text in parts]


def _with_context(cands: list[Candidate], j: int, max_chars: int) -> tuple[int, str]:
    c = cands[j]
    if c.kind == "row" and c.lead:
        return j, f"{c.lead}: {c.text}"
    items = [
        x
        for x in cands[j + 1 :]
        if x.passage == c.passage and x.kind == "item" and x.lead == c.text
    ]
    if c.kind == "sentence" and c.text.endswith(":") and items:
        text = c.text
        for x in items:  # the list this sentence opens, as far as it fits
            if len(text) + 3 + len(x.text) > max_chars:
                break
            text = f"{text} • {x.text}"
        return j, text
    return j, c.text
