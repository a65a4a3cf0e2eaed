"""Feedback themes, pure: cleaned texts in, themes out; no database.

The classic method, deterministic and fast enough for 50,000 texts on two cores:

1. **TF-IDF** over words and word pairs (``sublinear_tf``; English stop words and the
   words every support text has, like "please", "thanks", "issue"; terms in fewer than
   ``min_df`` texts or in more than half of them dropped). A text with no term left (empty,
   greetings only) belongs to no theme.
2. **How many themes**: k-means (cosine: rows are L2-normalised) for each k of
   ``CANDIDATE_KS`` up to ``max_themes`` (and half the distinct texts) on the distinct texts
   of a sample of at most ``SAMPLE``, keeping the k with the best silhouette; then one
   k-means with that k over all texts. Fixed ``random_state``: the same texts give the
   same themes.
3. **Close clusters joined**: clusters whose centres have a cosine of at least
   ``MERGE_SIMILARITY`` become one theme (k-means happily gives each exact phrasing of the
   same complaint its own cluster).
4. **Small groups dropped**: a cluster with fewer than ``min_size`` texts is not a theme
   (its texts belong to none).
5. **Naming**: the terms with the highest weight in the cluster's centre; a word already
   inside a chosen pair is skipped ("export slow", not "export slow · export · slow"). The
   label is the top three. **Quotes**: the members nearest the centre, distinct texts
   first.

Near-duplicates ("Export is slow", "export is so slow!") share almost all their terms, so
they sit next to each other in this space and land in the same cluster.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SAMPLE = 1500
MERGE_SIMILARITY = 0.4  # clusters whose centres are this close (cosine) are one theme
CANDIDATE_KS = (2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30)
EXTRA_STOP_WORDS = frozenset(
    (
        "hi",
        "hello",
        "hey",
        "thanks",
        "thank",
        "thx",
        "please",
        "pls",
        "regards",
        "cheers",
        "dear",
        "team",
        "issue",
        "issues",
        "problem",
        "question",
        "help",
        "need",
        "needs",
        "needed",
        "want",
        "wants",
        "get",
        "gets",
        "got",
        "just",
        "like",
        "also",
        "really",
        "would",
        "could",
        "us",
        "we",
        "our",
        "ve",
        "ll",
        "re",
        "don",
        "didn",
        "doesn",
        "isn",
        "aren",
        "wasn",
        "won",
        "can",
        "cannot",
        "today",
        "yesterday",
        "week",
        "month",
    )  # fmt: skip
)


@dataclass(frozen=True)
class FoundTheme:
    label: str  # the top three terms, "export slow · csv · timeout"
    terms: tuple[str, ...]  # up to eight, strongest first
    members: tuple[int, ...]  # indices into the texts given
    similarity: tuple[float, ...]  # cosine of each member to the centre (same order)
    quotes: tuple[int, ...]  # up to three member indices: nearest the centre, distinct


def _vectorizer(n: int):
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

    return TfidfVectorizer(
        lowercase=True,
        token_pattern=r"(?u)\b[^\W\d_][^\W\d_]+\b",  # words of two letters or more
        stop_words=sorted(ENGLISH_STOP_WORDS | EXTRA_STOP_WORDS),
        ngram_range=(1, 2),
        min_df=2 if n < 1000 else 3,
        max_df=0.5,
        max_features=20_000,
        sublinear_tf=True,
        dtype=np.float32,
    )


def _pick_k(matrix, *, max_themes: int, random_state: int) -> int:
    """The number of clusters with the best silhouette, on the *distinct* texts of a sample
    (exact duplicates would make one cluster per phrasing look perfect), from 2 up to half
    the distinct texts."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    n = matrix.shape[0]
    if n > SAMPLE:
        rng = np.random.default_rng(random_state)
        matrix = matrix[np.sort(rng.choice(n, SAMPLE, replace=False))]
    seen: dict[tuple, int] = {}
    for i in range(matrix.shape[0]):
        row = matrix.getrow(i)
        seen.setdefault((tuple(row.indices), tuple(np.round(row.data, 4))), i)
    matrix = matrix[sorted(seen.values())]
    n = matrix.shape[0]
    best_k, best = 2, -2.0
    for k in (k for k in CANDIDATE_KS if k <= min(max_themes, n // 2)):
        labels = KMeans(n_clusters=k, n_init=1, random_state=random_state).fit_predict(matrix)
        if len(set(labels)) < 2:
            continue
        value = silhouette_score(matrix, labels, metric="cosine", random_state=random_state)
        if value > best + 1e-9:
            best_k, best = k, value
    return best_k


def _names(centre: np.ndarray, vocabulary: np.ndarray, *, count: int = 8) -> tuple[str, ...]:
    chosen: list[str] = []
    for i in np.argsort(-centre):
        if centre[i] <= 0 or len(chosen) == count:
            break
        term = str(vocabulary[i])
        words = term.split()
        if len(words) == 1 and any(term in c.split() for c in chosen):
            continue  # already inside a chosen pair
        if len(words) == 2:  # a pair replaces its words chosen before it
            chosen = [c for c in chosen if c not in words]
        chosen.append(term)
    return tuple(chosen)


def _merge_close(labels: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Join clusters whose centres are closer than ``MERGE_SIMILARITY`` (cosine), and
    transitively: k-means splits a tight group of near-duplicates when a bigger k scores
    better (exact duplicates make a perfect cluster of one phrasing each)."""
    unit = centres / np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), 1e-12)
    close = unit @ unit.T >= MERGE_SIMILARITY
    parent = list(range(len(centres)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in zip(*np.nonzero(np.triu(close, 1)), strict=True):
        parent[root(int(j))] = root(int(i))
    return np.array([root(int(label)) for label in labels])


def find_themes(
    texts: Sequence[str],
    *,
    max_themes: int = 20,
    min_size: int | None = None,
    random_state: int = 0,
) -> list[FoundTheme]:
    """Group ``texts`` into recurring themes, largest first. ``min_size`` defaults to 3
    texts or 0.2 % of them, whichever is more. Fewer than 6 usable texts: no themes."""
    from sklearn.cluster import KMeans
    from sklearn.preprocessing import normalize

    n = len(texts)
    if n < 6:
        return []
    min_size = min_size or max(3, int(n * 0.002))
    vectorizer = _vectorizer(n)
    try:
        matrix = vectorizer.fit_transform(texts)
    except ValueError:  # no term survives (all stop words, all unique words)
        return []
    rows = np.flatnonzero(matrix.getnnz(axis=1))  # texts with at least one term
    if len(rows) < 6:
        return []
    usable = normalize(matrix[rows])
    with warnings.catch_warnings():
        # "fewer distinct clusters than k" when many texts are identical: expected here
        warnings.simplefilter("ignore", category=UserWarning)
        k = _pick_k(usable, max_themes=max_themes, random_state=random_state)
        model = KMeans(n_clusters=k, n_init=2, random_state=random_state).fit(usable)
    labels = _merge_close(model.labels_, model.cluster_centers_)
    groups = sorted(set(labels.tolist()))
    raw_centres = np.vstack([np.asarray(usable[labels == g].mean(axis=0)).ravel() for g in groups])
    centres = normalize(raw_centres)
    position = {g: i for i, g in enumerate(groups)}
    own = np.array([position[g] for g in labels])
    similarity = np.asarray(usable.multiply(centres[own]).sum(axis=1)).ravel()
    vocabulary = vectorizer.get_feature_names_out()
    found = []
    for c in range(len(groups)):
        local = np.flatnonzero(own == c)
        if len(local) < min_size:
            continue
        order = local[np.argsort(-similarity[local], kind="stable")]
        quotes, seen = [], set()
        for i in order:
            key = " ".join(texts[rows[i]].lower().split())
            if key in seen:
                continue
            seen.add(key)
            quotes.append(int(rows[i]))
            if len(quotes) == 3:
                break
        terms = _names(raw_centres[c], vocabulary)
        found.append(
            FoundTheme(
                label=" · ".join(terms[:3]),
                terms=terms,
                members=tuple(int(rows[i]) for i in order),
                similarity=tuple(round(float(similarity[i]), 4) for i in order),
                quotes=tuple(quotes),
            )
        )
    found.sort(key=lambda t: (-len(t.members), t.label))
    return found
