"""Follow-up questions: "and for jackets?" after a question about returns.

A question that leans on the earlier turns (it opens with "and", "what about", "how about",
or names almost nothing of its own, or points back with "it", "that", "they") is asked as
the earlier question it follows plus its own words, so retrieval and the answer selector see
the topic the user is still on. A question that stands on its own is asked as it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

Tokenize = Callable[[Sequence[str]], list[list[str]]]

_CONNECTIVE = re.compile(
    r"^\s*(and|also|plus|or|but|so|then|what about|how about|what if|same for|and what about|"
    r"and how about|what else|anything else)\b",
    re.I,
)
_POINTS_BACK = re.compile(
    r"\b(it|its|it's|they|them|their|theirs|this|that|these|those|he|him|his|she|her|there|"
    r"the same|one|ones)\b",
    re.I,
)
OWN_WORDS = 2  # a question with at most this many words of its own leans on the last turn
_LEADING = re.compile(r"^\s*(and|also|plus|but|so|then)\s+", re.I)
TURNS = 3  # earlier questions looked at


def standalone(question: str, earlier: Sequence[str], tokenize: Tokenize) -> str:
    """The question as retrieval should see it, given the user's earlier questions (oldest
    first, each already made standalone).

    Example:
        >>> standalone("and for jackets?", ["What is the return window for tents?"], tok)
        'What is the return window for tents? for jackets?'
    """
    if not earlier:
        return question
    previous = earlier[-1]
    own = tokenize([question])[0]
    leans = (
        bool(_CONNECTIVE.search(question))
        or len(own) <= OWN_WORDS
        or (bool(_POINTS_BACK.search(question)) and len(own) <= 2 * OWN_WORDS)
    )
    if not leans:
        return question
    rest = _LEADING.sub("", question).strip()
    return f"{previous.rstrip()} {rest}"
