"""The cache doctor: why a call paid a cache write or missed a read, and what each cause cost.

::

    doctor = CacheDoctor()                       # in the engine: one per process
    miss = doctor.observe(record)                # a decision-log record (dict); Miss | None
    report = doctor_report("decisions.jsonl")    # offline: per call site, per cause, USD
"""

from engine.doctor._diagnose import CAUSES, Miss, diagnose
from engine.doctor._report import CacheDoctor, cache_keys, doctor_report

__all__ = ["CAUSES", "CacheDoctor", "Miss", "cache_keys", "diagnose", "doctor_report"]
