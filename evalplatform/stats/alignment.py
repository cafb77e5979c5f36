"""Pair baseline and candidate cases by id, then by content hash, before any paired test."""

from __future__ import annotations

from collections import Counter
from typing import Mapping


def align_cases(baseline: Mapping[str, str], candidate: Mapping[str, str]) -> dict:
    """Align two runs' cases given {case_id: content_hash} for each side.

    Cases are paired by id; ids present on one side only are paired when their content hash
    matches exactly one case on each side (a rename). Cases whose id is on both sides but whose
    hash changed are listed in content_changed and excluded from `pairs`: they are a different
    case under the same name. A paired gate runs on `pairs` only; report the other counts next to
    its verdict, and gate added cases with the absolute gate.
    """
    for name, side in (("baseline", baseline), ("candidate", candidate)):
        if not isinstance(side, Mapping):
            raise ValueError(f"{name}: must map case_id -> content hash, got {type(side).__name__}")
    common = sorted(set(baseline) & set(candidate))
    changed = [case for case in common if baseline[case] != candidate[case]]
    only_base = sorted(set(baseline) - set(candidate))
    only_cand = sorted(set(candidate) - set(baseline))
    base_hashes = Counter(baseline[c] for c in only_base)
    cand_by_hash = {candidate[c]: c for c in only_cand}
    cand_hashes = Counter(candidate[c] for c in only_cand)
    renamed = [
        [old, cand_by_hash[baseline[old]]]
        for old in only_base
        if base_hashes[baseline[old]] == 1 and cand_hashes.get(baseline[old]) == 1
    ]
    renamed_old = {old for old, _ in renamed}
    renamed_new = {new for _, new in renamed}
    pairs = [[case, case] for case in common if case not in set(changed)] + renamed
    return {
        "common": common,
        "renamed": renamed,
        "removed": [c for c in only_base if c not in renamed_old],
        "added": [c for c in only_cand if c not in renamed_new],
        "content_changed": changed,
        "pairs": pairs,
        "n_paired": len(pairs),
    }
