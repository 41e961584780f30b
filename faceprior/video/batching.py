"""The faces of several frames through the network together (batching across frames).

A talking-head video has one face a frame, so a forward pass per frame leaves a GPU batch of
4 (or more) mostly empty. :func:`restore_together` merges the aligned crops of several
prepared frames into one batch per model, runs :meth:`FaceRestorer.restore_crops` once
(which cuts it into ``batch_size`` chunks) and hands each frame back its own faces, in the
form :meth:`FaceRestorer.finish` takes. The network sees each crop exactly as it would
frame by frame; only which crops share a forward pass changes.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np


def restore_together(restorer, photos: list) -> list:
    """``restorer.restore_crops`` of each prepared photo of ``photos``, computed in one call.

    Returns one ``RestoredCrops`` per photo, as :meth:`FaceRestorer.restore_crops` would;
    the network's time is shared among the photos by their number of faces.
    """
    if not photos:
        return []
    by_model: dict[str, list[tuple[int, int, object]]] = {}
    for photo_index, photo in enumerate(photos):
        for batch_index, batch in enumerate(photo.batches):
            by_model.setdefault(batch.model, []).append((photo_index, batch_index, batch))
    merged = [
        replace(
            parts[0][2],
            indices=[index for _, _, batch in parts for index in batch.indices],
            crops=np.concatenate([batch.crops for _, _, batch in parts]),
            matrices=[matrix for _, _, batch in parts for matrix in batch.matrices],
            valid=np.concatenate([batch.valid for _, _, batch in parts]),
        )
        for parts in by_model.values()
    ]
    together = restorer.restore_crops(replace(photos[0], batches=merged))
    faces: list[list] = [[None] * len(photo.batches) for photo in photos]
    for parts, restored in zip(by_model.values(), together.faces, strict=True):
        start = 0
        for photo_index, batch_index, batch in parts:
            count = len(batch.indices)
            faces[photo_index][batch_index] = restored[start : start + count]
            start += count
    total = sum(len(batch.indices) for batch in merged)
    results = []
    for photo, photo_faces in zip(photos, faces, strict=True):
        share = sum(len(batch.indices) for batch in photo.batches) / total if total else 0.0
        timings = {stage: seconds * share for stage, seconds in together.timings.items()}
        results.append(replace(together, faces=photo_faces, timings=timings))
    return results
