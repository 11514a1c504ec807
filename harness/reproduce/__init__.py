"""``harness reproduce``: the runs a table or figure needs (:mod:`.plan`) and running them (:mod:`.run`)."""

from .plan import (ALPHAS, DEFAULT_PRETRAIN_SEEDS, PlanItem, PlannedFuse, PlannedRun, Settings, plan, table_protocols, with_floors)
from .run import PLAN_HEADERS, Outcome, describe, describe_status, execute, fused_hash, plan_table, recorded

__all__ = ["ALPHAS", "DEFAULT_PRETRAIN_SEEDS", "PlanItem", "PlannedFuse",
           "PlannedRun", "Settings", "plan", "table_protocols", "with_floors", "PLAN_HEADERS", "Outcome", "describe",
           "describe_status", "execute", "fused_hash", "plan_table", "recorded"]
