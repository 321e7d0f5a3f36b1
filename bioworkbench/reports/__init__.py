"""Run report notebooks with papermill, render safe offline HTML, keep provenance, fan out with Dask.

A report is a notebook in ``notebooks/`` whose first code cell is tagged ``parameters``.
:func:`run_report` checks the parameters *before* a kernel starts, runs the notebook in the
project's kernel into a temporary folder, renders a self-contained HTML with the code hidden, writes
``manifest.json`` and moves the folder to ``reports/<name>/<run>/`` when complete. A failed run
keeps its executed notebook with the error, is marked failed in ``reports/index.html`` and raises
:class:`~bioworkbench.errors.ReportError` with the failing cell. :func:`run_many` runs many
parameter files in parallel on a Dask cluster (local by default).

Modules, by subject:

* :mod:`~bioworkbench.reports.params` — the parameters cell (``name: type = default  # help
  [constraint]``), parameter files, and every check made before a kernel starts;
* :mod:`~bioworkbench.reports.run` — one run: papermill, the run's record, interruptions;
* :mod:`~bioworkbench.reports.render` — the safe page: only plots run script, everything else is
  sanitised, warnings are shortened, nothing is loaded from the internet;
* :mod:`~bioworkbench.reports.provenance` — what a run records: inputs hashed before and after the
  kernel, outputs hashed, versions and environment that change numbers;
* :mod:`~bioworkbench.reports.folders` — run folders: the temporary folder and its marker, moving
  into place, runs whose process died;
* :mod:`~bioworkbench.reports.index` — ``index.html``, every run with its status;
* :mod:`~bioworkbench.reports.parallel` — many parameter files through Dask.

Layer: the top, beside the CLI. The runner knows nothing of science (it runs notebooks): it imports
:mod:`bioworkbench.errors`, :mod:`bioworkbench.checks`, :mod:`bioworkbench.io` (to read a
campaign's batches before the kernel) and :mod:`bioworkbench.store` (the file digest campaign
folders record).
"""

from __future__ import annotations

from bioworkbench.reports.folders import recover_interrupted
from bioworkbench.reports.index import write_index
from bioworkbench.reports.parallel import parameter_files, run_many
from bioworkbench.reports.params import (
    FILE_PARAMETERS,
    Parameter,
    ParameterFile,
    check_parameters,
    find_notebook,
    load_parameter_file,
    notebook_parameters,
    notebooks_dir,
    read_parameter_file,
)
from bioworkbench.reports.run import KERNEL_NAME, RunResult, run_report

__all__ = [
    "FILE_PARAMETERS",
    "KERNEL_NAME",
    "Parameter",
    "ParameterFile",
    "RunResult",
    "check_parameters",
    "find_notebook",
    "load_parameter_file",
    "notebook_parameters",
    "notebooks_dir",
    "parameter_files",
    "read_parameter_file",
    "recover_interrupted",
    "run_many",
    "run_report",
    "write_index",
]
