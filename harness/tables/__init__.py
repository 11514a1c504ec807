"""The paper's Tables 1–5 and the diagnostics Table 6 from the results store: row selection → pandas
frames → markdown (tabulate).

Every measured number in a table comes from ``results.csv`` (:func:`harness.results.load_results`);
the paper's numbers come from :mod:`harness.paper`. Nothing else is read.

**Columns.** Each table keeps the paper's columns (headed "… (paper)") and adds measured columns
headed with what they really are: ``ours (<dataset> <split>, <preset>)``. A measured column sits right
after the paper column it corresponds to: the same dataset and split when the measured dataset is
one of the paper's (NTU-60, NTU-120, PKU-MMD), else the first paper column with the same split name
(synthetic ``xsub`` → beside "NTU-60 xsub"). That placement is for reading only: synthetic and MSR
Action3D numbers are never NTU/PKU numbers, and the header and the column names say so.

**Rows.** The harness rows come from each registered method's ``TableRow``s (``Method.rows()``,
:mod:`.specs`): the paper rows a method fills and its extra rows. Beside every measured column is an
**untrained floor** column: the ``random`` method with the row's encoder and modality (:mod:`.build`).

**Cells.** A measured cell is the mean ± sample standard deviation (ddof 1) over the **pretraining
seeds** found in the store (the rows' ``pretrain_seed``), each pretraining seed's value first averaged
over the protocol's own seeds (``seed``: linear-probe / detection-head seeds, the subset seeds of the
semi-supervised protocol), in % (counts such as the effective rank as they are), with the number of
pretraining seeds, then its 95 % interval (:mod:`.statistics`, docs/statistics.md) and, in a
method's cell, the paired test against its floor: ``61.3 ± 0.8 (n=3) [57.9, 64.7] ▲``. Which rows
form a cell (``harness results supersede`` moves the rows this never reads out of the store):

* filter by dataset kind, preset, protocol, metric, split, and the row's method / variant / encoder /
  modality (:class:`Selector`); rows recorded by a sweep (``extra.overrides``, e.g. the Figure 4 α
  runs of ``harness reproduce``) never enter a table cell;
* if rows of several configurations (config hashes) qualify, the configuration whose newest row is
  the latest wins and the older ones are ignored (a re-run after a code or config change supersedes
  the earlier one); rows without a config hash (``harness fuse --record``) count one configuration per
  recording date;
* within that configuration, the latest row per (pretraining seed, protocol seed) is taken;
* a row whose value is NaN or missing is not dropped silently: the cell gets ⚠ and the row is listed
  under "Store problems" with its line in ``results.csv``; the mean is over the remaining seeds.

Marks: ``—`` the paper prints "-"; ``not run`` the harness implements the row but the store has no
row for the cell; ``·`` not applicable (a paper-only method the harness does not implement, or the
paper cell of an extra harness row). Every rendered file carries a legend.
"""

from __future__ import annotations

from .build import BuiltTable, build_table, measured_columns, measured_header
from .cells import Cell, _row_mask, measured_cell, pick_cell
from .model import *  # noqa: F401,F403
from .render import LEGEND, WriteReport, has_measurement, read_marker, render_markdown, table_path, write_tables
from .specs import table_specs
from .store_frame import load_store, prepare_store
