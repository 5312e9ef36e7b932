"""One function per subcommand: keyword parameters -> :class:`Result`.

Experiments compute; they never parse options, write files or plot. The keyword
parameters of an experiment are exactly what its sidecar records, and what the figure
registry (:mod:`resdiff.figures`) passes for each preset; the pipeline may add what
changes no number: where MNIST is (``data_dir``), a training checkpoint
(``checkpoint``, ``resume``, ``checkpoint_every``) and the draws shared in one process
(``draw_store``).
"""

from dataclasses import dataclass, field

import pandas as pd


@dataclass
class Result:
    """What every experiment returns.

    Attributes
    ----------
    frame : pandas.DataFrame
        Tidy, one row per observation: exactly the CSV the command line writes.
    meta : dict
        What the sidecar records under ``meta``: divergent-draw counts, the variances
        and plan used, standard errors, timings.
    warnings : list of str
        Lines the command line prints on stderr (divergent draws, say).
    """

    frame: pd.DataFrame  # tidy: one row per observation
    meta: dict = field(default_factory=dict)  # e.g. divergent-draw counts, timings
    warnings: list = field(default_factory=list)  # lines to show the user
