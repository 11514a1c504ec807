"""The results store: one CSV row per measurement (``results/results.csv``), appended atomically.

Every number in the tables comes from here. :mod:`.store` writes it and :mod:`.read` reads it line by line
(a line that is not a complete row is reported with its number, never read as one); :mod:`.check`
validates and repairs a store (``harness results check``), proves a folder writable before a run and
keeps rows that could not be written in a side file; :mod:`.row` defines a row and its checks;
:mod:`.predictions` keeps each recorded row's per-sample predictions beside the store (verified on read).
"""

from .check import (REJECTED_NAME, CheckReport, UnrecordedRowsError, add_rows_file, check_store, check_writable,
                    record_rows, repair_store, save_side_file)
from .predictions import Predictions, PredictionsError
from .prediction_files import load_predictions, read_predictions
from .read import STORE_NAME, StoreProblem, StoreRead, check_header, load_results, parse_store, read_store
from .row import (ADDED_COLUMNS, COLUMNS, INT_COLUMNS, ResultRow, StoreError, code_version, hardware, own_backbone,
                  upgrade_row)
from .store import LOCK_NAME, append_rows, rows_csv
from .store import _store_lock, _upgrade_header  # noqa: F401  (kept importable from here)

__all__ = ["ADDED_COLUMNS", "COLUMNS", "INT_COLUMNS", "LOCK_NAME", "Predictions", "PredictionsError",
           "REJECTED_NAME", "STORE_NAME", "CheckReport", "ResultRow", "StoreError", "StoreProblem", "StoreRead",
           "UnrecordedRowsError", "add_rows_file", "append_rows", "check_header", "check_store", "check_writable",
           "code_version", "hardware", "load_predictions", "load_results", "own_backbone", "parse_store",
           "read_predictions", "read_store", "record_rows", "repair_store", "rows_csv", "save_side_file",
           "upgrade_row"]
