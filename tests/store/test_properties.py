"""Property: any sequence of publish / rollback / disable keeps the store equal to a
ten-line reference model, with versions 1..N and exactly one active at every step."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from engine.store import NotFoundError, open_store

from .helpers import assert_invariants, policy_doc

Key = tuple[int, bool]  # (rollout, enabled) identifies a document


class StoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp()
        self.store = open_store(f"sqlite:///{Path(self.dir) / 'p.db'}")
        self.versions: list[Key] = []
        self.active = 0

    def _model_publish(self, key: Key, activate: bool) -> None:
        if self.versions and key == self.versions[self.active - 1]:
            return
        if self.versions and key == self.versions[-1]:
            self.active = len(self.versions) if activate else self.active
            return
        self.versions.append(key)
        if activate or len(self.versions) == 1:
            self.active = len(self.versions)

    @rule(rollout=st.integers(0, 3), enabled=st.booleans(), activate=st.booleans())
    def publish(self, rollout: int, enabled: bool, activate: bool) -> None:
        result = self.store.publish(
            policy_doc(rollout=rollout, enabled=enabled), author="a", activate=activate
        )
        before = len(self.versions)
        self._model_publish((rollout, enabled), activate)
        assert result.created == (len(self.versions) > before)
        assert self.versions[result.version - 1] == (rollout, enabled)
        assert result.active == (result.version == self.active)

    @rule(version=st.integers(0, 6))
    def rollback(self, version: int) -> None:
        try:
            got = self.store.rollback("demo", version, author="b")
        except NotFoundError:
            assert not 1 <= version <= len(self.versions)
            return
        assert 1 <= version <= len(self.versions) and got.version == version
        self.active = version

    @rule()
    def disable(self) -> None:
        try:
            self.store.disable("demo", author="c")
        except NotFoundError:
            assert not self.versions
            return
        rollout, enabled = self.versions[self.active - 1]
        if enabled:
            self._model_publish((rollout, False), True)

    @invariant()
    def matches_the_model(self) -> None:
        if not self.versions:
            assert self.store.active_revision("demo") is None
            return
        assert_invariants(self.store, "demo")
        history = self.store.history("demo")
        keys = [(v.document["spec"]["rollout"], v.document["spec"]["enabled"]) for v in history.versions]
        assert keys == self.versions
        assert self.store.get("demo").version == self.active

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.dir, ignore_errors=True)


StoreMachine.TestCase.settings = settings(max_examples=25, stateful_step_count=12, deadline=None)
TestStoreMachine = StoreMachine.TestCase
