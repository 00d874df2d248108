"""Where a subscription resumes: the replay id of the last change event its consumer confirmed.

`ReplayStore` is the interface the subscriber takes (the engine may bring its own, e.g. one that
writes in its unit of work); `presencesync.store.replay.SqlReplayStore` keeps the positions of
one account in the store's `pubsub_replay` table. Replay ids are opaque bytes.
"""

from __future__ import annotations

from typing import Protocol


class ReplayStore(Protocol):
    async def load(self, topic: str) -> bytes | None:
        """The stored replay id of `topic`, or None when the subscription never confirmed one."""
        ...

    async def save(self, topic: str, replay_id: bytes) -> None:
        """Remember `replay_id` (durably) as where `topic` resumes."""
        ...
