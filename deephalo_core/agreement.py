"""How a prediction relates to Subfind, particle by particle (the Compare page's agreement mode).

Labels follow the project's convention: -1 fuzz, 0 primary subhalo, 1, 2, ... satellite subhalos.
A predicted satellite "matches" a Subfind satellite when the Hungarian pairing of
`deephalo_core.metrics.match_subhalos` paired them with IoU >= `min_iou` (0.5 by default, the same
rule that lets the two views share a colour). Each particle falls in exactly one class:

  right          the same role: a satellite member predicted in the satellite matched to its own,
                 a primary particle predicted primary, a fuzz particle predicted fuzz
  missed         a satellite member predicted as primary or fuzz
  false member   a primary or fuzz particle predicted as a satellite member
  wrong subhalo  a member of satellite A predicted in a satellite not matched to A
  primary/fuzz   a primary particle predicted as fuzz, or a fuzz particle predicted as primary
"""
from __future__ import annotations

import numpy as np
import pandas as pd

RIGHT, MISSED, FALSE_MEMBER, WRONG_SUBHALO, PRIMARY_FUZZ = range(5)
CLASS_NAMES = {RIGHT: "right", MISSED: "missed", FALSE_MEMBER: "false member",
               WRONG_SUBHALO: "wrong subhalo", PRIMARY_FUZZ: "primary/fuzz swap"}
CLASS_COLOURS = {RIGHT: (96, 184, 112), MISSED: (255, 72, 56), FALSE_MEMBER: (255, 196, 36),
                 WRONG_SUBHALO: (200, 96, 255), PRIMARY_FUZZ: (80, 150, 255)}
MATCH_IOU = 0.5


def matched_pairs(matches: pd.DataFrame | None, min_iou: float = MATCH_IOU) -> dict[int, int]:
    """{predicted label: Subfind label} for the Hungarian pairs of `matches` with IoU >= min_iou.

    `matches` is `deephalo_core.metrics.match_subhalos(truth, pred)` (columns true_rank,
    pred_rank, iou); rows with a missing side (rank -1) or zero IoU pair nothing.
    """
    pairs: dict[int, int] = {}
    if matches is None or not len(matches):
        return pairs
    for t, p, iou in zip(matches["true_rank"], matches["pred_rank"], matches["iou"]):
        if pd.notna(t) and pd.notna(p) and t >= 0 and p >= 0 and iou >= min_iou and iou > 0:
            pairs[int(p)] = int(t)
    return pairs


def agreement_classes(truth: np.ndarray, pred: np.ndarray, matches: pd.DataFrame | None,
                      min_iou: float = MATCH_IOU) -> np.ndarray:
    """The class of every particle (int8, the constants above) from Subfind's and the predicted labels."""
    truth, pred = np.asarray(truth), np.asarray(pred)
    if truth.shape != pred.shape or truth.ndim != 1:
        raise ValueError(f"truth and prediction must be 1-D and the same length, got {truth.shape} "
                         f"and {pred.shape}")
    pairs = matched_pairs(matches, min_iou)
    # the Subfind satellite each predicted satellite stands for (-2: none)
    stands_for = np.full(int(max(pred.max(initial=0), 0)) + 1, -2, dtype=np.int64)
    for p, t in pairs.items():
        if p < len(stands_for):
            stands_for[p] = t
    pred_member, true_member = pred >= 1, truth >= 1
    counterpart = np.where(pred_member, stands_for[np.clip(pred, 0, None)], -2)
    classes = np.full(truth.shape, RIGHT, dtype=np.int8)
    classes[true_member & ~pred_member] = MISSED
    classes[true_member & pred_member & (counterpart != truth)] = WRONG_SUBHALO
    classes[~true_member & pred_member] = FALSE_MEMBER
    classes[~true_member & ~pred_member & (truth != pred)] = PRIMARY_FUZZ
    return classes


def agreement_counts(classes: np.ndarray) -> dict[str, int]:
    """{class name: particles}, every class listed (zero when absent), in the constants' order."""
    counts = np.bincount(np.asarray(classes, dtype=np.int64), minlength=len(CLASS_NAMES))
    return {CLASS_NAMES[c]: int(counts[c]) for c in CLASS_NAMES}
